"""billing.export: ``usage export`` — one CSV row per server, per UTC day, per resource, for spreadsheets.

The rows are the raw material of the reports, in a flat shape a spreadsheet or a billing
system loads as it is:

- ``instance-hours`` rows come from the usage intervals (billed hours at the rate and under the
  terms recorded — by the second, or every started minute or hour — or repriced with
  ``--prices``; a resize mid-day makes one row per rate);
- measured rows (``vcpu-hours``, ``ram-gb-hours``, ``network-in-gb``, ``network-out-gb``
  from the samples, and ``disk-gb-months``, ``flat-months`` from the intervals) follow the
  same rules as the measured report (``billing``): a delta belongs to the day of the sample
  that closes it;
- ``backup-gb-months`` rows, one per backup per day it was kept, come from the backup
  storage ledger (``billing.backup_storage``: the recorded rate, or ``backup_gb_month`` with
  ``--prices``; a zero rate makes no row). Backup storage is billed in either mode, so
  its rows are in each mode exported; ``server`` is the key of the server backed up,
  ``resource_id`` the backup's id and ``flavor`` empty.

The ``mode`` column says which billing mode a row belongs to: add up the cost of one mode,
never both — that sum is the report's total in that mode. Quantities and costs keep six
decimals (costs are not rounded to cents here, so sums stay exact to a millionth); rates
are exact.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal

from reconciler.billing.backup_storage import GB_MONTH, backup_usage
from reconciler.billing.measured import GIB, PriceListFor, deltas_of
from reconciler.billing.usage import day_of, flavor_label, pieces, whole_seconds
from reconciler.core.keys import cluster_of, member_of
from reconciler.core.model import HOURS_PER_MONTH, MetricSample
from reconciler.core.pricing import (
    billed_seconds,
    interval_terms,
    network_in_rate,
    network_out_rate,
    price_list_of,
    seconds_to_hours,
)
from reconciler.core.records import BackupInterval, UsageInterval

FIELDS = (
    "date", "mode", "deployment", "provider", "cluster", "member", "server", "resource_id", "flavor",
    "resource", "quantity", "unit", "rate", "cost", "currency",
)
EXPORT_MODES = ("instance-hours", "measured", "both")
_SIX = Decimal("0.000001")
_HOUR = Decimal(3600)


@dataclass(frozen=True)
class _Who:
    """The identity columns of a row: a server (and its flavor), or a backup of one."""

    deployment: str
    provider: str
    key: str
    resource_id: str
    flavor: str

    @classmethod
    def server(cls, interval: UsageInterval) -> _Who:
        return cls(interval.deployment, interval.provider, interval.key, interval.resource_id,
                   flavor_label(interval))

    @classmethod
    def backup(cls, interval: BackupInterval) -> _Who:
        return cls(interval.deployment, interval.provider, interval.key, interval.snapshot_id, "")


@dataclass
class _Row:
    date: str
    mode: str
    who: _Who
    resource: str
    unit: str
    rate: Decimal | None
    currency: str
    quantity: Decimal = Decimal(0)
    cost: Decimal = Decimal(0)

    def cells(self) -> dict[str, str]:
        who = self.who
        priced = self.rate is not None and bool(self.currency)
        return {
            "date": self.date, "mode": self.mode, "deployment": who.deployment,
            "provider": who.provider, "cluster": cluster_of(who.key), "member": member_of(who.key),
            "server": who.key, "resource_id": who.resource_id, "flavor": who.flavor,
            "resource": self.resource, "quantity": _six(self.quantity), "unit": self.unit,
            "rate": str(self.rate) if priced else "", "cost": _six(self.cost) if priced else "",
            "currency": self.currency if priced else "",
        }


def _six(value: Decimal) -> str:
    return str(value.quantize(_SIX, rounding=ROUND_HALF_UP))


class _Rows:
    def __init__(self) -> None:
        self.rows: dict[tuple[str, str, _Who, str, Decimal | None, str], _Row] = {}

    def add(self, date: str, mode: str, who: _Who, resource: str, unit: str,
            rate: Decimal | None, currency: str, quantity: Decimal) -> None:
        if quantity == 0:
            return
        key = (date, mode, who, resource, rate, currency)
        row = self.rows.setdefault(key, _Row(date, mode, who, resource, unit, rate, currency))
        row.quantity += quantity
        row.cost += quantity * rate if rate is not None else Decimal(0)

    def sorted(self) -> list[_Row]:
        return sorted(self.rows.values(), key=lambda r: (r.date, r.who.key, r.who.resource_id,
                                                        r.mode, r.resource, r.rate or Decimal(0)))


def export_rows(
    intervals: Sequence[UsageInterval],
    samples: Sequence[MetricSample],
    *,
    start: datetime,
    end: datetime,
    now: datetime,
    mode: str,
    prices: PriceListFor | None,
    backups: Sequence[BackupInterval] = (),
) -> list[dict[str, str]]:
    """The export's rows, in (date, server, mode, resource) order."""
    rows = _Rows()
    lives: dict[tuple[str, str], list[UsageInterval]] = {}
    for interval in sorted(intervals, key=lambda i: i.start):
        lives.setdefault((interval.provider, interval.resource_id), []).append(interval)
    for interval in intervals:
        plist = price_list_of(prices, interval.provider) if prices is not None else None
        who = _Who.server(interval)
        for date, first, last in pieces(interval, start, end, now, "day"):
            if mode in ("instance-hours", "both"):
                rate, currency, granularity = interval_terms(interval, plist)
                billed = (billed_seconds(interval.start, first, last, granularity) if rate is not None
                          else whole_seconds(first, last))
                rows.add(date, "instance-hours", who, "instance-hours", "hour", rate, currency,
                         seconds_to_hours(billed))
            if mode in ("measured", "both"):
                months = Decimal(whole_seconds(first, last)) / (HOURS_PER_MONTH * _HOUR)
                currency = plist.currency if plist is not None else ""
                rows.add(date, "measured", who, "disk-gb-months", "GB-month",
                         plist.disk_gb_month if plist else None, currency, months * interval.size.disk_gb)
                if plist is not None and plist.flat_monthly:
                    rows.add(date, "measured", who, "flat-months", "server-month", plist.flat_monthly,
                             currency, months)
    if mode in ("measured", "both"):
        _measured(rows, samples, lives, start=start, end=end, prices=prices)
    modes = ("instance-hours", "measured") if mode == "both" else (mode,)
    for piece in backup_usage(backups, start=start, end=end, now=now, by="day", prices=prices):
        for each in modes:
            rows.add(piece.group, each, _Who.backup(piece.interval), "backup-gb-months", GB_MONTH, piece.rate,
                     piece.currency, piece.quantity)
    return [row.cells() for row in rows.sorted()]


