"""cli.report_html: ``usage report --format html`` — one self-contained page: charts, totals and line items.

The page needs nothing from the network: styles are inline, charts are inline SVG written
by ``cli.svg``, and there is no script. It shows, for the window asked:

- the totals (and, with ``--mode both``, the measured cost and the saving);
- daily cost stacked by cluster, then one daily chart per cluster (both modes side by
  side with ``--mode both``);
- a breakdown by the ``--by`` grouping;
- the line items, as the text table has them (backup storage among them, in every mode),
  and the report's notes (gaps, resets…).

Charts never mix currencies: each currency the window is priced in has its own charts (the
largest total first), showing only what is priced in it; unpriced use is in the tables.
Every figure is the report's presented figure
(rounded line items summed), so the page agrees with the table, CSV and JSON to the cent.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from reconciler.billing.backup_storage import backup_group
from reconciler.billing.compare import Comparison, compare, comparison_notes
from reconciler.billing.measured import MeasuredReport
from reconciler.billing.modes import BILLED, BOTH, INSTANCE_HOURS, MEASURED, Ledger, main_report
from reconciler.billing.usage import (
    TOTAL,
    UsageReport,
    decimal_text,
    hours_only,
    rate_text,
    report_notes,
    report_title,
    short_time,
)
from reconciler.cli.svg import Series, bar_chart, breakdown_chart
from reconciler.core.clock import isoformat

MAX_CLUSTER_CHARTS = 12
_STYLE = """
body { font-family: system-ui, -apple-system, 'Segoe UI', sans-serif; color: #222; margin: 24px auto;
       max-width: 1100px; padding: 0 16px; }
