"""billing.backup_storage: backup storage from the ledger, priced as usage rows (GB-months × rate).

Each backup's storage interval (``Store.backup_intervals``) is clipped to the report window
(one still existing counts up to ``now``, capped at the window's end) and turned into
GB-months: size in GB × whole seconds ÷ (720 × 3600). It is priced at the rate recorded
when the backup was taken, or — when a report reprices with ``--prices`` — at the
``backup_gb_month`` of its provider's PriceList today (a provider the PriceLists no longer
name keeps its recorded rate), the same rule servers follow.

Backup storage is a charge whatever a server's billing mode (a cloud bills snapshots by
size × time either way), so every usage report carries it (``with_backup_storage``): a
backup belongs to the group of the server it was taken of (its cluster, member, key or
provider; cut at midnight with ``--by day``; the group ``backup storage`` with
``--by flavor``, as a backup has no flavor) and is one line item there, unit ``GB-month``.
Those lines count backups, not servers: a row's instances and hours stay its servers'.
A backup priced at zero makes no line (a PriceList without ``backup_gb_month`` adds
nothing); one nothing priced is listed, unpriced. ``backup_report`` is
``reconciler backup usage``: the same figures per key, counting backups as instances.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from reconciler.billing.usage import (
    Acc,
    LineItem,
    UsageReport,
    UsageRow,
    day_of,
    merge_rows,
    split_days,
    totals_of,
    whole_seconds,
)
from reconciler.core.keys import cluster_of, member_of
from reconciler.core.model import PriceList
from reconciler.core.pricing import PriceListFor, price_list_of
from reconciler.core.records import BackupInterval

GROUP = "backup storage"
ITEM = "backups"
GB_MONTH = "GB-month"
NOTE = "size × time"
MODE = "backup storage"
KEY = "key"  # the grouping of ``reconciler backup usage``
_SECONDS_PER_MONTH = Decimal(720 * 3600)


def backup_group(interval: BackupInterval, by: str) -> str:
    """The report group a backup belongs to under ``--by`` (``key``: its server's key)."""
    if by == "cluster":
        return cluster_of(interval.key)
    if by == "member":
        return member_of(interval.key)
    if by in ("server", KEY):
        return interval.key
    if by == "provider":
        return interval.provider
    return GROUP


def backup_pieces(
    interval: BackupInterval, start: datetime, end: datetime, now: datetime, by: str
) -> list[tuple[str, datetime, datetime]]:
    """(group, first, last) pieces of the backup's storage inside the window (cut at midnight by day)."""
    first = max(interval.start, start)
    last = min(interval.end, end) if interval.end is not None else max(start, min(now, end))
    if last <= first:
        return []
    if by == "day":
        return [(day_of(a), a, b) for a, b in split_days(first, last)]
    return [(backup_group(interval, by), first, last)]


def backup_rate(interval: BackupInterval, prices: PriceListFor | None) -> tuple[Decimal | None, str]:
    """(rate per GB-month, currency): today's PriceList's when repricing, else the recorded one."""
    plist: PriceList | None = price_list_of(prices, interval.provider) if prices is not None else None
    if plist is not None:
        return plist.backup_gb_month, plist.currency
    if interval.gb_month_rate is None:
        return None, ""
    return interval.gb_month_rate, interval.currency


def gb_months(interval: BackupInterval, first: datetime, last: datetime) -> Decimal:
    """The backup's size × the whole seconds of [first, last), in GB-months (exact)."""
    return Decimal(str(interval.size_gb)) * whole_seconds(first, last) / _SECONDS_PER_MONTH


@dataclass(frozen=True)
class BackupPiece:
    """One backup's storage in one group (or day) of the window, priced."""

    group: str
    interval: BackupInterval
    first: datetime
    last: datetime
    seconds: int
    quantity: Decimal  # GB-months
    rate: Decimal | None
    currency: str

    @property
    def cost(self) -> Decimal:
        return self.quantity * self.rate if self.rate is not None else Decimal(0)


def backup_usage(
    intervals: Sequence[BackupInterval],
    *,
    start: datetime,
    end: datetime,
    now: datetime,
    by: str,
    prices: PriceListFor | None = None,
    keep_free: bool = False,
) -> list[BackupPiece]:
    """Every backup's priced pieces in the window; zero-rate ones only with ``keep_free``."""
    found: list[BackupPiece] = []
    for interval in intervals:
        rate, currency = backup_rate(interval, prices)
        if rate is not None and rate == 0 and not keep_free:
            continue
        for group, first, last in backup_pieces(interval, start, end, now, by):
            seconds = whole_seconds(first, last)
            if seconds == 0:
                continue
            found.append(BackupPiece(group, interval, first, last, seconds, gb_months(interval, first, last),
                                     rate, currency))
    return found


def backup_rows(
    intervals: Sequence[BackupInterval],
    *,
    start: datetime,
    end: datetime,
    now: datetime,
    by: str = KEY,
    prices: PriceListFor | None = None,
    count_backups: bool = True,
) -> tuple[UsageRow, ...]:
    """One row per group and currency, each with one line item per rate.

    With ``count_backups`` (``backup usage``) a row's instances and seconds are its backups';
    without (a usage report's rows) they are zero, so joined to server rows they count servers.
    """
    rows: dict[tuple[str, str], Acc] = {}
    lines: dict[tuple[str, str, Decimal | None], Acc] = {}
    for piece in backup_usage(intervals, start=start, end=end, now=now, by=by, prices=prices,
                              keep_free=count_backups):
        resource = (piece.interval.provider, piece.interval.snapshot_id)
        row = rows.setdefault((piece.group, piece.currency), Acc())
        if count_backups:
            row.add(resource, piece.seconds, piece.cost, piece.first, piece.last, quantity=piece.quantity)
        else:
            row.cost += piece.cost
            row.span(piece.first, piece.last)
        line = lines.setdefault((piece.group, piece.currency, piece.rate), Acc())
        line.add(resource, piece.seconds, piece.cost, piece.first, piece.last, quantity=piece.quantity)
    by_row: dict[tuple[str, str], list[LineItem]] = {}
    for group, currency, rate in sorted(lines, key=_line_order):
        line_item = lines[(group, currency, rate)].line(group, ITEM, GB_MONTH, rate, currency, NOTE)
        by_row.setdefault((group, currency), []).append(line_item)
    return tuple(rows[k].row(*k, lines=tuple(by_row[k])) for k in sorted(rows))


def _line_order(key: tuple[str, str, Decimal | None]) -> tuple[str, str, Decimal]:
    group, currency, rate = key
    return group, currency, Decimal(-1) if rate is None else rate


def with_backup_storage(
    report: UsageReport, intervals: Sequence[BackupInterval], prices: PriceListFor | None = None
) -> UsageReport:
    """The report with backup storage joined to its groups' rows (and so to the totals).

    The report's rows, running count and notes are kept; a group that has only backups
    (a server deleted before the window, ``--by flavor``) gets a row of its own.
    """
    extra = backup_rows(intervals, start=report.start, end=report.end, now=report.now, by=report.by,
                        prices=prices, count_backups=False)
    if not extra:
        return report
    rows = merge_rows(report.rows, extra)
    return dataclasses.replace(report, rows=rows, totals=totals_of(rows))


def backup_report(
    intervals: Sequence[BackupInterval], *, start: datetime, end: datetime, now: datetime
) -> UsageReport:
    """Backup storage per key, as a report ``usage.format_table`` / ``format_json`` print."""
    rows = backup_rows(intervals, start=start, end=end, now=now, by=KEY)
    running = sum(1 for i in intervals if i.end is None and i.start < end)
    notes = (f"{running} backup(s) still kept: counted up to the report's end or now",) if running else ()
    return UsageReport(
        start=start, end=end, by=KEY, now=now, rows=rows, totals=totals_of(rows), mode=MODE, notes=notes
    )
