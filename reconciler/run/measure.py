"""run.measure: sample each provider's usage counters into the usage ledger, for measured billing.

A provider that ``reports_metrics`` (its type has ``capabilities.metrics`` and its
configuration does not turn them off) reports cumulative counters (CPU
seconds, network bytes) and gauges (memory in use) for the servers it was shown, in as
few calls as its API allows; the samples are appended to the store as they are. Nothing
is computed here: ``billing`` turns the samples into usage, and deals with counters that
restart (a reboot) and with spans nobody sampled.

Sampling never stands in the way of reconciling: a provider that fails to answer (after
the usual retries) is named in the result and skipped, and the next cycle samples again.
``apply_plan`` calls ``sample_usage`` once per run, right after it observed the clouds
and before it changes anything, so a server about to be deleted or resized has its last
counters taken; ``reconciler usage collect PATH`` does the same on its own (from cron,
or between daemon cycles).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from reconciler.config import load_desired_state
from reconciler.core.errors import ProviderError
from reconciler.core.model import ObservedServer
from reconciler.core.provider import Provider
from reconciler.core.retry import RetryPolicy, call_with_retry
from reconciler.run.logger import get_logger
from reconciler.run.session import ProviderSession
from reconciler.run.workspace import Workspace
from reconciler.store.base import Store

log = get_logger("reconciler.run.measure")


@dataclass(frozen=True)
class CollectResult:
    """What one round of sampling did."""

    deployment: str
    samples: int
    sampled: tuple[str, ...]  # providers that answered
    without_metrics: tuple[str, ...]  # providers that report no metrics at all
    failed: tuple[tuple[str, str], ...] = ()  # (provider, why)

    def lines(self) -> list[str]:
        """Human-readable summary lines."""
        out = [
            f"{self.samples} samples from {len(self.sampled)} provider(s) for deployment {self.deployment}"
            + (f": {', '.join(self.sampled)}" if self.sampled else "")
        ]
        if self.without_metrics:
            out.append(f"no metrics reported by: {', '.join(self.without_metrics)} (instance-hours only)")
        out.extend(f"not sampled: {name}: {why}" for name, why in self.failed)
        return out


def sample_usage(
    providers: Mapping[str, Provider],
    observed: Sequence[ObservedServer],
    store: Store,
    deployment: str,
    retry: RetryPolicy,
) -> CollectResult:
    """Ask every provider with metrics for its observed servers' counters; append them to ``store``."""
    by_provider: dict[str, list[ObservedServer]] = {}
    for server in observed:
        by_provider.setdefault(server.provider, []).append(server)
    count = 0
    sampled: list[str] = []
    without: list[str] = []
    failed: list[tuple[str, str]] = []
    for name in sorted(providers):
        provider = providers[name]
        if not provider.reports_metrics:
            without.append(name)
            continue
        servers = by_provider.get(name, [])
        if not servers:
            continue
        try:
            samples = call_with_retry(functools.partial(provider.metrics, servers), retry)
        except ProviderError as exc:
            log.warning("usage sampling failed; the next cycle samples again", provider=name, error=str(exc))
            failed.append((name, str(exc)))
            continue
        store.add_samples(deployment, list(samples))
        count += len(samples)
        sampled.append(name)
    return CollectResult(
        deployment=deployment,
        samples=count,
        sampled=tuple(sampled),
        without_metrics=tuple(without),
        failed=tuple(failed),
    )


def collect_path(path: Path, ws: Workspace, *, deployment: str | None = None) -> CollectResult:
    """``usage collect PATH``: load the desired state, observe every provider, sample, store."""
    state = load_desired_state(path, deployment=deployment)
    with ProviderSession(ws, state.providers) as session:
        observed = session.observe(state.deployment)
        return sample_usage(session.providers, observed, ws.store(), state.deployment, ws.retry)
