"""usage: month-end usage reports — the usage ledger's intervals grouped, summed and priced.

``build_report`` clips every interval to the report window [start, end) (an interval still
open runs up to ``now``, capped at ``end``), counts whole seconds, prices them at the rate
recorded when the interval opened (or reprices them by today's PriceList when asked), and
groups them by cluster, provider, server key or flavor.

Money stays ``Decimal`` and unrounded in the report; the formatters round to cents only
when printing. A group priced in two currencies becomes two rows (money in different
currencies is never added), and intervals nothing priced form rows with currency ``""``.
Totals, one per currency, are the sums of their rows' seconds and cost.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table

from reconciler.clock import isoformat
from reconciler.errors import UserError
from reconciler.model import PriceList
from reconciler.pricing import interval_rate, overlap_seconds, price_list_of, seconds_to_hours
from reconciler.store.base import UsageInterval

GROUPINGS = ("cluster", "provider", "server", "flavor")
TOTAL = "total"
_CENT = Decimal("0.01")


@dataclass(frozen=True)
class UsageRow:
    """One group's use in the window; ``currency`` is "" when nothing priced it."""

    group: str
    instances: int  # distinct resources (provider, resource id)
    seconds: int
    cost: Decimal
    currency: str
    first_start: datetime  # clipped to the window
    last_end: datetime  # clipped to the window (and to "now" for a running server)

    @property
    def hours(self) -> Decimal:
        return seconds_to_hours(self.seconds)

    @property
    def rate(self) -> Decimal | None:
        """Average hourly rate over the row (cost / hours); None when unpriced or empty."""
        if not self.currency or self.seconds == 0:
            return None
        return self.cost / self.hours

    @property
    def priced(self) -> bool:
        return bool(self.currency)


@dataclass(frozen=True)
class UsageReport:
    start: datetime
    end: datetime
    by: str
    now: datetime
    rows: tuple[UsageRow, ...]
    totals: tuple[UsageRow, ...] = ()  # one per currency, group ``TOTAL``
    running: int = 0  # intervals still open at ``now`` that fall in the window
    repriced: bool = False

    @property
    def total_seconds(self) -> int:
        return sum(row.seconds for row in self.rows)


@dataclass
class _Acc:
    resources: set[tuple[str, str]] = field(default_factory=set)
    seconds: int = 0
    cost: Decimal = Decimal(0)
    first: datetime | None = None
    last: datetime | None = None

    def add(
        self, resource: tuple[str, str], seconds: int, cost: Decimal, first: datetime, last: datetime
    ) -> None:
        self.resources.add(resource)
        self.seconds += seconds
        self.cost += cost
        self.first = first if self.first is None else min(self.first, first)
        self.last = last if self.last is None else max(self.last, last)

    def row(self, group: str, currency: str, instances: int | None = None) -> UsageRow:
        assert self.first is not None and self.last is not None
        return UsageRow(
            group=group,
            instances=len(self.resources) if instances is None else instances,
            seconds=self.seconds,
            cost=self.cost,
            currency=currency,
            first_start=self.first,
            last_end=self.last,
        )


def group_of(interval: UsageInterval, by: str) -> str:
    if by == "cluster":
        return interval.cluster
    if by == "provider":
        return interval.provider
    if by == "server":
        return interval.key
    return interval.flavor or f"({interval.size})"


def build_report(
    intervals: Sequence[UsageInterval],
    *,
    start: datetime,
    end: datetime,
    by: str,
    now: datetime,
    reprice: Callable[[str], PriceList | None] | None = None,
) -> UsageReport:
    """Group and price the intervals' use of [start, end) (see the module docstring).

    ``reprice`` maps a provider name to a PriceList to price with instead of the rates
    recorded in the ledger; a provider it returns None for (or raises KeyError for) keeps
    its recorded rates.
    """
    if by not in GROUPINGS:
        raise UserError(f"--by {by!r} is not a grouping; use one of {', '.join(GROUPINGS)}")
    if end <= start:
        raise UserError(f"--to {isoformat(end)} must be after --from {isoformat(start)}")
    running_until = max(start, min(now, end))
    groups: dict[tuple[str, str], _Acc] = {}
    running = 0
    for interval in intervals:
        stop = running_until if interval.end is None else end
        seconds = overlap_seconds(interval, start, stop)
        if seconds == 0:
            continue
        plist = price_list_of(reprice, interval.provider) if reprice is not None else None
        rate = interval_rate(interval, plist)
        currency = "" if rate is None else (plist.currency if plist is not None else interval.currency)
        cost = Decimal(0) if rate is None else rate * seconds / Decimal(3600)
        first = max(interval.start, start)
        last = stop if interval.end is None else min(interval.end, end)
        running += interval.end is None
        acc = groups.setdefault((group_of(interval, by), currency), _Acc())
        acc.add((interval.provider, interval.resource_id), seconds, cost, first, last)

    rows = tuple(groups[k].row(*k) for k in sorted(groups))
    totals: list[UsageRow] = []
    for currency in sorted({row.currency for row in rows}):
        mine = [row for row in rows if row.currency == currency]
        resources = set().union(*(groups[(row.group, currency)].resources for row in mine))
        total = _Acc(resources=resources)
        for row in mine:
            total.seconds += row.seconds
            total.cost += row.cost
            total.first = row.first_start if total.first is None else min(total.first, row.first_start)
            total.last = row.last_end if total.last is None else max(total.last, row.last_end)
        totals.append(total.row(TOTAL, currency))
    return UsageReport(start=start, end=end, by=by, now=now, rows=rows, totals=tuple(totals),
                       running=running, repriced=reprice is not None)


