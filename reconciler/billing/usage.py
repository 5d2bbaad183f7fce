"""billing.usage: usage reports — the usage ledger's intervals grouped, summed and priced as line items.

``build_report`` clips every interval to the report window [start, end) (an interval still
open runs up to ``now``, capped at ``end``), counts its whole seconds, bills them at the rate
recorded when the interval opened (or reprices them by today's PriceList when asked) and
groups them by cluster, member, server key, provider, flavor or UTC day. With ``by day`` an
interval is cut at each midnight. The billing terms decide what is billed — every second, or
every started minute or hour (``pricing.billed_seconds``): those recorded with the interval
(the terms of the PriceList that priced it when it opened), or those of the PriceList that
reprices it, so the default report and ``--prices`` with the same PriceList agree. An
interval recorded before terms were (state schema 1) is billed by the second, as it always
was, and the report says so.

A report is made of rows (one per group and currency) and each row of line items (one per
flavor and rate: "0.0416 USD per sim.medium instance-hour"), the shape of a classic usage
estimate. ``billing`` builds the same shape from measured use (vCPU-hours, GB-hours, GB),
and ``billing.backup_storage`` adds backup storage (GB-months) as line items of the same groups
(``merge_rows``).

Money stays ``Decimal`` and unrounded in the report. Presented figures are rounded once, per
line item, to the cent (half up); a row's presented cost is the sum of its rounded line
items and a total the sum of its rounded rows — so the figures printed always add up, as on
an invoice. (Two groupings of one window round different line items, so their totals may
differ by a cent; ``cost_exact`` in JSON does not.) Money in different currencies is never
added: a group priced in two currencies is two rows; intervals nothing priced form rows
with currency "".
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from reconciler.core.clock import isoformat
from reconciler.core.errors import UserError
from reconciler.core.model import PriceList
from reconciler.core.pricing import (
    billed_seconds,
    granularity_note,
    interval_terms,
    price_list_of,
    seconds_to_hours,
)
from reconciler.core.records import UsageInterval

GROUPINGS = ("cluster", "member", "server", "provider", "flavor", "day")
TOTAL = "total"
_CENT = Decimal("0.01")
_DAY = timedelta(days=1)
INSTANCE_HOUR = "instance-hour"


def money(amount: Decimal) -> Decimal:
    """Round to cents (half up) — only ever for presenting."""
    return amount.quantize(_CENT, rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class LineItem:
    """One line of a usage estimate: one item (a flavor, a resource) at one rate, within a group."""

    group: str
    item: str  # a flavor or "(2 vCPU, 4096 MB, 20 GB)"; or a measured resource: "vCPU", "RAM"…
    unit: str  # "instance-hour", "vCPU-hour", "GB-hour", "GB-month", "GB", "server-month"
    rate: Decimal | None  # per unit; None when nothing priced it
    currency: str
    instances: int
    quantity: Decimal  # billed units
    cost: Decimal
    first_start: datetime
    last_end: datetime
    note: str = ""

    @property
    def priced(self) -> bool:
        return bool(self.currency) and self.rate is not None

    @property
    def cents(self) -> Decimal:
        return money(self.cost)

    @property
    def description(self) -> str:
        """``per instance-hour, whole hours``; ``per GB-hour, memory in use``; ``unpriced …``."""
        text = f"per {self.unit}" if self.priced else f"unpriced {self.unit}s"
        return f"{text}, {self.note}" if self.note else text


@dataclass(frozen=True)
class UsageRow:
    """One group's use in the window; ``currency`` is "" when nothing priced it."""

    group: str
    instances: int  # distinct resources (provider, resource id)
    seconds: int  # time the group's servers existed in the window
    cost: Decimal
    currency: str
    first_start: datetime  # clipped to the window
    last_end: datetime  # clipped to the window (and to "now" for a running server)
    billed_seconds: int | None = None  # None: the same as ``seconds``
    lines: tuple[LineItem, ...] = ()
    rounded: Decimal | None = None  # presented cost when given (totals: the sum of rounded rows)
    resources: frozenset[tuple[str, str]] = field(default=frozenset(), repr=False, compare=False)

    @property
    def hours(self) -> Decimal:
        return seconds_to_hours(self.seconds)

    @property
    def billed_hours(self) -> Decimal:
        return seconds_to_hours(self.seconds if self.billed_seconds is None else self.billed_seconds)

    @property
    def rate(self) -> Decimal | None:
        """Average hourly rate over the row (cost / billed hours); None when unpriced or empty."""
        if not self.currency or self.billed_hours == 0:
            return None
        return self.cost / self.billed_hours

    @property
    def priced(self) -> bool:
        return bool(self.currency)

    @property
    def cents(self) -> Decimal:
        """The presented cost: the sum of the rounded line items."""
        if self.rounded is not None:
            return self.rounded
        if self.lines:
            return sum((line.cents for line in self.lines), Decimal(0))
        return money(self.cost)


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
    mode: str = "instance-hours"
    notes: tuple[str, ...] = ()  # gaps, counter resets… for people

    @property
    def total_seconds(self) -> int:
        return sum(row.seconds for row in self.rows)


