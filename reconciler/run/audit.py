"""run.audit: the one writer of the audit ledger — who is acting (RunContext), every record a run,
a backup or the daemon appends (AuditWriter), and the readers of what those records say.

Details are typed (``reconciler.core.audit_detail``): the writer encodes them, the readers
below decode them, and an entry that does not decode is skipped, never a crash.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TypeVar

from reconciler.core.audit_detail import (
    AlertDetail,
    ApplyEnded,
    ApplyStarted,
    AuditDetail,
    CommitAdopted,
    CommitRejected,
    DaemonStarted,
    DaemonStopped,
    FailoverDetail,
    FailureSighting,
    PlanRefused,
    PolicyDenied,
    ScaleDetail,
    ServerGone,
    SnapshotDetail,
    WindowOverride,
    encode_detail,
)
from reconciler.core.clock import Clock
from reconciler.core.errors import ProviderError
from reconciler.core.model import ObservedServer, Size
from reconciler.core.provider import Provider
from reconciler.core.records import AuditAction, AuditEntry, AuditRecord, Outcome
from reconciler.core.retry import RetryPolicy, call_with_retry
from reconciler.run.logger import get_logger
from reconciler.store.base import Store

log = get_logger("reconciler.run.audit")
T = TypeVar("T")


@dataclass(frozen=True)
class RunContext:
    """Who is applying (``actor``, the operator), which change (the commit, its author and
    committer) and in which run: stamped on every audit entry."""

    run_id: str
    actor: str
    commit: str = ""
    message: str = ""  # the commit's message, written into the run's run.start entry
    author: str = ""
    committer: str = ""


@dataclass(frozen=True)
class AuditWriter:
    """Writes one run's audit entries, and runs a mutating provider call between its intent and outcome.

    Every audit entry of the engine, the backups and the daemon is appended here; a detail is
    a typed one from ``core.audit_detail`` (plain text is taken as it is).

    Every mutation the reconciler makes (the executor's changes, backups, restores) goes
    through ``mutate``: the intent is durable before the call is made and the outcome settles
    it, together with ``ledger``'s writes in one transaction. A kill in between leaves the
    intent open for ``ProviderSession.settle`` on the next start.
    """

    store: Store
    clock: Clock
    deployment: str
    run: RunContext
    retry: RetryPolicy = field(default_factory=RetryPolicy)

    def at(self, moment: datetime) -> AuditWriter:
        """This writer, stamping every entry it appends with ``moment``."""
        return dataclasses.replace(self, clock=Clock(fixed=moment))

    def record(
        self,
        key: str,
        provider: str,
        action: AuditAction,
        outcome: Outcome,
        *,
        resource_id: str = "",
        token: str = "",
        detail: AuditDetail | str = "",
        error: str = "",
        intent_seq: int | None = None,
    ) -> AuditEntry:
        record = AuditRecord(
            deployment=self.deployment,
            run_id=self.run.run_id,
            actor=self.run.actor,
            commit=self.run.commit,
            author=self.run.author,
            committer=self.run.committer,
            action=action,
            outcome=outcome,
            key=key,
            provider=provider,
            resource_id=resource_id,
            token=token,
            detail=encode_detail(detail),
            error=error,
            intent_seq=intent_seq,
        )
        return self.store.append(record, at=self.clock.now())

    # --- the entries of the run and the daemon that call no provider -----------------------------
    def _info(
        self,
        action: AuditAction,
        detail: AuditDetail,
        *,
        key: str = "",
        provider: str = "",
        resource_id: str = "",
        outcome: Outcome = Outcome.INFO,
        error: str = "",
    ) -> AuditEntry:
        return self.record(
            key, provider, action, outcome, resource_id=resource_id, detail=detail, error=error
        )

    def run_start(self, detail: ApplyStarted | DaemonStarted) -> AuditEntry:
        return self._info(AuditAction.RUN_START, detail)

    def run_end(self, detail: ApplyEnded | DaemonStopped, outcome: Outcome = Outcome.INFO) -> AuditEntry:
        return self._info(AuditAction.RUN_END, detail, outcome=outcome)

    def server_gone(self, key: str, provider: str, resource_id: str) -> AuditEntry:
        """A server vanished behind our back (its usage interval is closed with this entry)."""
        return self._info(
            AuditAction.OBSERVE_GONE, ServerGone(), key=key, provider=provider, resource_id=resource_id
        )

    def alert(self, subject: str, detail: AlertDetail) -> AuditEntry:
        """An alert that was sent, about ``subject``."""
        return self._info(AuditAction.ALERT, detail, key=subject)

    def scale(self, member: str, detail: ScaleDetail) -> AuditEntry:
        """A member's new server count (read back by ``last_decisions``)."""
        return self._info(AuditAction.SCALE, detail, key=member)

    def failure_seen(self, key: str, provider: str, resource_id: str, detail: FailureSighting) -> AuditEntry:
        """The first sighting of a failed server: its failover grace starts."""
        return self._info(
            AuditAction.FAILURE_SEEN, detail, key=key, provider=provider, resource_id=resource_id
        )

    def failover(self, key: str, provider: str, resource_id: str, detail: FailoverDetail) -> AuditEntry:
        """A failover that goes ahead (it counts toward its member's cap)."""
        return self._info(AuditAction.FAILOVER, detail, key=key, provider=provider, resource_id=resource_id)

    def commit(self, detail: CommitAdopted) -> AuditEntry:
        """The daemon adopted ``run.commit``."""
        return self._info(AuditAction.COMMIT, detail)

    def reject_commit(self, detail: CommitRejected, error: str) -> AuditEntry:
        """``run.commit`` is invalid; ``error`` is its first diagnostic."""
        return self._info(AuditAction.REJECTED, detail, outcome=Outcome.FAILED, error=error)

    def deny_commit(self, detail: PolicyDenied, error: str) -> AuditEntry:
        """A deny Policy refuses ``run.commit``; ``error`` is its first violation."""
        return self._info(AuditAction.REJECTED, detail, outcome=Outcome.FAILED, error=error)

    def override_window(self, detail: WindowOverride) -> AuditEntry:
        """``apply --override-window``: open change windows passed, and why."""
        return self._info(AuditAction.WINDOW_OVERRIDE, detail)

    def refuse_plan(self, error: str) -> AuditEntry:
        """A guard refused the plan; ``error`` says why."""
        return self._info(AuditAction.REJECTED, PlanRefused(), error=error)

    def mutate(
        self,
        key: str,
        provider: Provider,
        action: AuditAction,
        call: Callable[[], T],
        *,
        resource_id: str = "",
        token: str = "",
        detail: AuditDetail | str = "",
        success_detail: AuditDetail | str = "",
        ledger: Callable[[T], object] | None = None,
    ) -> T:
        """Intent, the provider call (retried on TransientError), then the outcome."""
        name = provider.name
        intent = self.store.durably(lambda: self.record(
            key, name, action, Outcome.INTENT, resource_id=resource_id, token=token, detail=detail
        ))

        def retried(attempt: int, exc: Exception, wait_s: float) -> None:
            log.info(
                "retrying",
                provider=name,
                call=action.value,
                attempt=attempt,
                error=str(exc),
                wait=round(wait_s, 3),
            )

        try:
            result = call_with_retry(call, self.retry, on_retry=retried)
        except ProviderError as exc:
            self.record(
                key,
                name,
                action,
                Outcome.FAILED,
                resource_id=resource_id,
                token=token,
                error=str(exc),
                intent_seq=intent.seq,
            )
            raise
        done_id = result.resource_id if isinstance(result, ObservedServer) else resource_id

        def succeeded() -> None:
            self.record(
                key,
                name,
                action,
                Outcome.SUCCEEDED,
                resource_id=done_id,
                token=token,
                detail=success_detail,
                intent_seq=intent.seq,
            )
            if ledger is not None:
                ledger(result)

        self.store.durably(succeeded)
        return result


def new_run(actor: str, commit: str | None, *, author: str = "", committer: str = "") -> RunContext:
    """A new run by the operator ``actor`` of ``commit`` (by ``author``, committed by ``committer``)."""
    return RunContext(
        run_id=uuid.uuid4().hex[:12], actor=actor, commit=commit or "", author=author, committer=committer
    )


_DECISIONS_READ = 1000


@dataclass(frozen=True)
class LastDecision:
    """The newest scale decision of a member: the count chosen and when."""

    count: int
    at: datetime


# --- the ledger -------------------------------------------------------------------------------
def last_decisions(store: Store, deployment: str) -> dict[str, LastDecision]:
    """The newest scale decision of every member that has one."""
    found: dict[str, LastDecision] = {}
    for entry in store.recent_audit(deployment, [AuditAction.SCALE], limit=_DECISIONS_READ):
        member = entry.record.key
        if member in found:
            continue
        decision = ScaleDetail.decode(entry.record.detail)
        if decision is not None:
            found[member] = LastDecision(count=decision.desired, at=entry.at)
    return found


def scaled_counts(store: Store, deployment: str) -> dict[str, int]:
    """``cluster/member`` → the server count its newest scale decision chose."""
    return {member: decision.count for member, decision in last_decisions(store, deployment).items()}


def adopted(store: Store, deployment: str) -> dict[str, str]:
    """Key → the resource id the newest adopt of that key took over, for keys whose newest
    adopt or forget is a succeeded (or recovered) adopt: what ``validate`` says is done."""
    found: dict[str, str] = {}
    seen: set[str] = set()
    actions = [AuditAction.ADOPT, AuditAction.FORGET]
    for entry in store.recent_audit(deployment, actions, limit=1_000_000):
        record = entry.record
        if record.outcome not in (Outcome.SUCCEEDED, Outcome.RECOVERED) or record.key in seen:
            continue
        seen.add(record.key)
        if record.action is AuditAction.ADOPT:
            found[record.key] = record.resource_id
    return found


def backup_server_size(store: Store, deployment: str, key: str, snapshot_id: str) -> Size | None:
    """The size the backed-up server had, from the snapshot's audit entry (None if unknown)."""
    for entry in store.recent_audit(deployment, [AuditAction.SNAPSHOT], key=key, limit=100_000):
        record = entry.record
        if record.outcome is not Outcome.SUCCEEDED or record.resource_id != snapshot_id:
            continue
        snapshot = SnapshotDetail.decode(record.detail)
        return snapshot.server_size if snapshot is not None else None
    return None
