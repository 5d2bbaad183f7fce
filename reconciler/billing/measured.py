"""billing.measured: measured use — counter samples turned into vCPU-hours, GB-hours and GB, and priced.

Providers report cumulative counters (CPU seconds, bytes received and sent) and a gauge
(memory in use) per server; ``measure`` stores them as samples. Here consecutive samples of
one server become *deltas*, each attributed to the time just before its closing sample (a
sample taken at midnight closes the day that ends there), so any cut of time (a month, a
day) takes every delta exactly once:

- a counter that went *down* was restarted (a reboot, a migration): the use since the
  restart is its new value, the use between the previous sample and the restart is unknown
  and is reported as a gap — never a negative figure, never the old total counted again;
- a server's counters start at zero when it is created (the start of its first usage
  interval), so its first sample counts from there;
- memory is a gauge: GB-hours between two samples are the average of the two readings ×
  the time between them;
- time a server existed after its last sample (up to the window's end or now) is not
  invented: it is reported as a gap, and counted once a later sample closes it.

Disk (GB-months provisioned) and the flat monthly fee come from the usage intervals, as
they depend on existence, not activity. Backup storage (``billing.backup_storage``) is joined
to every report by ``billing.modes``, whatever the mode.
Quantities use 1 GB = 1024 MB = 2^30 bytes; money stays ``Decimal`` (see ``usage``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum

from reconciler.billing.usage import (
    Acc,
    LineItem,
    UsageReport,
    UsageRow,
    check_window,
    day_of,
    flavor_label,
    pieces,
    totals_of,
    whole_seconds,
)
from reconciler.core.clock import isoformat
from reconciler.core.keys import cluster_of, member_of
from reconciler.core.model import HOURS_PER_MONTH, MetricSample, PriceList
from reconciler.core.pricing import network_in_rate, network_out_rate, price_list_of
from reconciler.core.records import UsageInterval

PriceListFor = Callable[[str], PriceList | None]
GIB = Decimal(2**30)
_MB_PER_GB = Decimal(1024)
_HOUR = Decimal(3600)
_MONTH_SECONDS = HOURS_PER_MONTH * _HOUR
MAX_GAP_NOTES = 20
_TICK = timedelta(microseconds=1)


class GapKind(StrEnum):
    RESET = "counter reset"  # a counter went down between two samples
    UNSAMPLED = "not sampled"  # the server existed after its last sample


@dataclass(frozen=True)
class Gap:
    """A span of a server's life whose use is unknown to this report."""

    provider: str
    resource_id: str
    key: str
    start: datetime
    end: datetime
    kind: GapKind

    @property
    def seconds(self) -> int:
        return whole_seconds(self.start, self.end)

    def describe(self) -> str:
        span = f"{isoformat(self.start)} → {isoformat(self.end)}"
        if self.kind is GapKind.RESET:
            return (f"{self.key} ({self.resource_id}): counters restarted between samples at {span}; "
                    "use before the restart in that span is unknown and not billed")
        return (f"{self.key} ({self.resource_id}): no sample {span}; its use there is not billed "
                "until a later sample covers it")


@dataclass(frozen=True)
class Delta:
    """One server's use between two consecutive samples (or its creation and its first sample)."""

    provider: str
    resource_id: str
    key: str
    start: datetime
    end: datetime  # the closing sample's instant: the delta belongs to the window holding it
    cpu_seconds: Decimal
    ram_gb_hours: Decimal
    rx_bytes: int
    tx_bytes: int
    reset: bool = False

    @property
    def closes(self) -> datetime:
        """The last instant the delta covers: a sample at midnight closes the day before it."""
        return self.end - _TICK

    def inside(self, start: datetime, end: datetime) -> bool:
        """Whether the delta belongs to the window [start, end): start < its closing sample ≤ end."""
        return start < self.end <= end


def _counter(previous: float | int, current: float | int) -> tuple[Decimal, bool]:
    """Use since the previous reading of a cumulative counter, and whether it restarted."""
    now, before = Decimal(str(current)), Decimal(str(previous))
    if now < before:
        return now, True
    return now - before, False