@dataclass
class Acc:
    """Sums for one row or one line item while a report is built."""

    resources: set[tuple[str, str]] = field(default_factory=set)
    seconds: int = 0
    billed: int = 0
    quantity: Decimal = Decimal(0)
    cost: Decimal = Decimal(0)
    first: datetime | None = None
    last: datetime | None = None

    def span(self, first: datetime, last: datetime) -> None:
        self.first = first if self.first is None else min(self.first, first)
        self.last = last if self.last is None else max(self.last, last)

    def add(
        self, resource: tuple[str, str], seconds: int, cost: Decimal, first: datetime, last: datetime,
        *, billed: int | None = None, quantity: Decimal = Decimal(0),
    ) -> None:
        self.resources.add(resource)
        self.seconds += seconds
        self.billed += seconds if billed is None else billed
        self.quantity += quantity
        self.cost += cost
        self.span(first, last)

    def row(
        self, group: str, currency: str, *, lines: tuple[LineItem, ...] = (), instances: int | None = None
    ) -> UsageRow:
        assert self.first is not None and self.last is not None
        return UsageRow(
            group=group,
            instances=len(self.resources) if instances is None else instances,
            seconds=self.seconds,
            cost=self.cost,
            currency=currency,
            first_start=self.first,
            last_end=self.last,
            billed_seconds=self.billed,
            lines=lines,
            resources=frozenset(self.resources),
        )

    def line(
        self, group: str, item: str, unit: str, rate: Decimal | None, currency: str, note: str
    ) -> LineItem:
        assert self.first is not None and self.last is not None
        return LineItem(group=group, item=item, unit=unit, rate=rate, currency=currency,
                        instances=len(self.resources), quantity=self.quantity, cost=self.cost,
                        first_start=self.first, last_end=self.last, note=note)


def group_of(interval: UsageInterval, by: str) -> str:
    if by == "cluster":
        return interval.cluster
    if by == "member":
        return interval.member
    if by == "provider":
        return interval.provider
    if by == "server":
        return interval.key
    return flavor_label(interval)


def flavor_label(interval: UsageInterval) -> str:
    return interval.flavor or f"({interval.size})"


def day_of(moment: datetime) -> str:
    return moment.date().isoformat()


def split_days(first: datetime, last: datetime) -> Iterator[tuple[datetime, datetime]]:
    """[first, last) cut at each UTC midnight."""
    while first < last:
        midnight = first.replace(hour=0, minute=0, second=0, microsecond=0) + _DAY
        stop = min(midnight, last)
        yield first, stop
        first = stop


def whole_seconds(first: datetime, last: datetime) -> int:
    """Seconds between the two instants, each truncated to its whole second (so pieces add up)."""
    return (last.replace(microsecond=0) - first.replace(microsecond=0)) // timedelta(seconds=1)


def check_window(start: datetime, end: datetime, by: str) -> None:
    if by not in GROUPINGS:
        raise UserError(f"--by {by!r} is not a grouping; use one of {', '.join(GROUPINGS)}")
    if end <= start:
        raise UserError(f"--to {isoformat(end)} must be after --from {isoformat(start)}")


