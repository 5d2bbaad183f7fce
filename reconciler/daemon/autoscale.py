"""daemon.autoscale: how many servers an autoscaled member runs, decided from provider metrics.

A member with ``autoscale: {min, max, metric, target, cooldown_seconds}`` runs ``min``
servers until the daemon decides otherwise. Each cycle the daemon measures every running
server of the member and compares the mean with the target:

* mean above target → one more server (up to ``max``);
* mean below target, and the load spread over one server fewer would still be at most
  the target → one server fewer (down to ``min``, never to zero by metrics alone: with no
  server left there would be nothing to measure);
* at most one step per ``cooldown_seconds``; anything else holds.

Utilisation comes from two samples of the provider's cumulative counters (``MetricSample``):
CPU percent = CPU seconds used ÷ (elapsed seconds × vCPUs); network = bytes in and out per
second; memory percent is read from the newer sample alone. The older sample is the
newest one the store holds for that server (the daemon stores every sample it takes).

The chosen count is persisted as a ``scale`` entry in the audit ledger, with the metric
values that drove it; ``scaled_counts`` reads the newest decision per member back, and
the loader expands the member to that count (kept within min..max), so the count the
daemon chose is desired state, not drift — for ``reconciler plan`` too.

``decide`` is a pure function of its arguments (the clock is a parameter), so scaling
rules are tested without a daemon or a cloud.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog

from reconciler.core.audit_detail import ScaleDetail
from reconciler.core.clock import Clock
from reconciler.core.errors import ProviderError
from reconciler.core.keys import ServerKey
from reconciler.core.model import (
    Autoscale,
    DesiredState,
    MetricSample,
    ObservedServer,
    ScaleMetric,
    ServerStatus,
    Size,
)
from reconciler.core.provider import Provider
from reconciler.core.retry import RetryPolicy, call_with_retry
from reconciler.run.audit import AuditWriter, LastDecision, RunContext
from reconciler.store.base import Store

log = structlog.get_logger("reconciler.daemon.autoscale")

SAMPLE_LOOKBACK = timedelta(minutes=15)  # an older sample is too stale to measure against




@dataclass(frozen=True)
class ScaleDecision:
    """One member's decision in one cycle; ``changed`` ones go to the audit ledger."""

    member: str
    metric: ScaleMetric
    target: float
    current: int
    desired: int
    mean: float | None
    values: tuple[tuple[str, float], ...]  # (server key, utilisation) that drove it
    reason: str

    @property
    def changed(self) -> bool:
        return self.desired != self.current

    def audit_detail(self) -> ScaleDetail:
        """The audit entry's detail: the count and every metric value (rounded to 3 places)."""
        return ScaleDetail(
            current=self.current,
            desired=self.desired,
            metric=self.metric,
            target=self.target,
            mean=None if self.mean is None else round(self.mean, 3),
            values=tuple((key, round(value, 3)) for key, value in self.values),
            reason=self.reason,
        )

    def detail(self) -> str:
        """The audit entry's detail as the ledger holds it (JSON)."""
        return self.audit_detail().encode()


# --- the rules --------------------------------------------------------------------------------
def clamp(spec: Autoscale, count: int) -> int:
    return max(spec.min, min(spec.max, count))


def decide(
    spec: Autoscale,
    current: int,
    values: Mapping[str, float],
    last: LastDecision | None,
    now: datetime,
) -> ScaleDecision:
    """Scale one step out or in, or hold (see the module docstring); ``now`` is the decision time."""
    current = clamp(spec, current)
    ordered = tuple(sorted(values.items()))

    def result(desired: int, reason: str, mean: float | None) -> ScaleDecision:
        return ScaleDecision(
            member=spec.member,
            metric=spec.metric,
            target=spec.target,
            current=current,
            desired=desired,
            mean=mean,
            values=ordered,
            reason=reason,
        )

    if not values:
        return result(current, "no metrics yet", None)
    mean = sum(values.values()) / len(values)
    desired, reason = current, f"mean {mean:.1f} is within range of target {spec.target:g}"
    if mean > spec.target:
        if current < spec.max:
            desired, reason = current + 1, f"mean {mean:.1f} above target {spec.target:g}"
        else:
            reason = f"mean {mean:.1f} above target {spec.target:g}, but already at max {spec.max}"
    elif mean < spec.target and current > max(spec.min, 1):
        projected = mean * current / (current - 1)
        if projected <= spec.target:
            desired = current - 1
            reason = f"mean {mean:.1f} below target {spec.target:g} ({projected:.1f} with one server fewer)"
    if desired != current and last is not None:
        ready_at = last.at + timedelta(seconds=spec.cooldown_seconds)
        if now < ready_at:
            wait = (ready_at - now).total_seconds()
            return result(current, f"{reason}; cooling down for {wait:.0f}s more", mean)
    return result(desired, reason, mean)


