"""cli.svg: a small SVG chart writer for usage reports — bars over time and horizontal breakdowns.

No plotting library and nothing fetched: each chart is one ``<svg>`` element as text, to
be inlined in a self-contained HTML page. Amounts arrive as ``Decimal``; floats are used
only for pixel positions, and every label is formatted from the ``Decimal`` itself. Each
bar carries a ``<title>`` so a browser shows its exact figure on hover. Colours come from
the Tableau 10 palette, which stays distinguishable for most colour-blind readers.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

PALETTE = (
    "#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f",
    "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac",
)
FAMILY = "font-family=\"system-ui, -apple-system, 'Segoe UI', sans-serif\""
FONT = f'{FAMILY} font-size="12"'
HEADING = f'{FAMILY} font-size="14" font-weight="600"'


@dataclass(frozen=True)
class Series:
    """One named row of values, one per category."""

    name: str
    values: tuple[Decimal, ...]


def color(index: int) -> str:
    return PALETTE[index % len(PALETTE)]


def esc(text: str) -> str:
    return html.escape(text, quote=True)


def amount(value: Decimal, currency: str) -> str:
    cents = value.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    return f"{cents:,} {currency}".strip()


def nice_ceiling(value: float) -> tuple[float, float]:
    """A round axis maximum at or above ``value`` and its tick step (1, 2 or 5 × 10^n)."""
    if value <= 0:
        return 1.0, 0.25
    raw = value / 4
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    return step * math.ceil(value / step - 1e-9), step


def _tick_label(value: float, step: float) -> str:
    """A tick's value with as many decimals as the step needs (0.25 → two, 5 → none)."""
    places = next((p for p in range(6) if abs(round(step, p) - step) < step * 1e-6), 6)
    return f"{value:,.{places}f}"


def _legend(series: Sequence[Series], x: float, y: float, width: float) -> tuple[list[str], float]:
    """Legend entries laid out left to right, wrapping; returns the elements and the height used."""
    parts: list[str] = []
    cx, cy = x, y
    for index, item in enumerate(series):
        label_width = 18 + 7 * len(item.name) + 14
        if cx + label_width > x + width and cx > x:
            cx, cy = x, cy + 18
        parts.append(f'<rect x="{cx:.1f}" y="{cy - 10:.1f}" width="12" height="12" fill="{color(index)}"/>')
        parts.append(f'<text x="{cx + 17:.1f}" y="{cy:.1f}" {FONT}>{esc(item.name)}</text>')
        cx += label_width
    return parts, cy - y + 18