def pieces(
    interval: UsageInterval, start: datetime, end: datetime, now: datetime, by: str
) -> list[tuple[str, datetime, datetime]]:
    """(group, first, last) pieces of the interval inside the window; empty when it falls outside."""
    first = max(interval.start, start)
    last = min(end, max(start, min(now, end))) if interval.end is None else min(interval.end, end)
    if last <= first:
        return []
    if by == "day":
        return [(day_of(a), a, b) for a, b in split_days(first, last)]
    return [(group_of(interval, by), first, last)]


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

    Each interval is billed at the rate recorded with it, under the terms recorded with it
    (``pricing.interval_terms``). ``reprice`` maps a provider name to a PriceList to price
    with instead (its rate, currency and granularity); a provider it returns None for (or
    raises KeyError for) keeps what was recorded.
    """
    check_window(start, end, by)
    rows: dict[tuple[str, str], Acc] = {}
    lines: dict[tuple[str, str, str, Decimal | None, str], Acc] = {}
    running = untermed = 0
    for interval in intervals:
        cut = pieces(interval, start, end, now, by)
        if not cut or whole_seconds(cut[0][1], cut[-1][2]) == 0:
            continue
        plist = price_list_of(reprice, interval.provider) if reprice is not None else None
        rate, currency, granularity = interval_terms(interval, plist)
        note = "" if rate is None else granularity_note(granularity)
        if plist is None and not interval.terms_recorded:
            note += ", terms not recorded"
            untermed += 1
        running += interval.end is None
        resource = (interval.provider, interval.resource_id)
        for group, first, last in cut:
            seconds = whole_seconds(first, last)
            billed = billed_seconds(interval.start, first, last, granularity) if rate is not None else seconds
            if seconds == 0 and billed == 0:
                continue
            cost = Decimal(0) if rate is None else rate * billed / Decimal(3600)
            rows.setdefault((group, currency), Acc()).add(resource, seconds, cost, first, last, billed=billed)
            item = lines.setdefault((group, currency, flavor_label(interval), rate, note), Acc())
            item.add(resource, seconds, cost, first, last, billed=billed, quantity=seconds_to_hours(billed))
    by_row: dict[tuple[str, str], list[LineItem]] = {}
    for key in sorted(lines, key=_line_order):
        group, currency, label, rate, note = key
        line = lines[key].line(group, label, INSTANCE_HOUR, rate, currency, note)
        by_row.setdefault((group, currency), []).append(line)
    report_rows = tuple(rows[k].row(*k, lines=tuple(by_row[k])) for k in sorted(rows))
    notes = (UNTERMED_NOTE.format(count=untermed),) if untermed else ()
    return UsageReport(start=start, end=end, by=by, now=now, rows=report_rows, totals=totals_of(report_rows),
                       running=running, repriced=reprice is not None, notes=notes)


UNTERMED_NOTE = (
    "{count} interval(s) opened before billing terms were recorded with the rate (state schema 1): "
    "billed by the second, as before; reprice with --prices PATH to bill them under a PriceList's terms"
)


def _line_order(key: tuple[str, str, str, Decimal | None, str]) -> tuple[str, str, str, Decimal, str]:
    group, currency, label, rate, note = key
    return group, currency, label, Decimal(-1) if rate is None else rate, note


def merge_rows(first: Sequence[UsageRow], second: Sequence[UsageRow]) -> tuple[UsageRow, ...]:
    """Rows of two parts of one report as one: a group's rows in one currency are joined (their
    line items kept, first's first; instances are distinct resources), in (group, currency) order."""
    rows: dict[tuple[str, str], UsageRow] = {}
    for row in (*first, *second):
        key = (row.group, row.currency)
        seen = rows.get(key)
        if seen is None:
            rows[key] = row
            continue
        resources = seen.resources | row.resources
        rows[key] = UsageRow(
            group=row.group, currency=row.currency, instances=len(resources),
            seconds=seen.seconds + row.seconds, cost=seen.cost + row.cost,
            first_start=min(seen.first_start, row.first_start), last_end=max(seen.last_end, row.last_end),
            billed_seconds=_billed(seen) + _billed(row), lines=seen.lines + row.lines, resources=resources,
        )
    return tuple(rows[key] for key in sorted(rows))


