"""daemon.backoff: per-key exponential backoff for the daemon, and cutting a plan down to what may run now.

A server key whose change keeps failing (a bad image, a quota) would otherwise be retried
every cycle, spamming the cloud and the ledger while the rest waits. ``KeyBackoff``
remembers, per key, how many times in a row its change failed and holds it back for
``base × 2^(failures-1)`` seconds, capped (10 minutes by default); one success clears it.
This is memory of *attempts*, not of the world: every cycle still observes and plans from
scratch, and a key whose backoff expired is simply planned again.

``restrict_plan`` drops changes from a plan — those in backoff, held failovers, providers
whose lease another replica holds — together with every change that depends on a dropped
one, so the executor never runs a change before something it needs.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Collection
from dataclasses import dataclass, field

from reconciler.core.changes import Change
from reconciler.core.plan import Plan

DEFAULT_BASE_SECONDS = 15.0
DEFAULT_CAP_SECONDS = 600.0


@dataclass
class KeyBackoff:
    """Failure streaks and hold-until times per key, on a monotonic clock (seconds)."""

    base_seconds: float = DEFAULT_BASE_SECONDS
    cap_seconds: float = DEFAULT_CAP_SECONDS
    _failures: dict[str, int] = field(default_factory=dict)
    _until: dict[str, float] = field(default_factory=dict)

    def failed(self, key: str, now: float) -> float:
        """Count one more failure of ``key``; returns how long it is now held back."""
        failures = self._failures.get(key, 0) + 1
        self._failures[key] = failures
        delay = min(self.cap_seconds, self.base_seconds * float(2 ** min(failures - 1, 30)))
        self._until[key] = now + delay
        return delay

    def succeeded(self, key: str) -> None:
        self._failures.pop(key, None)
        self._until.pop(key, None)

    def waiting(self, key: str, now: float) -> bool:
        """True while ``key`` is held back."""
        return self._until.get(key, 0.0) > now

    def failures(self, key: str) -> int:
        return self._failures.get(key, 0)

    def held(self, now: float) -> list[str]:
        """Every key held back at ``now``, sorted."""
        return sorted(key for key, until in self._until.items() if until > now)


def restrict_plan(
    plan: Plan,
    drop: Callable[[Change], bool],
    *,
    providers: Collection[str] | None = None,
) -> tuple[Plan, list[Change]]:
    """(the plan without the dropped changes and their dependents, the changes left out).

    ``drop`` picks changes to leave out; ``providers``, when given, keeps only those
    providers — their configurations, their part of the observed basis (so apply's
    staleness check compares like with like) and their changes.
    """
    out = {c.id for c in plan.changes if drop(c) or (providers is not None and c.provider not in providers)}
    grew = bool(out)
    while grew:  # a change waiting on a left-out change cannot run either
        before = len(out)
        out |= {c.id for c in plan.changes if c.id not in out and any(d in out for d in c.depends_on)}
        grew = len(out) > before
    kept = tuple(c for c in plan.changes if c.id not in out)
    left_out = [c for c in plan.changes if c.id in out]
    if providers is None:
        return dataclasses.replace(plan, changes=kept), left_out
    keep = set(providers)
    return (
        dataclasses.replace(
            plan,
            changes=kept,
            providers=tuple(p for p in plan.providers if p.name in keep),
            basis=tuple(s for s in plan.basis if s.provider in keep),
        ),
        left_out,
    )