def utilisation(
    metric: ScaleMetric, before: MetricSample | None, after: MetricSample, size: Size
) -> float | None:
    """One server's load between two samples (percent, or bytes/s for network); None if unknown."""
    if metric is ScaleMetric.MEMORY:
        return 100.0 * after.memory_mb / size.memory_mb if size.memory_mb > 0 else None
    if before is None:
        return None
    elapsed = (after.at - before.at).total_seconds()
    if elapsed <= 0:
        return None
    if metric is ScaleMetric.CPU:
        if size.cpus <= 0:
            return None
        return max(0.0, after.cpu_seconds - before.cpu_seconds) * 100.0 / (elapsed * size.cpus)
    moved = (after.net_rx_bytes + after.net_tx_bytes) - (before.net_rx_bytes + before.net_tx_bytes)
    return max(0, moved) / elapsed






def record(store: Store, deployment: str, run: RunContext, decision: ScaleDecision, at: datetime) -> None:
    """The ``scale`` entry of a decision, at ``at`` (``last_decisions`` reads it back)."""
    AuditWriter(store, Clock(fixed=at), deployment, run).scale(decision.member, decision.audit_detail())


# --- one cycle ----------------------------------------------------------------------------------
def _previous_samples(store: Store, deployment: str, now: datetime) -> dict[tuple[str, str], MetricSample]:
    latest: dict[tuple[str, str], MetricSample] = {}
    for sample in store.samples(start=now - SAMPLE_LOOKBACK, end=now, deployment=deployment):
        latest[(sample.provider, sample.resource_id)] = sample  # time order: the last one wins
    return latest


def measure(
    state: DesiredState,
    observed: Sequence[ObservedServer],
    providers: Mapping[str, Provider],
    store: Store,
    now: datetime,
    retry: RetryPolicy | None = None,
) -> dict[str, dict[str, float]]:
    """``cluster/member`` → {server key: utilisation} for every autoscaled member's running servers.

    Takes one metrics call per provider, stores the samples (the next cycle measures against
    them) and compares each with the newest sample stored before it.
    """
    if not state.autoscale:
        return {}
    by_member: dict[str, list[ObservedServer]] = {}
    for server in observed:
        key = ServerKey.try_parse(server.key)  # a foreign key belongs to no member
        if key is not None and key.member in state.autoscale and server.status is ServerStatus.RUNNING:
            by_member.setdefault(key.member, []).append(server)
    wanted = [s for servers in by_member.values() for s in servers]
    previous = _previous_samples(store, state.deployment, now)
    samples: list[MetricSample] = []
    for name in sorted({s.provider for s in wanted}):
        provider = providers.get(name)
        if provider is None:
            continue
        try:
            servers = [s for s in wanted if s.provider == name]
            samples.extend(
                call_with_retry(functools.partial(provider.metrics, servers), retry or RetryPolicy())
            )
        except ProviderError as exc:
            log.warning("metrics unavailable; not scaling this cycle", provider=name, error=str(exc))
    if samples:
        store.add_samples(state.deployment, samples)
    fresh = {(s.provider, s.resource_id): s for s in samples}
    values: dict[str, dict[str, float]] = {}
    for member, servers in by_member.items():
        spec = state.autoscale[member]
        for server in servers:
            after = fresh.get((server.provider, server.resource_id))
            if after is None:
                continue
            before = previous.get((server.provider, server.resource_id))
            value = utilisation(
                spec.metric, before if before is None or before.at < after.at else None, after, server.size
            )
            if value is not None:
                values.setdefault(member, {})[server.key] = value
    return values


def evaluate(
    specs: Iterable[Autoscale],
    counts: Mapping[str, int],
    values: Mapping[str, Mapping[str, float]],
    last: Mapping[str, LastDecision],
    now: datetime,
) -> list[ScaleDecision]:
    """One decision per autoscaled member (current count: the last decision's, else min)."""
    return [
        decide(
            spec, counts.get(spec.member, spec.min), values.get(spec.member, {}), last.get(spec.member), now
        )
        for spec in specs
    ]
