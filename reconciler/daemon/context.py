"""daemon.context: what a daemon cycle runs with and reports — options, cross-cycle context, outcomes.

Kept apart from daemon.cycle so the modules a cycle calls (daemon.notify) can name
the context without importing the cycle."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum

from reconciler.core.errors import Diagnostic
from reconciler.core.records import Lease
from reconciler.daemon import failover
from reconciler.daemon.alerts import Alerter
from reconciler.daemon.backoff import KeyBackoff
from reconciler.daemon.http import DaemonMetrics
from reconciler.run.leases import lease_ttl
from reconciler.run.workspace import Workspace


@dataclass(frozen=True)
class DaemonOptions:
    source: str
    branch: str = "main"
    path: str = ""
    deployment: str | None = None
    interval: float = 60.0
    git_poll: float = 15.0
    listen: str | None = "127.0.0.1:9108"
    max_deletes: str = "10"
    allow_mass_delete: bool = False
    lease_ttl: float | None = None  # default: 3 intervals, at least 30 s
    shutdown_timeout: float = 30.0
    backoff_base: float = 15.0
    backoff_cap: float = 600.0
    once: bool = False

    @property
    def lease_seconds(self) -> float:
        """``--lease-ttl``, else ``RECONCILER_LEASE_TTL``, else three intervals (at least 30 s)."""
        return self.lease_ttl if self.lease_ttl is not None else lease_ttl(max(3 * self.interval, 30.0))


class CycleOutcome(StrEnum):
    CONVERGED = "converged"  # the clouds match the desired state (now, or after this cycle's changes)
    PROGRESSING = "progressing"  # nothing failed, but some changes wait (backoff, grace, another holder)
    FAILED = "failed"  # a change failed, or an error cut the cycle short
    IDLE = "idle"  # no valid desired state to reconcile yet
    DENIED = "denied"  # a deny Policy refuses the plan: nothing was applied


@dataclass(frozen=True)
class CycleReport:
    outcome: CycleOutcome
    changes: int = 0  # in the plan
    applied: int = 0
    failed: int = 0
    held: int = 0  # left out this cycle
    observed: bool = False  # the clouds were observed (readiness)
    message: str = ""
    denied: tuple[Diagnostic, ...] = ()  # DENIED: each deny violation, at its policy's file:line


@dataclass
class CycleContext:
    """What lives across cycles: collaborators and bookkeeping about attempts."""

    ws: Workspace
    options: DaemonOptions
    metrics: DaemonMetrics
    alerter: Alerter
    identity: str
    cancel: Callable[[], bool]
    heartbeat: Callable[[], None]
    backoff: KeyBackoff = field(default_factory=KeyBackoff)
    guard: failover.FailoverGuard = field(default_factory=failover.FailoverGuard)
    leases: dict[str, Lease] = field(default_factory=dict)  # provider name → lease we hold
    last_refusal: str = ""