def _gauge_hours(first_mb: int, second_mb: int, start: datetime, end: datetime) -> Decimal:
    seconds = Decimal((end - start) // timedelta(microseconds=1)) / Decimal(1_000_000)
    return (Decimal(first_mb) + Decimal(second_mb)) / 2 / _MB_PER_GB * seconds / _HOUR


def deltas_of(samples: Sequence[MetricSample], origin: datetime | None) -> list[Delta]:
    """Consecutive samples of one server (any order) as deltas; ``origin`` is its creation, if known."""
    ordered = sorted(samples, key=lambda s: s.at)
    out: list[Delta] = []
    previous: MetricSample | None = None
    for sample in ordered:
        if previous is None:
            if origin is not None and origin <= sample.at:
                out.append(Delta(
                    sample.provider, sample.resource_id, sample.key, origin, sample.at,
                    cpu_seconds=Decimal(str(sample.cpu_seconds)),
                    ram_gb_hours=_gauge_hours(sample.memory_mb, sample.memory_mb, origin, sample.at),
                    rx_bytes=sample.net_rx_bytes, tx_bytes=sample.net_tx_bytes,
                ))
            previous = sample
            continue
        if sample.at <= previous.at:
            continue
        cpu, cpu_reset = _counter(previous.cpu_seconds, sample.cpu_seconds)
        rx, rx_reset = _counter(previous.net_rx_bytes, sample.net_rx_bytes)
        tx, tx_reset = _counter(previous.net_tx_bytes, sample.net_tx_bytes)
        out.append(Delta(
            sample.provider, sample.resource_id, sample.key, previous.at, sample.at, cpu_seconds=cpu,
            ram_gb_hours=_gauge_hours(previous.memory_mb, sample.memory_mb, previous.at, sample.at),
            rx_bytes=int(rx), tx_bytes=int(tx), reset=cpu_reset or rx_reset or tx_reset,
        ))
        previous = sample
    return out


def _flavor_at(intervals: Sequence[UsageInterval], moment: datetime) -> str:
    """The flavor label of the interval a resource was in at ``moment`` (the latest one otherwise)."""
    for interval in intervals:
        if interval.start <= moment and (interval.end is None or moment < interval.end):
            return flavor_label(interval)
    return flavor_label(intervals[-1]) if intervals else "(unknown)"


def _group(delta: Delta, by: str, intervals: Sequence[UsageInterval]) -> str:
    if by == "cluster":
        return cluster_of(delta.key)
    if by == "member":
        return member_of(delta.key)
    if by == "server":
        return delta.key
    if by == "provider":
        return delta.provider
    if by == "day":
        return day_of(delta.closes)
    return _flavor_at(intervals, delta.closes)


@dataclass(frozen=True)
class _Rate:
    name: str
    unit: str
    note: str


_CPU = _Rate("vCPU", "vCPU-hour", "CPU time used")
_RAM = _Rate("RAM", "GB-hour", "memory in use")
_DISK = _Rate("disk", "GB-month", "disk provisioned")
_NET_IN = _Rate("network in", "GB", "received")
_NET_OUT = _Rate("network out", "GB", "sent")
_FLAT = _Rate("flat fee", "server-month", "per server")
_ORDER = (_CPU, _RAM, _DISK, _NET_IN, _NET_OUT, _FLAT)


def _unit_rate(plist: PriceList, rate: _Rate) -> Decimal:
    return {
        _CPU: plist.vcpu_hour, _RAM: plist.ram_gb_hour, _DISK: plist.disk_gb_month,
        _NET_IN: network_in_rate(plist), _NET_OUT: network_out_rate(plist), _FLAT: plist.flat_monthly,
    }[rate]


@dataclass(frozen=True)
class MeasuredReport:
    report: UsageReport
    gaps: tuple[Gap, ...]
    deltas: tuple[Delta, ...]  # those inside the window


class _Builder:
    """Accumulates rows and line items of a measured report."""

    def __init__(self, prices: PriceListFor | None) -> None:
        self.prices = prices
        self.rows: dict[tuple[str, str], Acc] = {}
        self.lines: dict[tuple[str, str, _Rate, Decimal | None], Acc] = {}

    def plist(self, provider: str) -> PriceList | None:
        return price_list_of(self.prices, provider) if self.prices is not None else None

    def add(self, group: str, provider: str, resource: tuple[str, str], rate: _Rate, quantity: Decimal,
            first: datetime, last: datetime) -> None:
        if quantity == 0:
            return
        plist = self.plist(provider)
        currency = plist.currency if plist is not None else ""
        unit_rate = _unit_rate(plist, rate) if plist is not None else None
        cost = quantity * unit_rate if unit_rate is not None else Decimal(0)
        self.rows.setdefault((group, currency), Acc()).add(resource, 0, cost, first, last)
        line = self.lines.setdefault((group, currency, rate, unit_rate), Acc())
        line.add(resource, 0, cost, first, last, quantity=quantity)

    def lifetime(self, group: str, resource: tuple[str, str], provider: str, seconds: int,
                 first: datetime, last: datetime) -> None:
        plist = self.plist(provider)
        acc = self.rows.setdefault((group, plist.currency if plist is not None else ""), Acc())
        acc.add(resource, seconds, Decimal(0), first, last)

    def finish(self) -> tuple[UsageRow, ...]:
        """Rows in group order; lines in resource order, then by rate. A zero rate makes no line."""
        by_row: dict[tuple[str, str], list[LineItem]] = {}
        order = {rate: index for index, rate in enumerate(_ORDER)}
        for key in sorted(self.lines, key=lambda k: (k[0], k[1], order[k[2]], k[3] or Decimal(0))):
            group, currency, rate, unit_rate = key
            if unit_rate is not None and unit_rate == 0:
                continue
            line = self.lines[key].line(group, rate.name, rate.unit, unit_rate, currency, rate.note)
            by_row.setdefault((group, currency), []).append(line)
        return tuple(
            self.rows[key].row(*key, lines=tuple(by_row.get(key, ()))) for key in sorted(self.rows)
        )


def build_measured_report(
    samples: Sequence[MetricSample],
    intervals: Sequence[UsageInterval],
    *,
    start: datetime,
    end: datetime,
    by: str,
    now: datetime,
    prices: PriceListFor | None,
) -> MeasuredReport:
    """Measured use of [start, end), grouped and priced by ``prices`` (provider → PriceList).

    ``samples`` may start before the window (the last one before it is the baseline);
    ``intervals`` should hold every interval of the sampled servers up to the window's end.
    """
    check_window(start, end, by)
    by_resource: dict[tuple[str, str], list[UsageInterval]] = {}
    for interval in sorted(intervals, key=lambda i: i.start):
        by_resource.setdefault((interval.provider, interval.resource_id), []).append(interval)
    sampled: dict[tuple[str, str], list[MetricSample]] = {}
    for sample in samples:
        if sample.at <= end:
            sampled.setdefault((sample.provider, sample.resource_id), []).append(sample)

    builder = _Builder(prices)
    inside: list[Delta] = []
    gaps: list[Gap] = []
    for resource, mine in sorted(sampled.items()):
        lives = by_resource.get(resource, [])
        for delta in deltas_of(mine, lives[0].start if lives else None):
            if not delta.inside(start, end):
                continue
            inside.append(delta)
            if delta.reset:
                gaps.append(Gap(delta.provider, delta.resource_id, delta.key, delta.start, delta.end,
                                GapKind.RESET))
            group = _group(delta, by, lives)
            first, last = max(delta.start, start), delta.end
            for rate, quantity in (
                (_CPU, delta.cpu_seconds / _HOUR), (_RAM, delta.ram_gb_hours),
                (_NET_IN, Decimal(delta.rx_bytes) / GIB), (_NET_OUT, Decimal(delta.tx_bytes) / GIB),
            ):
                builder.add(group, delta.provider, resource, rate, quantity, first, last)

    last_sample = {r: max(s.at for s in mine if s.at > start) for r, mine in sampled.items()
                   if any(s.at > start for s in mine)}
    running = 0
    for resource, lives in sorted(by_resource.items()):
        covered_until = last_sample.get(resource)
        for interval in lives:
            cut = pieces(interval, start, end, now, by)
            running += bool(cut) and interval.end is None
            for group, first, last in cut:
                seconds = whole_seconds(first, last)
                builder.lifetime(group, resource, interval.provider, seconds, first, last)
                months = Decimal(seconds) / _MONTH_SECONDS
                builder.add(group, interval.provider, resource, _DISK, months * interval.size.disk_gb,
                            first, last)
                builder.add(group, interval.provider, resource, _FLAT, months, first, last)
                gap_from = first if covered_until is None else max(first, covered_until)
                if whole_seconds(gap_from, last) > 0:
                    gaps.append(Gap(interval.provider, interval.resource_id, interval.key, gap_from, last,
                                    GapKind.UNSAMPLED))
    rows = builder.finish()
    merged = _merge_gaps(gaps)
    report = UsageReport(start=start, end=end, by=by, now=now, rows=rows, totals=totals_of(rows),
                         running=running,
                         mode="measured", notes=gap_notes(merged))
    return MeasuredReport(report=report, gaps=merged, deltas=tuple(inside))


def _merge_gaps(gaps: Sequence[Gap]) -> tuple[Gap, ...]:
    """Sorted, with touching gaps of the same kind and server joined (a day cut makes many)."""
    merged: list[Gap] = []
    for gap in sorted(gaps, key=lambda g: (g.key, g.resource_id, g.kind, g.start)):
        last = merged[-1] if merged else None
        if (last is not None and (last.resource_id, last.provider, last.kind) ==
                (gap.resource_id, gap.provider, gap.kind) and gap.start <= last.end):
            merged[-1] = Gap(last.provider, last.resource_id, last.key, last.start, max(last.end, gap.end),
                             last.kind)
        else:
            merged.append(gap)
    return tuple(merged)


def gap_notes(gaps: Sequence[Gap]) -> tuple[str, ...]:
    notes = [gap.describe() for gap in gaps[:MAX_GAP_NOTES]]
    if len(gaps) > MAX_GAP_NOTES:
        notes.append(f"… and {len(gaps) - MAX_GAP_NOTES} more gaps (see --format json)")
    return tuple(notes)
