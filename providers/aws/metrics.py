"""providers.aws.metrics: EC2 usage counters for measured billing, computed from CloudWatch.

EC2 keeps no cumulative counters an API hands out; CloudWatch has the ``AWS/EC2`` metrics
per instance. ``providers.aws.provider`` asks ``GetMetricData`` for them (500 queries per call,
paged by ``NextToken``) and keeps running sums in a local memo (``providers.aws.memo``);
this module holds the rest: which queries, over which hours, how the pages of answers
(sent through a function ``providers.aws.provider`` hands in) become the cumulative counters of a
``MetricSample``, and which sums go back to the memo.

* A counter is the sum of hourly figures from the hour of the instance's creation to the
  end of the last *settled* hour — one that ended at least ``SETTLING_LAG`` ago, so that
  the datapoints CloudWatch receives minutes late are in — and the sample is stamped at
  that hour's end, not now. Each hour is counted once, after it settled: counters never go
  down, which ``billing`` would read as a reboot. An instance created after the last
  settled hour reports zero counters stamped at its creation (they start there).
* Sums up to an hour are kept per instance in the memo, so a sample asks CloudWatch only
  for the hours after that one (instances with the same memo hour share one call's time
  range). CloudWatch's sums of settled hours do not change, so the memo is a cache, not
  ledger state: two reconcilers (daemon replicas) with memos of their own report the same
  counters (given each began while the instance's history was whole), and a crash between
  the memo write and the ledger write loses nothing (the next sample goes on from the memo).
* Without a memo row (a new instance, or a lost memo file) the sums are read from the
  instance's whole history, as far back as CloudWatch keeps hourly datapoints (455 days,
  ``RETENTION``). For an instance younger than that the result is the same; for an older
  one the expired hours are missing, the counters come out *lower* than the ones already
  reported, and ``billing`` reads that as a counter reset and counts the new totals again
  (an overcharge of up to 455 days of use). So keep the state directory; the memo alone
  keeps an older instance's counters whole.
* ``cpu_seconds`` = Σ hourly average ``CPUUtilization`` / 100 × 3600 × vCPUs; the vCPUs
  of each hour come from ``TAG_VCPUS`` when the reconciler changed the instance's vCPU
  count (``VcpuHistory``), else the instance type's. ``net_rx_bytes`` / ``net_tx_bytes``
  = Σ hourly ``NetworkIn`` / ``NetworkOut`` sums. An hour without datapoints adds nothing
  (a stopped instance, or a gap in CloudWatch): nothing is invented.
* ``memory_mb`` is the instance type's memory while the instance runs, 0 when stopped:
  EC2 reports no memory use without the CloudWatch agent inside the guest.
* Limits: a datapoint arriving more than ``SETTLING_LAG`` after its hour ended is not
  counted where a memo already covers that hour (a reconciler reading the history anew
  would count it); a type change made outside the reconciler weighs the hours not yet
  counted (and all of them on a history read) with the new vCPU count; use in the last
  hour before a server is deleted is never sampled (``billing`` reports it as a gap).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from reconciler.core.errors import PermanentError, TransientError
from reconciler.core.model import MetricSample, ObservedServer, ServerStatus

NAMESPACE = "AWS/EC2"
PERIOD = timedelta(hours=1)
QUERIES_PER_CALL = 500  # GetMetricData's limit of MetricDataQueries per request
RETENTION = timedelta(days=455)  # how long CloudWatch keeps 1-hour datapoints
# How long after an hour ends it is first counted: EC2's basic metrics reach CloudWatch a
# few minutes late, and an hour once counted is never read again.
SETTLING_LAG = timedelta(minutes=15)
TAG_VALUE_LIMIT = 256  # characters of an EC2 tag value


class Counter(StrEnum):
    """The ``AWS/EC2`` metrics read, each with the statistic asked for."""

    CPU = "CPUUtilization"
    RX = "NetworkIn"
    TX = "NetworkOut"

    @property
    def stat(self) -> str:
        return "Average" if self is Counter.CPU else "Sum"


def floor_hour(moment: datetime) -> datetime:
    """The start of the UTC hour holding ``moment``."""
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def settled_end(now: datetime) -> datetime:
    """The end of the last hour that ended at least ``SETTLING_LAG`` before ``now``."""
    return floor_hour(now - SETTLING_LAG)


def _hour_text(hour: datetime) -> str:
    return hour.astimezone(UTC).strftime("%Y-%m-%dT%H")


@dataclass(frozen=True)
class VcpuHistory:
    """Which vCPU count an instance had from which hour on (``TAG_VCPUS``), oldest first.

    The first step's count also holds for every hour before it. Written as
    ``"2 4@2026-11-05T13 2@2026-12-01T08"``: the first count, then ``count@hour`` per change.
    """

    first: int
    changes: tuple[tuple[datetime, int], ...] = ()

    def at(self, moment: datetime) -> int:
        count = self.first
        for hour, vcpus in self.changes:
            if hour <= moment:
                count = vcpus
        return count

    def changed(self, hour: datetime, vcpus: int) -> VcpuHistory:
        """This history with ``vcpus`` from ``hour`` on (a later change in the same hour wins)."""
        kept = tuple((h, v) for h, v in self.changes if h < hour)
        return VcpuHistory(self.first, (*kept, (floor_hour(hour), vcpus)))

    def render(self) -> str:
        """The tag value; when too long, the oldest changes fold into the first count."""
        first, changes = self.first, list(self.changes)
        while True:
            text = " ".join([str(first), *(f"{v}@{_hour_text(h)}" for h, v in changes)])
            if len(text) <= TAG_VALUE_LIMIT or not changes:
                return text
            first = changes.pop(0)[1]

    @classmethod
    def parse(cls, text: str | None) -> VcpuHistory | None:
        """The history a tag holds; None when there is none or it is not ours to read."""
        if not text:
            return None
        head, *rest = text.split()
        try:
            changes = []
            for part in rest:
                count, _, hour = part.partition("@")
                moment = datetime.strptime(hour, "%Y-%m-%dT%H").replace(tzinfo=UTC)
                changes.append((moment, int(count)))
            return cls(int(head), tuple(sorted(changes)))
        except ValueError:
            return None


@dataclass(frozen=True)
class Sums:
    """The cumulative counters of one instance, unrounded (what the memo keeps)."""

    cpu_seconds: float = 0.0
    rx_bytes: float = 0.0
    tx_bytes: float = 0.0


@dataclass(frozen=True)
class Memoized:
    """An instance's sums over every hour before ``through`` (an hour boundary), from the memo."""

    instance_id: str
    through: datetime
    sums: Sums


