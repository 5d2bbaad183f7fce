"""run.audit: the one writer of the audit ledger — who acts (RunContext) and every record a run appends."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

import structlog

from reconciler.core.clock import Clock
from reconciler.core.errors import ProviderError
from reconciler.core.model import ObservedServer
from reconciler.core.provider import Provider
from reconciler.core.records import AuditAction, AuditEntry, AuditRecord, Outcome
from reconciler.core.retry import RetryPolicy, call_with_retry
from reconciler.store.base import Store

log = structlog.get_logger("reconciler.run.audit")
T = TypeVar("T")


@dataclass(frozen=True)
class RunContext:
    """Who is applying, from which commit, in which run: stamped on every audit entry."""

    run_id: str
    actor: str
    commit: str = ""
    message: str = ""  # the commit's message, written into the run's run.start entry


@dataclass(frozen=True)
class AuditWriter:
    """Writes one run's audit entries, and runs a mutating provider call between its intent and outcome.

    Every mutation the reconciler makes (the executor's changes, backups, restores) goes
    through ``mutate``: the intent is durable before the call is made and the outcome settles
    it, together with ``ledger``'s writes in one transaction. A kill in between leaves the
    intent open for ``ProviderSession.settle`` on the next start.
    """

    store: Store
    clock: Clock
    deployment: str
    run: RunContext
    retry: RetryPolicy

    def record(
        self,
        key: str,
        provider: str,
        action: AuditAction,
        outcome: Outcome,
        *,
        resource_id: str = "",
        token: str = "",
        detail: str = "",
        error: str = "",
        intent_seq: int | None = None,
    ) -> AuditEntry:
        record = AuditRecord(
            deployment=self.deployment,
            run_id=self.run.run_id,
            actor=self.run.actor,
            commit=self.run.commit,
            action=action,
            outcome=outcome,
            key=key,
            provider=provider,
            resource_id=resource_id,
            token=token,
            detail=detail,
            error=error,
            intent_seq=intent_seq,
        )
        return self.store.append(record, at=self.clock.now())

    def mutate(
        self,
        key: str,
        provider: Provider,
        action: AuditAction,
        call: Callable[[], T],
        *,
        resource_id: str = "",
        token: str = "",
        detail: str = "",
        success_detail: str = "",
        ledger: Callable[[T], object] | None = None,
    ) -> T:
        """Intent, the provider call (retried on TransientError), then the outcome."""
        name = provider.name
        intent = self.record(
            key, name, action, Outcome.INTENT, resource_id=resource_id, token=token, detail=detail
        )

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
        with self.store.transaction():
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
        return result


def new_run(actor: str, commit: str | None) -> RunContext:
    return RunContext(run_id=uuid.uuid4().hex[:12], actor=actor, commit=commit or "")


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
        try:
            count = int(json.loads(entry.record.detail)["to"])
        except (ValueError, KeyError, TypeError):
            continue
        found[member] = LastDecision(count=count, at=entry.at)
    return found


def scaled_counts(store: Store, deployment: str) -> dict[str, int]:
    """``cluster/member`` → the server count its newest scale decision chose."""
    return {member: decision.count for member, decision in last_decisions(store, deployment).items()}
