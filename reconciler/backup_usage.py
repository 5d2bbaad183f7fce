"""backup_usage: backup storage from the ledger, priced as usage rows (GB-months × ``backup_gb_month``).

Each backup's storage interval (``Store.backup_intervals``) is clipped to the report window
(one still existing counts up to ``now``, capped at the window's end) and turned into
GB-months: size in GB × seconds ÷ (720 × 3600). It is priced at the rate recorded when the
backup was taken. The rows have the shape of ``usage`` rows (one line item per rate, unit
``GB-month``), so a usage report can carry them as the group ``backup storage``
(``with_backup_storage``) and ``reconciler backup usage`` prints them per key.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import datetime, timedelta
from decimal import Decimal

from reconciler.store.base import BackupInterval
from reconciler.usage import Acc, LineItem, UsageReport, UsageRow, totals_of

GROUP = "backup storage"
GB_MONTH = "GB-month"
MODE = "backup storage"
_SECONDS_PER_MONTH = Decimal(720 * 3600)


def backup_rows(
    intervals: Sequence[BackupInterval],
    *,
    start: datetime,
    end: datetime,
    now: datetime,
    by_key: bool = False,
) -> tuple[UsageRow, ...]:
    """One row per currency (group ``backup storage``), or per key and currency with ``by_key``."""
    rows: dict[tuple[str, str], Acc] = {}
    lines: dict[tuple[str, str, Decimal | None], Acc] = {}
    for interval in intervals:
        first = max(interval.start, start)
        last = min(interval.end, end) if interval.end is not None else max(start, min(now, end))
        seconds = (last - first) // timedelta(seconds=1) if last > first else 0
        if seconds == 0:
            continue
        gb_months = Decimal(str(interval.size_gb)) * seconds / _SECONDS_PER_MONTH
        rate = interval.gb_month_rate
        currency = interval.currency if rate is not None else ""
        cost = gb_months * rate if rate is not None else Decimal(0)
        group = interval.key if by_key else GROUP
        resource = (interval.provider, interval.snapshot_id)
        for acc in (
            rows.setdefault((group, currency), Acc()),
            lines.setdefault((group, currency, rate), Acc()),
        ):
            acc.add(resource, seconds, cost, first, last, quantity=gb_months)
    by_row: dict[tuple[str, str], list[LineItem]] = {}
    for group, currency, rate in sorted(lines, key=lambda k: (k[0], k[1], k[2] or Decimal(-1))):
        line = lines[(group, currency, rate)].line(group, "backups", GB_MONTH, rate, currency, "size × time")
        by_row.setdefault((group, currency), []).append(line)
    return tuple(rows[k].row(*k, lines=tuple(by_row[k])) for k in sorted(rows))


def with_backup_storage(report: UsageReport, intervals: Sequence[BackupInterval]) -> UsageReport:
    """A usage report with backup storage added as its own rows (and in the totals)."""
    extra = backup_rows(intervals, start=report.start, end=report.end, now=report.now)
    if not extra:
        return report
    rows = report.rows + extra
    return dataclasses.replace(report, rows=rows, totals=totals_of(rows))


def backup_report(
    intervals: Sequence[BackupInterval], *, start: datetime, end: datetime, now: datetime
) -> UsageReport:
    """Backup storage per key, as a report ``usage.format_table`` / ``format_json`` print."""
    rows = backup_rows(intervals, start=start, end=end, now=now, by_key=True)
    running = sum(1 for i in intervals if i.end is None and i.start < end)
    notes = (f"{running} backup(s) still kept: counted up to the report's end or now",) if running else ()
    return UsageReport(
        start=start, end=end, by="key", now=now, rows=rows, totals=totals_of(rows), mode=MODE, notes=notes
    )