h1 { font-size: 22px; margin-bottom: 4px; } h2 { font-size: 17px; margin-top: 32px; }
.sub { color: #666; margin-top: 0; }
.cards { display: flex; gap: 12px; flex-wrap: wrap; }
.card { border: 1px solid #ddd; border-radius: 6px; padding: 10px 16px; min-width: 160px; }
.card .label { color: #666; font-size: 12px; } .card .value { font-size: 20px; font-weight: 600; }
table { border-collapse: collapse; width: 100%; font-size: 13px; margin-top: 8px; }
th, td { padding: 4px 8px; border-bottom: 1px solid #eee; text-align: left; white-space: nowrap; }
th { background: #f6f6f6; } td.n, th.n { text-align: right; font-variant-numeric: tabular-nums; }
tr.sub td { font-style: italic; color: #555; } tr.total td { font-weight: 600; border-top: 2px solid #ccc; }
.charts { display: flex; flex-wrap: wrap; gap: 8px; } .note { color: #555; font-size: 13px; }
"""


def _e(text: str) -> str:
    return html.escape(text, quote=True)


@dataclass(frozen=True)
class _Data:
    """Everything the page shows, built from the ledger."""

    title: str
    mode: str
    report: UsageReport  # the instance-hours report, or the measured one in measured mode
    measured: MeasuredReport | None
    comparison: Comparison | None
    days: tuple[str, ...]
    # currency -> cluster -> its daily series (one per mode shown), for clusters priced in it
    daily: dict[str, dict[str, tuple[Series, ...]]]
    currencies: tuple[str, ...]  # the priced currencies, largest total first


def _days(start: datetime, end: datetime) -> tuple[str, ...]:
    days: list[str] = []
    day = start.date()
    while datetime.combine(day, datetime.min.time(), tzinfo=start.tzinfo) < end:
        days.append(day.isoformat())
        day += timedelta(days=1)
    return tuple(days)


def _cents_by_day(report: UsageReport, currency: str, days: Sequence[str]) -> tuple[Decimal, ...]:
    found = {row.group: row.cents for row in report.rows if row.currency == currency}
    return tuple(found.get(day, Decimal(0)) for day in days)


def _currencies(report: UsageReport) -> tuple[str, ...]:
    priced = sorted((t for t in report.totals if t.currency), key=lambda t: (-t.cents, t.currency))
    return tuple(t.currency for t in priced)


def build_page(ledger: Ledger, *, by: str, mode: str, title: str = "Usage report") -> str:
    """The whole HTML page for ``mode`` (billed, instance-hours, measured or both)."""
    main, measured = main_report(ledger, by, mode)
    comparison = compare(main, measured) if mode == BOTH and measured is not None else None
    currencies = _currencies(main)
    days = _days(ledger.start, ledger.end)
    daily: dict[str, dict[str, tuple[Series, ...]]] = {currency: {} for currency in currencies}
    clusters = {i.cluster for i in ledger.intervals} | {backup_group(b, "cluster") for b in ledger.backups}
    for cluster in sorted(clusters):
        mine = ledger.only([i for i in ledger.intervals if i.cluster == cluster],
                           [b for b in ledger.backups if backup_group(b, "cluster") == cluster])
        day_report, day_measured = main_report(mine, "day", mode)
        reports = [day_report] + ([day_measured.report] if mode == BOTH and day_measured is not None else [])
        for currency in currencies:
            if not any(row.currency == currency for report in reports for row in report.rows):
                continue
            series = [Series(_SERIES_NAMES.get(mode, mode), _cents_by_day(day_report, currency, days))]
            if len(reports) > 1:
                series.append(Series(MEASURED, _cents_by_day(reports[1], currency, days)))
            daily[currency][cluster] = tuple(series)
    data = _Data(title=title, mode=mode, report=main, measured=measured, comparison=comparison, days=days,
                 daily=daily, currencies=currencies)
    return render_page(data, now=ledger.now)


_SERIES_NAMES = {BOTH: INSTANCE_HOURS, BILLED: "as billed"}


def render_page(data: _Data, *, now: datetime) -> str:
    report = data.report
    parts = [
        "<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
        f"<title>{_e(data.title)}</title>", f"<style>{_STYLE}</style>", "</head>", "<body>",
        f"<h1>{_e(data.title)}</h1>",
        f'<p class="sub">{_e(report_title(report))} · made '
        f"{_e(isoformat(now))}</p>",
        _cards(data),
    ]
    if not report.rows:
        parts.append("<p>No usage in this window.</p>")
    else:
        parts += _charts(data)
        if data.comparison is not None:
            parts += ["<h2>Instance-hours and measured</h2>", _comparison_table(data.comparison)]
            parts += ["<h2>Instance-hours line items</h2>", _lines_table(data.comparison.instance_hours)]
            parts += ["<h2>Measured line items</h2>", _lines_table(data.comparison.measured.report)]
        else:
            parts += ["<h2>Line items</h2>", _lines_table(report)]
    notes = report_notes(report)
    if data.comparison is not None:
        notes += comparison_notes(data.comparison)
    if data.measured is not None and data.measured.report is not report:
        notes += list(data.measured.report.notes)
    if notes:
        items = "".join(f'<li class="note">{_e(note)}</li>' for note in notes)
        parts.append(f"<h2>Notes</h2><ul>{items}</ul>")
    parts += ["</body>", "</html>"]
    return "\n".join(parts) + "\n"


def _card(label: str, value: str) -> str:
    return f'<div class="card"><div class="label">{_e(label)}</div><div class="value">{_e(value)}</div></div>'


def _amount(value: Decimal, currency: str) -> str:
    return f"{value} {currency}" if currency else "unpriced"


def _money(value: Decimal | None, currency: str) -> str:
    if value is None:
        return "not measured"
    return f"{value:,} {currency}" if currency else "unpriced"


def _cards(data: _Data) -> str:
    cards: list[str] = []
    if data.comparison is not None:
        for pair in data.comparison.totals:
            cur = pair.currency
            if not cur:
                continue
            cards.append(_card(f"instance-hours ({cur})", _money(pair.instance_hours, cur)))
            cards.append(_card(f"measured ({cur})", _money(pair.measured, cur)))
            if pair.saving is not None:
                cards.append(_card("saving", f"{_money(pair.saving, cur)} ({pair.saving_percent}%)"))
    else:
        for total in data.report.totals:
            label = f"total ({total.currency or 'unpriced'})"
            cards.append(_card(label, _money(total.cents, total.currency)))
    instances = max((t.instances for t in data.report.totals), default=0)
    cards.append(_card("servers", str(instances)))
    return '<div class="cards">' + "".join(cards) + "</div>"


def _charts(data: _Data) -> list[str]:
    if not data.currencies:
        return ['<p class="note">Nothing in this window is priced, so there is nothing to chart.</p>']
    parts: list[str] = []
    for currency in data.currencies:
        parts += _currency_charts(data, currency)
    return parts


def _currency_charts(data: _Data, currency: str) -> list[str]:
    """The charts of what is priced in ``currency`` (headings name it when the page has several)."""
    daily = data.daily[currency]
    suffix = f" ({currency})" if len(data.currencies) > 1 else ""
    short_days = [day[5:] for day in data.days]  # MM-DD
    # each cluster's first series is the report's own mode (instance-hours first with --mode both)
    stacked = [Series(cluster, series[0].values) for cluster, series in daily.items() if series]
    shown = _SERIES_NAMES.get(data.mode, data.mode)
    parts = [f"<h2>Cost over time{_e(suffix)}</h2>", '<div class="charts">',
             bar_chart(f"Daily cost by cluster ({shown}){suffix}", short_days, stacked, currency=currency)]
    for number, (cluster, series) in enumerate(daily.items()):
        if number == MAX_CLUSTER_CHARTS:
            parts.append(f'<p class="note">{len(daily) - number} more clusters are in the tables.</p>')
            break
        parts.append(bar_chart(f"Cluster {cluster}: daily cost{suffix}", short_days, series,
                               currency=currency, stacked=False, width=540, height=220))
    parts.append("</div>")
    rows = _breakdown_rows(data, currency)
    labels = [label for label, _ in rows]
    values = [values for _, values in rows]
    names = [INSTANCE_HOURS, MEASURED] if data.comparison is not None else [shown]
    series_list = [Series(name, tuple(v[i] for v in values)) for i, name in enumerate(names)]
    parts += [f"<h2>Breakdown by {_e(data.report.by)}{_e(suffix)}</h2>",
              breakdown_chart(f"Cost by {data.report.by} ({currency})", labels, series_list,
                              currency=currency)]
    return parts


def _breakdown_rows(data: _Data, currency: str) -> list[tuple[str, tuple[Decimal, ...]]]:
    if data.comparison is not None:
        return [(row.group, (row.instance_hours, row.measured or Decimal(0)))
                for row in data.comparison.rows if row.currency == currency]
    return [(row.group, (row.cents,)) for row in data.report.rows if row.currency == currency]


def _table(headers: Sequence[tuple[str, bool]], rows: Sequence[tuple[str, Sequence[str]]]) -> str:
    head = "".join(f'<th class="n">{_e(h)}</th>' if numeric else f"<th>{_e(h)}</th>"
                   for h, numeric in headers)
    body = []
    for css, cells in rows:
        tds = "".join(f'<td class="n">{_e(c)}</td>' if numeric else f"<td>{_e(c)}</td>"
                      for c, (_, numeric) in zip(cells, headers, strict=True))
        body.append(f'<tr class="{css}">{tds}</tr>' if css else f"<tr>{tds}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _lines_table(report: UsageReport) -> str:
    measured = not hours_only(report.rows)
    headers = [(report.by.capitalize(), False), ("Rate", True), ("Resource" if measured else "Flavor", False),
               ("Description", False), ("Instances", True), ("Quantity" if measured else "Hours", True),
               ("Total", True), ("Start", False), ("End", False)]
    rows: list[tuple[str, Sequence[str]]] = []
    amount = _amount
    for row in report.rows:
        for number, line in enumerate(row.lines):
            quantity = decimal_text(line.quantity, 4 if measured else 2)
            rows.append(("", [row.group if number == 0 else "", rate_text(line.rate) if line.priced else "",
                              line.item, line.description, str(line.instances), quantity,
                              amount(line.cents, line.currency), short_time(line.first_start),
                              short_time(line.last_end)]))
        if len(row.lines) > 1:
            rows.append(("sub", ["", "", "", f"{row.group} subtotal", str(row.instances),
                                 "" if measured else decimal_text(row.billed_hours, 2),
                                 amount(row.cents, row.currency), short_time(row.first_start),
                                 short_time(row.last_end)]))
    for total in report.totals:
        rows.append(("total", [TOTAL, "", "", "", str(total.instances),
                               "" if measured else decimal_text(total.billed_hours, 2),
                               amount(total.cents, total.currency), short_time(total.first_start),
                               short_time(total.last_end)]))
    return _table(headers, rows)


def _comparison_table(comparison: Comparison) -> str:
    headers = [(comparison.by.capitalize(), False), ("Instances", True), ("Hours", True),
               ("Instance-hours", True), ("Measured", True), ("Saving", True), ("Saving %", True)]
    rows: list[tuple[str, Sequence[str]]] = []
    for css, row in [("", r) for r in comparison.rows] + [("total", t) for t in comparison.totals]:
        saving = "" if row.saving is None or not row.currency else _money(row.saving, row.currency)
        percent = "" if row.saving_percent is None or not row.currency else f"{row.saving_percent}%"
        rows.append((css, [row.group, str(row.instances), decimal_text(row.billed_hours, 2),
                           _money(row.instance_hours, row.currency), _money(row.measured, row.currency),
                           saving, percent]))
    return _table(headers, rows)