def _billed(row: UsageRow) -> int:
    return row.seconds if row.billed_seconds is None else row.billed_seconds


def totals_of(rows: Sequence[UsageRow]) -> tuple[UsageRow, ...]:
    """One total per currency: the sums of its rows, each instance counted once across rows.

    A total's presented cost is the sum of its rows' presented costs.
    """
    totals: list[UsageRow] = []
    for currency in sorted({row.currency for row in rows}):
        mine = [row for row in rows if row.currency == currency]
        total = Acc()
        for row in mine:
            total.resources |= row.resources
            total.seconds += row.seconds
            total.billed += row.seconds if row.billed_seconds is None else row.billed_seconds
            total.cost += row.cost
            total.span(row.first_start, row.last_end)
        totals.append(dataclasses.replace(
            total.row(TOTAL, currency), rounded=sum((row.cents for row in mine), Decimal(0))
        ))
    return tuple(totals)


# --- presenting -------------------------------------------------------------------------------
def short_time(moment: datetime) -> str:
    return isoformat(moment)[:16].replace("T", " ")


def decimal_text(value: Decimal, places: int) -> str:
    return str(value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP))


def rate_text(rate: Decimal | None) -> str:
    """A unit rate: four decimals, up to six when it needs them (0.0416, 0.000012)."""
    if rate is None:
        return ""
    six = rate.quantize(Decimal("0.000001"), rounding=ROUND_HALF_UP)
    places = next(p for p in (4, 5, 6) if six == six.quantize(Decimal(1).scaleb(-p)))
    return decimal_text(six, places)


def _quantity(line: LineItem) -> str:
    return decimal_text(line.quantity, 2 if line.unit == INSTANCE_HOUR else 4)


def _amount(cents: Decimal, currency: str) -> str:
    return f"{cents} {currency}" if currency else "unpriced"


MODE_TITLES = {"billed": "as each PriceList bills"}


def hours_only(rows: Sequence[UsageRow]) -> bool:
    """Whether every line item is instance-hours (then quantities are hours, and rows can sum them)."""
    return all(line.unit == INSTANCE_HOUR for row in rows for line in row.lines)


def report_title(report: UsageReport) -> str:
    mode = MODE_TITLES.get(report.mode, report.mode)
    title = f"Usage by {report.by}, {short_time(report.start)} → {short_time(report.end)} UTC, {mode}"
    return title + (" (repriced)" if report.repriced else "")


def report_notes(report: UsageReport) -> list[str]:
    notes = []
    if report.running:
        until = short_time(min(report.now, report.end))
        notes.append(f"{report.running} server(s) still running: counted up to {until}")
    if any(not row.priced for row in report.rows):
        notes.append(
            "unpriced: nothing prices these servers — no rate for their flavor and no unit rates in the "
            "PriceList given, or no PriceList for their provider and no price recorded"
            if report.repriced
            else "unpriced: no price was recorded for these servers (no PriceList priced them when they "
            "ran); reprice them with --prices PATH"
        )
    return notes + list(report.notes)