def bar_chart(
    title: str,
    categories: Sequence[str],
    series: Sequence[Series],
    *,
    currency: str,
    stacked: bool = True,
    width: int = 760,
    height: int = 280,
) -> str:
    """Vertical bars per category: stacked (a total made of parts) or side by side (to compare)."""
    left, right, top, bottom = 72.0, 16.0, 34.0, 46.0
    legend, legend_height = _legend(series, left, height - 8, width - left - right)
    total_height = height + legend_height
    plot_w, plot_h = width - left - right, height - top - bottom
    count = max(1, len(categories))
    if stacked:
        peak = max((sum(float(s.values[i]) for s in series) for i in range(len(categories))), default=0.0)
    else:
        peak = max((float(v) for s in series for v in s.values), default=0.0)
    axis_max, step = nice_ceiling(peak)
    slot = plot_w / count
    bar_w = max(1.0, slot * 0.78)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{total_height:.0f}" '
        f'viewBox="0 0 {width} {total_height:.0f}" role="img" aria-label="{esc(title)}">',
        f'<text x="{left:.1f}" y="20" {HEADING}>{esc(title)}</text>',
    ]
    ticks = int(round(axis_max / step))
    for tick in range(ticks + 1):
        level = step * tick
        y = top + plot_h - plot_h * level / axis_max
        parts.append(f'<line x1="{left:.1f}" x2="{left + plot_w:.1f}" y1="{y:.1f}" y2="{y:.1f}" '
                     f'stroke="#e3e3e3"/>')
        parts.append(f'<text x="{left - 6:.1f}" y="{y + 4:.1f}" text-anchor="end" {FONT} fill="#555">'
                     f'{_tick_label(level, step)}</text>')
    parts.append(f'<text x="14" y="{top + plot_h / 2:.1f}" {FONT} fill="#555" text-anchor="middle" '
                 f'transform="rotate(-90 14 {top + plot_h / 2:.1f})">{esc(currency)}</text>')
    label_every = max(1, math.ceil(count * 46 / plot_w))
    for index, category in enumerate(categories):
        x0 = left + slot * index + (slot - bar_w) / 2
        base = top + plot_h
        for number, item in enumerate(series):
            value = item.values[index]
            if value <= 0:
                continue
            h = plot_h * float(value) / axis_max
            if stacked:
                x, w, base = x0, bar_w, base - h
                y = base
            else:
                w = bar_w / len(series)
                x, y = x0 + w * number, top + plot_h - h
            tip = f"{category} · {item.name}: {amount(value, currency)}"
            parts.append(f'<rect x="{x:.2f}" y="{y:.2f}" width="{w:.2f}" height="{h:.2f}" '
                         f'fill="{color(number)}"><title>{esc(tip)}</title></rect>')
        if index % label_every == 0:
            cx = left + slot * index + slot / 2
            parts.append(f'<text x="{cx:.1f}" y="{top + plot_h + 16:.1f}" text-anchor="middle" {FONT} '
                         f'fill="#555">{esc(category)}</text>')
    parts.append(f'<line x1="{left:.1f}" x2="{left + plot_w:.1f}" y1="{top + plot_h:.1f}" '
                 f'y2="{top + plot_h:.1f}" stroke="#888"/>')
    parts.extend(legend)
    parts.append("</svg>")
    return "\n".join(parts)


def breakdown_chart(
    title: str,
    labels: Sequence[str],
    series: Sequence[Series],
    *,
    currency: str,
    width: int = 760,
) -> str:
    """Horizontal bars, one group per label (one bar per series), with each figure written beside it."""
    label_w = min(260.0, 16.0 + 7.0 * max((len(label) for label in labels), default=4))
    left, right, top = label_w, 120.0, 34.0
    row_h = 10.0 + 16.0 * len(series)
    plot_w = width - left - right
    peak = max((float(v) for s in series for v in s.values), default=0.0)
    axis_max = peak if peak > 0 else 1.0
    legend, legend_height = _legend(series, left, top + row_h * len(labels) + 22, plot_w)
    height = top + row_h * len(labels) + 14 + (legend_height + 10 if len(series) > 1 else 0)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height:.0f}" '
        f'viewBox="0 0 {width} {height:.0f}" role="img" aria-label="{esc(title)}">',
        f'<text x="8" y="20" {HEADING}>{esc(title)}</text>',
    ]
    for index, label in enumerate(labels):
        y0 = top + row_h * index
        parts.append(f'<text x="{left - 8:.1f}" y="{y0 + row_h / 2 + 4:.1f}" text-anchor="end" {FONT}>'
                     f'{esc(label)}</text>')
        for number, item in enumerate(series):
            value = item.values[index]
            w = plot_w * max(0.0, float(value)) / axis_max
            y = y0 + 5 + 16 * number
            tip = f"{label} · {item.name}: {amount(value, currency)}"
            parts.append(f'<rect x="{left:.1f}" y="{y:.1f}" width="{w:.2f}" height="13" '
                         f'fill="{color(number)}"><title>{esc(tip)}</title></rect>')
            parts.append(f'<text x="{left + w + 6:.1f}" y="{y + 11:.1f}" {FONT} fill="#333">'
                         f'{esc(amount(value, currency))}</text>')
    if len(series) > 1:
        parts.extend(legend)
    parts.append("</svg>")
    return "\n".join(parts)