def _measured(
    rows: _Rows,
    samples: Sequence[MetricSample],
    lives: dict[tuple[str, str], list[UsageInterval]],
    *,
    start: datetime,
    end: datetime,
    prices: PriceListFor | None,
) -> None:
    sampled: dict[tuple[str, str], list[MetricSample]] = {}
    for sample in samples:
        if sample.at <= end:
            sampled.setdefault((sample.provider, sample.resource_id), []).append(sample)
    for resource, mine in sorted(sampled.items()):
        known = lives.get(resource, [])
        if not known:
            continue  # a sample of a server the usage ledger never saw: nothing to name it by
        plist = price_list_of(prices, resource[0]) if prices is not None else None
        currency = plist.currency if plist is not None else ""
        for delta in deltas_of(mine, known[0].start):
            if not delta.inside(start, end):
                continue
            moment = delta.closes
            covering = (i for i in known if i.start <= moment and (i.end is None or moment < i.end))
            interval = next(covering, known[-1])
            date = day_of(moment)
            for name, unit, quantity, rate in (
                ("vcpu-hours", "vCPU-hour", delta.cpu_seconds / _HOUR, plist.vcpu_hour if plist else None),
                ("ram-gb-hours", "GB-hour", delta.ram_gb_hours, plist.ram_gb_hour if plist else None),
                ("network-in-gb", "GB", Decimal(delta.rx_bytes) / GIB,
                 network_in_rate(plist) if plist else None),
                ("network-out-gb", "GB", Decimal(delta.tx_bytes) / GIB,
                 network_out_rate(plist) if plist else None),
            ):
                rows.add(date, "measured", _Who.server(interval), name, unit, rate, currency, quantity)


def format_export_csv(rows: Sequence[dict[str, str]]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=FIELDS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()