@dataclass(frozen=True)
class Target:
    """One server to sample: the first hour not yet summed, the sums before it, its vCPUs.

    ``memoized`` says ``base`` came from the memo (the queries then start exactly at
    ``start``); without it ``start`` is the first hour of the history CloudWatch keeps.
    """

    server: ObservedServer
    start: datetime
    vcpus: VcpuHistory
    base: Sums = Sums()
    memoized: bool = False

    def vcpus_at(self, moment: datetime) -> int:
        return self.vcpus.at(moment)

    def stamp(self, end: datetime) -> datetime:
        """When the sample holds: ``end`` once its hours are summed, else where its sums stop."""
        return max(self.start, end)


def target_of(
    server: ObservedServer, end: datetime, now: datetime, vcpu_tag: str | None, memo: Memoized | None
) -> Target | None:
    """What to read for ``server`` up to ``end`` (an hour boundary); None when created after ``now``.

    With a memo row the hours after its ``through`` are read (none before CloudWatch's
    retention); without one, the history from the hour of creation. A server created after
    ``end`` has zero counters at its creation, and nothing to read.
    """
    history = VcpuHistory.parse(vcpu_tag) or VcpuHistory(server.size.cpus)
    if memo is not None:
        return Target(server, max(memo.through, end - RETENTION), history, memo.sums, memoized=True)
    created = server.created_at
    if created is not None and created > end:
        return None if created > now else Target(server, created, history)
    start = floor_hour(created) if created is not None else end - RETENTION
    return Target(server, max(start, end - RETENTION), history)


@dataclass(frozen=True)
class Query:
    """One ``MetricDataQueries`` entry: a counter of a target."""

    id: str
    target: Target
    counter: Counter

    def to_api(self) -> dict[str, Any]:
        return {
            "Id": self.id,
            "MetricStat": {
                "Metric": {
                    "Namespace": NAMESPACE,
                    "MetricName": self.counter.value,
                    "Dimensions": [{"Name": "InstanceId", "Value": self.target.server.resource_id}],
                },
                "Period": int(PERIOD.total_seconds()),
                "Stat": self.counter.stat,
            },
            "ReturnData": True,
        }


def batches(targets: Iterable[Target], end: datetime) -> Iterator[list[Query]]:
    """The queries of every target with hours to read, at most ``QUERIES_PER_CALL`` per call.

    A call's StartTime is its earliest target's ``start``, so memoized targets are grouped
    by their memo hour: each call asks only for hours none of its targets has summed yet.
    Targets without a memo row share calls (sorted by start): their instances have no
    datapoints before their own first hour anyway.
    """
    groups: dict[datetime | None, list[Target]] = {}
    for target in targets:
        if target.start < end:
            groups.setdefault(target.start if target.memoized else None, []).append(target)
    for key in sorted(groups, key=lambda k: (k is None, k or end)):
        live = sorted(groups[key], key=lambda t: (t.start, t.server.resource_id))
        queries = [
            Query(f"q{index}_{counter.name.lower()}", target, counter)
            for index, target in enumerate(live)
            for counter in Counter
        ]
        for first in range(0, len(queries), QUERIES_PER_CALL):
            yield queries[first:first + QUERIES_PER_CALL]