def format_table(report: UsageReport, *, color: bool = False, width: int = 150) -> str:
    """A usage estimate as text: one line per item and rate; ANSI colour only when ``color``."""
    from rich import box  # imported here: rich is for tables only, and the CLI starts without it
    from rich.console import Console
    from rich.table import Table

    measured = not hours_only(report.rows)
    table = Table(box=box.SIMPLE_HEAD, show_edge=False)
    table.add_column(report.by.capitalize(), style="bold" if color else None, no_wrap=True)
    table.add_column("Rate", justify="right", no_wrap=True)
    table.add_column("Resource" if measured else "Flavor", no_wrap=True)
    table.add_column("Description")
    table.add_column("Instances", justify="right", no_wrap=True)
    table.add_column("Quantity" if measured else "Hours", justify="right", no_wrap=True)
    table.add_column("Total", justify="right", no_wrap=True)
    table.add_column("Start", no_wrap=True)
    table.add_column("End", no_wrap=True)
    for index, row in enumerate(report.rows):
        last_row = index == len(report.rows) - 1
        for number, line in enumerate(row.lines):
            table.add_row(
                row.group if number == 0 else "", rate_text(line.rate) if line.priced else "", line.item,
                line.description, str(line.instances), _quantity(line), _amount(line.cents, line.currency),
                short_time(line.first_start), short_time(line.last_end),
                end_section=last_row and number == len(row.lines) - 1 and len(row.lines) == 1,
            )
        if len(row.lines) > 1:
            hours = "" if measured else decimal_text(row.billed_hours, 2)
            table.add_row("", "", "", f"{row.group} subtotal", str(row.instances), hours,
                          _amount(row.cents, row.currency), short_time(row.first_start),
                          short_time(row.last_end), style="italic" if color else None, end_section=last_row)
    for total in report.totals:
        hours = "" if measured else decimal_text(total.billed_hours, 2)
        table.add_row(TOTAL, "", "", "", str(total.instances), hours, _amount(total.cents, total.currency),
                      short_time(total.first_start), short_time(total.last_end),
                      style="bold" if color else None)
    buffer = io.StringIO()
    console = Console(file=buffer, width=width, force_terminal=color, no_color=not color,
                      color_system="standard" if color else None, highlight=False, emoji=False)
    console.print(report_title(report), markup=False, soft_wrap=True)
    console.print(table if report.rows else "no usage in this window")
    for note in report_notes(report):
        console.print(f"  {note}", markup=False, soft_wrap=True)
    return "\n".join(line.rstrip() for line in buffer.getvalue().splitlines()) + "\n"


def line_dict(line: LineItem) -> dict[str, Any]:
    return {
        "item": line.item,
        "unit": line.unit,
        "description": line.description,
        "rate": None if line.rate is None else str(line.rate),
        "instances": line.instances,
        "quantity": decimal_text(line.quantity, 6),
        "cost": str(line.cents) if line.priced else None,
        "cost_exact": str(line.cost),
        "currency": line.currency,
        "first_start": isoformat(line.first_start),
        "last_end": isoformat(line.last_end),
    }


def row_dict(row: UsageRow, *, with_lines: bool = True) -> dict[str, Any]:
    rate = row.rate
    data: dict[str, Any] = {
        "group": row.group,
        "instances": row.instances,
        "hours": decimal_text(row.hours, 4),
        "seconds": row.seconds,
        "billed_hours": decimal_text(row.billed_hours, 4),
        "rate": None if rate is None else decimal_text(rate, 6),
        "cost": str(row.cents) if row.priced else None,
        "cost_exact": str(row.cost),
        "currency": row.currency,
        "first_start": isoformat(row.first_start),
        "last_end": isoformat(row.last_end),
    }
    if with_lines:
        data["lines"] = [line_dict(line) for line in row.lines]
    return data


CSV_FIELDS = (
    "group", "instances", "hours", "seconds", "billed_hours", "rate", "cost", "cost_exact", "currency",
    "first_start", "last_end",
)


def format_csv(report: UsageReport) -> str:
    """One line per row (no total lines, so a spreadsheet's SUM counts nothing twice)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_FIELDS, lineterminator="\n")
    writer.writeheader()
    for row in report.rows:
        writer.writerow({k: "" if v is None else v for k, v in row_dict(row, with_lines=False).items()})
    return buffer.getvalue()


def report_dict(report: UsageReport) -> dict[str, Any]:
    return {
        "mode": report.mode,
        "by": report.by,
        "start": isoformat(report.start),
        "end": isoformat(report.end),
        "now": isoformat(report.now),
        "repriced": report.repriced,
        "running": report.running,
        "rows": [row_dict(row) for row in report.rows],
        "totals": [row_dict(row, with_lines=False) for row in report.totals],
        "notes": list(report.notes),
    }


def format_json(report: UsageReport) -> str:
    return json.dumps(report_dict(report), indent=2) + "\n"
