"""billing.compare: ``--mode both`` — the measured cost beside the instance-hour cost, and the saving.

The two reports are built over the same window and grouping, priced by the same
PriceLists; a row pairs one group in one currency. The figures compared are the presented
ones (each report's rounded line items summed), so the table's saving is exactly the
difference of the two printed costs, and its totals are sums of its rows. A group with no
measured use (its provider reports no metrics, or nothing was sampled yet) shows no
measured cost rather than a saving it never made — backup storage alone, which both sides
carry at the same price, does not count as measured use of a group that has servers — and
the total's saving is taken over the measured groups only (``compared``), so an unmeasured
group's instance-hours are never presented as saved.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table

from reconciler.billing.backup_storage import ITEM as BACKUP_ITEM
from reconciler.billing.measured import MeasuredReport
from reconciler.billing.usage import TOTAL, UsageReport, UsageRow, decimal_text, report_dict, short_time
from reconciler.core.clock import isoformat


@dataclass(frozen=True)
class ComparisonRow:
    group: str
    currency: str
    instances: int
    billed_hours: Decimal
    instance_hours: Decimal  # presented (rounded) cost of the instance-hours report
    measured: Decimal | None  # presented cost of the measured report; None when nothing was measured
    # the instance-hours cost the measured one is set against: a total's counts only the
    # rows that were measured; None: ``instance_hours``
    compared: Decimal | None = None

    @property
    def baseline(self) -> Decimal:
        return self.instance_hours if self.compared is None else self.compared

    @property
    def saving(self) -> Decimal | None:
        return None if self.measured is None else self.baseline - self.measured

    @property
    def saving_percent(self) -> Decimal | None:
        if self.saving is None or self.baseline == 0:
            return None
        return (self.saving * 100 / self.baseline).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class Comparison:
    instance_hours: UsageReport
    measured: MeasuredReport
    rows: tuple[ComparisonRow, ...]
    totals: tuple[ComparisonRow, ...]

    @property
    def by(self) -> str:
        return self.instance_hours.by

    @property
    def start(self) -> datetime:
        return self.instance_hours.start

    @property
    def end(self) -> datetime:
        return self.instance_hours.end


def compare(instance_hours: UsageReport, measured: MeasuredReport) -> Comparison:
    """Pair the two reports' rows by (group, currency); totals are the sums of the paired rows."""
    ih = {(row.group, row.currency): row for row in instance_hours.rows}
    me = {(row.group, row.currency): row for row in measured.report.rows if row.lines}
    rows: list[ComparisonRow] = []
    for key in sorted(ih.keys() | me.keys()):
        left, right = ih.get(key), me.get(key)
        instances = max(left.instances if left else 0, right.instances if right else 0)
        was_measured = right is not None and (_servers(right) or left is None or not _servers(left))
        rows.append(ComparisonRow(
            group=key[0], currency=key[1], instances=instances,
            billed_hours=left.billed_hours if left else Decimal(0),
            instance_hours=left.cents if left else Decimal(0),
            measured=right.cents if right is not None and was_measured else None,
        ))
    totals: list[ComparisonRow] = []
    for currency in sorted({row.currency for row in rows}):
        mine = [row for row in rows if row.currency == currency]
        measured_rows = [row for row in mine if row.measured is not None]
        instances = {t.currency: t.instances for t in instance_hours.totals}.get(currency, 0)
        totals.append(ComparisonRow(
            group=TOTAL, currency=currency, instances=instances,
            billed_hours=sum((row.billed_hours for row in mine), Decimal(0)),
            instance_hours=sum((row.instance_hours for row in mine), Decimal(0)),
            measured=sum((row.measured or Decimal(0) for row in measured_rows), Decimal(0))
            if measured_rows else None,
            compared=sum((row.instance_hours for row in measured_rows), Decimal(0)),
        ))
    return Comparison(
        instance_hours=instance_hours, measured=measured, rows=tuple(rows), totals=tuple(totals)
    )


def _servers(row: UsageRow) -> bool:
    """Whether the row prices servers (any line but backup storage, which both modes bill alike)."""
    return any(line.item != BACKUP_ITEM for line in row.lines)


def comparison_notes(comparison: Comparison) -> list[str]:
    notes = ["saving = instance-hours cost − measured cost (negative: measured billing would cost more)"]
    unmeasured = [row.group for row in comparison.rows if row.measured is None and row.currency]
    if unmeasured:
        notes.append(f"not measured (no samples in the window): {', '.join(unmeasured)}; "
                     "the total's saving counts only the groups that were")
    if any(line.item == BACKUP_ITEM for row in comparison.instance_hours.rows for line in row.lines):
        notes.append("backup storage is billed by size × time in both modes: it is on both sides")
    return notes