# --- printing ---------------------------------------------------------------------------------
def money(amount: Decimal) -> Decimal:
    """Round to cents (half up) — only ever for printing."""
    return amount.quantize(_CENT, rounding=ROUND_HALF_UP)


def _hours(row: UsageRow, places: str) -> str:
    return str(row.hours.quantize(Decimal(places), rounding=ROUND_HALF_UP))


def _rate(row: UsageRow) -> str:
    rate = row.rate
    return "" if rate is None else str(rate.quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP))


def _short(moment: datetime) -> str:
    return isoformat(moment)[:16].replace("T", " ")


def format_table(report: UsageReport, *, color: bool = False, width: int = 110) -> str:
    """A usage-estimate table as text; ANSI colour only when ``color`` (the CLI passes isatty)."""
    title = f"Usage by {report.by}, {_short(report.start)} → {_short(report.end)} UTC"
    if report.repriced:
        title += " (repriced)"
    table = Table(title=title, box=box.SIMPLE_HEAD, title_justify="left", show_edge=False)
    table.add_column(report.by.capitalize(), style="bold" if color else None, no_wrap=True)
    for name in ("Instances", "Hours", "Rate/h", "Cost"):
        table.add_column(name, justify="right", no_wrap=True)
    table.add_column("Start", no_wrap=True)
    table.add_column("End", no_wrap=True)

    def cells(row: UsageRow) -> list[str]:
        cost = f"{money(row.cost)} {row.currency}" if row.priced else "unpriced"
        return [row.group, str(row.instances), _hours(row, "0.01"), _rate(row), cost,
                _short(row.first_start), _short(row.last_end)]

    for index, row in enumerate(report.rows):
        table.add_row(*cells(row), end_section=index == len(report.rows) - 1)
    for total in report.totals:
        table.add_row(*cells(total), style="bold" if color else None)
    buffer = io.StringIO()
    console = Console(file=buffer, width=width, force_terminal=color, no_color=not color,
                      color_system="standard" if color else None, highlight=False, emoji=False)
    if not report.rows:
        console.print(f"{title}\nno usage in this window")
    else:
        console.print(table)
    notes = []
    if report.running:
        until = _short(min(report.now, report.end))
        notes.append(f"{report.running} server(s) still running: counted up to {until}")
    if any(not row.priced for row in report.rows):
        notes.append("unpriced: no price was recorded for these servers; reprice them with a PriceList")
    for note in notes:
        console.print(f"  {note}")
    return "\n".join(line.rstrip() for line in buffer.getvalue().splitlines()) + "\n"


def _row_dict(row: UsageRow) -> dict[str, Any]:
    rate = row.rate
    return {
        "group": row.group,
        "instances": row.instances,
        "hours": _hours(row, "0.0001"),
        "seconds": row.seconds,
        "rate": None if rate is None else str(rate.quantize(Decimal("0.000001"), rounding=ROUND_HALF_UP)),
        "cost": str(money(row.cost)) if row.priced else None,
        "currency": row.currency,
        "first_start": isoformat(row.first_start),
        "last_end": isoformat(row.last_end),
    }


_CSV_FIELDS = (
    "group", "instances", "hours", "seconds", "rate", "cost", "currency", "first_start", "last_end",
)


def format_csv(report: UsageReport) -> str:
    """One line per row (no total lines, so a spreadsheet's SUM counts nothing twice)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=_CSV_FIELDS, lineterminator="\n")
    writer.writeheader()
    for row in report.rows:
        writer.writerow({k: "" if v is None else v for k, v in _row_dict(row).items()})
    return buffer.getvalue()


def format_json(report: UsageReport) -> str:
    data = {
        "by": report.by,
        "start": isoformat(report.start),
        "end": isoformat(report.end),
        "now": isoformat(report.now),
        "repriced": report.repriced,
        "running": report.running,
        "rows": [_row_dict(row) for row in report.rows],
        "totals": [_row_dict(row) for row in report.totals],
    }
    return json.dumps(data, indent=2) + "\n"
