"""daemon.failover: the daemon's guards around replacing or restarting servers that failed.

``diff`` already decides *what* a failed server needs: a server in error state is
replaced (member ``failover: {mode: replace}``) or restarted (``mode: restart``), and a
stopped server is started (``drift: heal``); such changes carry a ``status`` field. This
module decides *whether now*, with two guards a daemon needs and a one-shot CLI does not:

* **grace** — a failed server is left alone until it has been seen failed for
  ``grace_seconds`` (it may be rebooting). The first sighting is written to the audit
  ledger (``failure.seen``) as well as kept in memory, so a restarted daemon — or another
  replica that took the provider over — continues the grace where it stood instead of
  starting it again. A sighting older than the grace period is not reused: either the
  failover happened since, or the server recovered and this is a new failure.
* **cap** — at most ``max_per_hour`` failovers per member in any hour, counted from the
  audit ledger's ``failover`` entries, so the count survives restarts and is shared by
  every replica. A server that keeps failing cannot make the daemon replace it forever.

A failover that goes ahead is written to the audit ledger (``failover``, with the mode,
the server's status and its resource id) before the change is applied; held ones are
dropped from this cycle's plan by the caller, with whatever depends on them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from reconciler.core.audit_detail import FailoverDetail, FailureSighting
from reconciler.core.changes import Change
from reconciler.core.clock import Clock
from reconciler.core.keys import member_of
from reconciler.core.model import Action, ServerStatus
from reconciler.core.plan import Plan
from reconciler.core.records import AuditAction, Outcome
from reconciler.run.audit import AuditWriter, RunContext
from reconciler.store.base import Store

_WINDOW = timedelta(hours=1)
class Verdict(StrEnum):
    GO = "go"
    GRACE = "grace"  # failed for less than grace_seconds: wait
    CAPPED = "capped"  # max_per_hour failovers of the member already happened this hour


@dataclass(frozen=True)
class Failover:
    """One failover change and what the guards made of it."""

    change: Change
    verdict: Verdict
    reason: str
    first_seen: datetime | None = None  # set when this cycle saw the failure first: record it

    @property
    def key(self) -> str:
        return self.change.key

    @property
    def member(self) -> str:
        return member_of(self.change.key)

    @property
    def mode(self) -> str:
        """replace, restart (an error server) or start (a stopped one)."""
        before = self.change.before
        if self.change.action is Action.REPLACE:
            return "replace"
        return "restart" if before is not None and before.status is ServerStatus.ERROR else "start"

    def audit_detail(self) -> FailoverDetail:
        before = self.change.before
        return FailoverDetail(
            mode=self.mode,
            status=before.status.value if before else "",
            resource_id=before.resource_id if before else "",
            reason=self.change.reason,
        )

    def detail(self) -> str:
        """The audit entry's detail as the ledger holds it (JSON)."""
        return self.audit_detail().encode()


def is_failover(change: Change) -> bool:
    """A change made because a server is in error or stopped (its cause, as diff decided it)."""
    return change.cause.is_failover and change.action in (Action.REPLACE, Action.UPDATE)


class FailoverGuard:
    """Applies grace and cap to a cycle's failover changes; remembers first sightings."""

    def __init__(self) -> None:
        self._first_seen: dict[tuple[str, str], datetime] = {}

    def review(self, plan: Plan, store: Store | None, now: datetime) -> list[Failover]:
        """A verdict for every failover change of the plan, in plan order."""
        changes = [c for c in plan.changes if is_failover(c)]
        failing = {(c.provider, c.before.resource_id) for c in changes if c.before is not None}
        for ident in list(self._first_seen):
            if ident not in failing:  # healed, replaced or gone: a new failure starts a new grace
                del self._first_seen[ident]
        used: dict[str, int] = {}
        if store is not None and changes:
            for entry in store.recent_audit(
                plan.deployment, [AuditAction.FAILOVER], since=now - _WINDOW, limit=10_000
            ):
                if entry.record.outcome is Outcome.INFO:
                    member = member_of(entry.record.key)
                    used[member] = used.get(member, 0) + 1
        verdicts: list[Failover] = []
        for change in changes:
            assert change.before is not None and change.after is not None
            grace = change.after.failover_grace_seconds
            ident = (change.provider, change.before.resource_id)
            sighted: datetime | None = None
            if ident not in self._first_seen:
                earlier = _sighting(store, plan.deployment, change, now - timedelta(seconds=grace))
                self._first_seen[ident] = earlier or now
                sighted = None if earlier is not None or grace <= 0 else now
            first = self._first_seen[ident]
            member = member_of(change.key)
            cap = change.after.failover_max_per_hour
            waited = (now - first).total_seconds()
            if waited < grace:
                verdicts.append(
                    Failover(
                        change,
                        Verdict.GRACE,
                        f"{change.before.status.value} for {waited:.0f}s of a {grace}s grace period",
                        sighted,
                    )
                )
            elif cap is not None and used.get(member, 0) >= cap:
                verdicts.append(
                    Failover(
                        change,
                        Verdict.CAPPED,
                        f"member {member} had {used.get(member, 0)} "
                        f"failovers in the last hour (max_per_hour: {cap})",
                        sighted,
                    )
                )
            else:
                used[member] = used.get(member, 0) + 1
                verdicts.append(Failover(change, Verdict.GO, change.reason, sighted))
        return verdicts


def _sighting(store: Store | None, deployment: str, change: Change, since: datetime) -> datetime | None:
    """When the ledger says this server was first seen failed, within ``since`` (None: not known)."""
    if store is None or change.before is None:
        return None
    for entry in store.recent_audit(deployment, [AuditAction.FAILURE_SEEN], key=change.key, since=since):
        if entry.record.resource_id == change.before.resource_id:
            return entry.at
    return None


def record_sighting(store: Store, deployment: str, run: RunContext, failover: Failover) -> None:
    """The ledger entry that starts a failed server's grace period (``failover.first_seen``)."""
    before = failover.change.before
    assert failover.first_seen is not None and before is not None
    AuditWriter(store, Clock(fixed=failover.first_seen), deployment, run).failure_seen(
        failover.key, failover.change.provider, before.resource_id, FailureSighting(before.status)
    )


def record(store: Store, deployment: str, run: RunContext, failover: Failover, at: datetime) -> None:
    """The ledger entry of a failover that goes ahead (it counts toward the member's cap)."""
    before = failover.change.before
    AuditWriter(store, Clock(fixed=at), deployment, run).failover(
        failover.key, failover.change.provider, before.resource_id if before else "", failover.audit_detail()
    )


def held(failovers: Sequence[Failover]) -> set[str]:
    """Ids of the changes the guards hold back this cycle."""
    return {f.change.id for f in failovers if f.verdict is not Verdict.GO}