def _money(value: Decimal | None, currency: str) -> str:
    if value is None:
        return "not measured"
    return f"{value} {currency}" if currency else "unpriced"


def _saving(row: ComparisonRow) -> tuple[str, str]:
    saving, percent = row.saving, row.saving_percent
    if saving is None or not row.currency:
        return "", ""
    return f"{saving} {row.currency}", "" if percent is None else f"{percent}%"


def format_comparison_table(comparison: Comparison, *, color: bool = False, width: int = 150) -> str:
    title = (f"Usage by {comparison.by}, {short_time(comparison.start)} → {short_time(comparison.end)} UTC, "
             "instance-hours and measured")
    table = Table(box=box.SIMPLE_HEAD, show_edge=False)
    table.add_column(comparison.by.capitalize(), style="bold" if color else None, no_wrap=True)
    for name in ("Instances", "Hours", "Instance-hours", "Measured", "Saving", "Saving %"):
        table.add_column(name, justify="right", no_wrap=True)
    for index, row in enumerate(comparison.rows):
        table.add_row(row.group, str(row.instances), decimal_text(row.billed_hours, 2),
                      _money(row.instance_hours, row.currency), _money(row.measured, row.currency),
                      *_saving(row), end_section=index == len(comparison.rows) - 1)
    for total in comparison.totals:
        table.add_row(TOTAL, str(total.instances), decimal_text(total.billed_hours, 2),
                      _money(total.instance_hours, total.currency), _money(total.measured, total.currency),
                      *_saving(total), style="bold" if color else None)
    buffer = io.StringIO()
    console = Console(file=buffer, width=width, force_terminal=color, no_color=not color,
                      color_system="standard" if color else None, highlight=False, emoji=False)
    console.print(title, markup=False, soft_wrap=True)
    console.print(table if comparison.rows else "no usage in this window")
    notes = comparison_notes(comparison) + list(comparison.measured.report.notes)
    for note in notes:
        console.print(f"  {note}", markup=False, soft_wrap=True)
    return "\n".join(line.rstrip() for line in buffer.getvalue().splitlines()) + "\n"


def comparison_row_dict(row: ComparisonRow) -> dict[str, Any]:
    saving, percent = row.saving, row.saving_percent
    return {
        "group": row.group,
        "currency": row.currency,
        "instances": row.instances,
        "billed_hours": decimal_text(row.billed_hours, 4),
        "instance_hours_cost": str(row.instance_hours) if row.currency else None,
        "measured_cost": None if row.measured is None or not row.currency else str(row.measured),
        "saving": None if saving is None or not row.currency else str(saving),
        "saving_percent": None if percent is None or not row.currency else str(percent),
    }


_CSV_FIELDS = ("group", "currency", "instances", "billed_hours", "instance_hours_cost", "measured_cost",
               "saving", "saving_percent")


def format_comparison_csv(comparison: Comparison) -> str:
    """One line per row (no totals, so a spreadsheet's SUM counts nothing twice)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=_CSV_FIELDS, lineterminator="\n")
    writer.writeheader()
    for row in comparison.rows:
        writer.writerow({k: "" if v is None else v for k, v in comparison_row_dict(row).items()})
    return buffer.getvalue()


def measured_dict(measured: MeasuredReport) -> dict[str, Any]:
    data = report_dict(measured.report)
    data["gaps"] = [
        {"key": g.key, "provider": g.provider, "resource_id": g.resource_id, "kind": g.kind.value,
         "start": isoformat(g.start), "end": isoformat(g.end), "seconds": g.seconds}
        for g in measured.gaps
    ]
    return data


def format_measured_json(measured: MeasuredReport) -> str:
    return json.dumps(measured_dict(measured), indent=2) + "\n"


def format_comparison_json(comparison: Comparison) -> str:
    data = {
        "mode": "both",
        "by": comparison.by,
        "start": isoformat(comparison.start),
        "end": isoformat(comparison.end),
        "rows": [comparison_row_dict(row) for row in comparison.rows],
        # a total's saving is set against the instance-hours cost of the measured groups only
        "totals": [comparison_row_dict(row) | {"compared_cost": str(row.baseline) if row.currency else None}
                   for row in comparison.totals],
        "notes": comparison_notes(comparison),
        "instance_hours": report_dict(comparison.instance_hours),
        "measured": measured_dict(comparison.measured),
    }
    return json.dumps(data, indent=2) + "\n"