@dataclass
class Totals:
    """The running sums of one server's counters (filled while the pages come in)."""

    cpu_seconds: float = 0.0
    rx_bytes: float = 0.0
    tx_bytes: float = 0.0

    @classmethod
    def starting(cls, sums: Sums) -> Totals:
        return cls(sums.cpu_seconds, sums.rx_bytes, sums.tx_bytes)

    def sums(self) -> Sums:
        return Sums(self.cpu_seconds, self.rx_bytes, self.tx_bytes)

    def add(
        self, query: Query, timestamps: Sequence[datetime], values: Sequence[float], end: datetime
    ) -> None:
        """Add one result's datapoints, each the statistic of the hour starting at its timestamp."""
        for stamp, value in zip(timestamps, values, strict=False):
            hour = stamp.astimezone(UTC)
            if hour < query.target.start or hour + PERIOD > end:
                continue  # summed already (or before the window), or an hour not yet settled
            if query.counter is Counter.CPU:
                seconds = PERIOD.total_seconds()
                self.cpu_seconds += max(0.0, float(value)) / 100 * seconds * query.target.vcpus_at(hour)
            elif query.counter is Counter.RX:
                self.rx_bytes += max(0.0, float(value))
            else:
                self.tx_bytes += max(0.0, float(value))


class Reading:
    """The sums of a set of targets while ``GetMetricData`` answers come in, and which
    targets are complete (all their queries answered): only those go to the memo."""

    def __init__(self, targets: Sequence[Target], end: datetime) -> None:
        self.targets = list(targets)
        self.end = end
        self.totals = {t.server.resource_id: Totals.starting(t.base) for t in self.targets}
        self.calls = list(batches(self.targets, end))
        self._pending = dict.fromkeys(self.totals, 0)
        for query in (q for batch in self.calls for q in batch):
            self._pending[query.target.server.resource_id] += 1

    def read(self, call: Callable[..., Mapping[str, Any]]) -> None:
        """Every call through every page (``call`` sends one ``GetMetricData`` request)."""
        for batch in self.calls:
            by_id = {q.id: q for q in batch}
            params: dict[str, Any] = {
                "MetricDataQueries": [q.to_api() for q in batch],
                "StartTime": min(q.target.start for q in batch),
                "EndTime": self.end,
                "ScanBy": "TimestampAscending",
            }
            while True:
                reply = call(**params)
                for result in reply.get("MetricDataResults") or ():
                    check_result(result)
                    query = by_id.get(str(result.get("Id")))
                    if query is not None:
                        self.totals[query.target.server.resource_id].add(
                            query, result.get("Timestamps") or (), result.get("Values") or (), self.end
                        )
                token = reply.get("NextToken")
                if not token:
                    break
                params["NextToken"] = token
            for query in batch:
                self._pending[query.target.server.resource_id] -= 1

    def memo_rows(self) -> list[Memoized]:
        """The sums to keep: those of complete targets whose counters start before ``end``."""
        return [
            Memoized(t.server.resource_id, t.stamp(self.end), self.totals[t.server.resource_id].sums())
            for t in self.targets
            if not self._pending[t.server.resource_id] and (t.memoized or t.start <= self.end)
        ]

    def samples(self, provider: str) -> list[MetricSample]:
        return [sample_of(provider, t, self.totals[t.server.resource_id], self.end) for t in self.targets]


def check_result(result: Mapping[str, Any]) -> None:
    """Refuse a result CloudWatch marked as failed (``PartialData`` just means more pages)."""
    status = str(result.get("StatusCode") or "Complete")
    if status in ("Complete", "PartialData"):
        return
    messages = "; ".join(str(m.get("Value", "")) for m in result.get("Messages") or ()) or "no detail"
    text = f"GetMetricData: query {result.get('Id')}: {status}: {messages}"
    if status == "Forbidden":
        raise PermanentError(text, code=status)
    raise TransientError(text, code=status)


def sample_of(provider: str, target: Target, totals: Totals, end: datetime) -> MetricSample:
    """The sample of ``target`` once its hours up to ``end`` are in ``totals``."""
    server = target.server
    running = server.status is ServerStatus.RUNNING
    return MetricSample(
        provider=provider,
        resource_id=server.resource_id,
        key=server.key,
        at=target.stamp(end),
        cpu_seconds=round(totals.cpu_seconds, 3),
        memory_mb=server.size.memory_mb if running else 0,
        net_rx_bytes=round(totals.rx_bytes),
        net_tx_bytes=round(totals.tx_bytes),
        disk_gb=server.size.disk_gb,
    )
