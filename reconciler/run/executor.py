"""run.executor: the executor — walks a Plan's DAG and carries out each change through its provider.

The plan is the whole contract: this module reads nothing but the Plan (and the secrets
its inputs reference, resolved inside the provider call). For every mutating call it

1. writes an *intent* to the audit ledger (durable before the call is made),
2. calls the provider, retrying ``TransientError`` with backoff and jitter,
3. writes the outcome (settling the intent) and the usage-ledger change in one transaction.

A failed change skips everything that depends on it, naming the failed upstream; the
rest of the graph goes on. A ``UserError`` inside a change (a full disk refusing a ledger
write, say) stops the walk instead and is raised as itself. Concurrency is bounded per
provider by ``max_parallel``.
A kill at any point leaves at worst an unresolved intent, which ``settle_intents``
resolves on the next start by looking the resource up by its idempotency token.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, TypeVar

from reconciler.config import render_user_data, resolve_secret
from reconciler.core.adoption import MISMATCH, spec_matches
from reconciler.core.audit_detail import AdoptDetail, AuditDetail, CreateIntent, Resize
from reconciler.core.changes import Change
from reconciler.core.clock import Clock
from reconciler.core.dag import walk
from reconciler.core.errors import LeaseLostError, NotFoundError, PermanentError, ProviderError, UserError
from reconciler.core.model import (
    Action,
    CreateRequest,
    ObservedServer,
    ServerStatus,
    UpdateRequest,
    server_name,
)
from reconciler.core.plan import Plan
from reconciler.core.pricing import usage_interval
from reconciler.core.provider import AdoptRequest, Provider
from reconciler.core.records import AuditAction, AuditEntry, Outcome, UsageInterval
from reconciler.core.retry import RetryPolicy
from reconciler.run.audit import AuditWriter, RunContext
from reconciler.run.logger import get_logger
from reconciler.store.base import Store

if TYPE_CHECKING:
    from reconciler.config.scripts import Rendered

log = get_logger("reconciler.run.executor")
T = TypeVar("T")


class ChangeStatus(StrEnum):
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"


@dataclass(frozen=True)
class ChangeResult:
    """How one change of the plan ended: its status, a message, the resource it made or touched."""

    change: Change
    status: ChangeStatus
    message: str = ""
    resource_id: str = ""
    permanent: bool = False  # FAILED because the cloud refused for good (PermanentError)




Progress = Callable[[ChangeResult], None]




@dataclass
class Executor:
    """Carries out a plan's changes in dependency order, intent and outcome in the ledger for each."""

    plan: Plan
    providers: Mapping[str, Provider]
    store: Store
    clock: Clock
    run: RunContext
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    on_result: Progress | None = None
    # Asked before each change starts; True (shutting down) skips the changes not yet started.
    cancel: Callable[[], bool] | None = None
    # Set when a lease of this run was lost (see reconciler.run.leases): no change starts after
    # that, and a change whose ledger write is refused (LeaseLostError) sets it.
    lease_lost: threading.Event | None = None
    # Called before each server is deleted (a final backup); raising ProviderError fails the change.
    before_delete: Callable[[Change, ObservedServer], None] | None = None
    audit: AuditWriter = field(init=False)
    _rendered: Rendered = field(init=False, default_factory=dict)  # user data alike for many servers

    def __post_init__(self) -> None:
        self.audit = AuditWriter(self.store, self.clock, self.plan.deployment, self.run, self.retry)

    def _record(
        self,
        change: Change,
        action: AuditAction,
        outcome: Outcome,
        *,
        error: str = "",
    ) -> AuditEntry:
        return self.audit.record(change.key, change.provider, action, outcome, error=error)

    def _interval(self, server: ObservedServer) -> UsageInterval:
        plist = self.plan.price_list_for(server.provider)
        return usage_interval(self.plan.deployment, server, plist, start=self.clock.now())

    def _mutate(
        self,
        change: Change,
        action: AuditAction,
        provider: Provider,
        call: Callable[[], T],
        *,
        resource_id: str = "",
        token: str = "",
        detail: AuditDetail | str = "",
        success_detail: AuditDetail | str = "",
        ledger: Callable[[T], object] | None = None,
    ) -> T:
        return self.audit.mutate(
            change.key,
            provider,
            action,
            call,
            resource_id=resource_id,
            token=token,
            detail=detail,
            success_detail=success_detail,
            ledger=ledger,
        )

    def _create(self, change: Change) -> ObservedServer:
        server = change.after
        assert server is not None and change.token is not None
        provider = self.providers[change.provider]
        request = CreateRequest(
            owner=self.plan.deployment,
            key=server.key,
            name=server_name(server.key, change.generation),
            token=change.token,
            generation=change.generation,
            spec_hash=server.spec_hash,
            image=server.image,
            size=server.size,
            flavor=server.flavor,
            user_data=render_user_data(server, resolve_secret, self._rendered),
            tags=server.tags,
            cluster=server.cluster,
            member=server.member,
            protect=server.protect,
            backup_policy=server.backup_policy or "",
        )
        detail = CreateIntent(generation=change.generation, spec_hash=server.spec_hash, size=server.size)
        return self._mutate(
            change,
            AuditAction.CREATE,
            provider,
            lambda: provider.create(request),
            token=change.token,
            detail=detail,
            ledger=lambda created: self.store.open_interval(self._interval(created)),
        )

    def _adopt(self, change: Change) -> ObservedServer:
        """Write our marks on the server the change takes over (nothing else); its usage starts now."""
        server, want = change.before, change.after
        assert server is not None and want is not None and change.token is not None
        provider = self.providers[change.provider]
        spec_hash = want.spec_hash if spec_matches(want, server) else MISMATCH  # as diff decided
        request = AdoptRequest(
            owner=self.plan.deployment,
            key=want.key,
            token=change.token,
            generation=change.generation,
            spec_hash=spec_hash,
            cluster=want.cluster,
            member=want.member,
            protect=want.protect,
            backup_policy=want.backup_policy or "",
        )
        detail = AdoptDetail(
            server=server.resource_id, generation=change.generation, spec_hash=spec_hash, size=server.size
        )
        return self._mutate(
            change,
            AuditAction.ADOPT,
            provider,
            lambda: provider.adopt(server, request),
            resource_id=server.resource_id,
            token=change.token,
            detail=detail,
            success_detail=detail,
            ledger=lambda adopted: self.store.open_interval(self._interval(adopted)),
        )

    def _delete(self, change: Change, server: ObservedServer) -> None:
        _refuse_protected(change, server)
        if self.before_delete is not None:
            self.before_delete(change, server)
        provider = self.providers[server.provider]

        def delete() -> None:
            with contextlib.suppress(NotFoundError):  # gone already: what delete wanted
                provider.delete(server)

        self._mutate(
            change,
            AuditAction.DELETE,
            provider,
            delete,
            resource_id=server.resource_id,
            ledger=lambda _: self.store.close_interval(
                server.provider, server.resource_id, end=self.clock.now()
            ),
        )

    def _power(self, change: Change, server: ObservedServer, start: bool) -> ObservedServer:
        provider = self.providers[server.provider]
        action = AuditAction.START if start else AuditAction.STOP
        call = provider.start if start else provider.stop
        return self._mutate(change, action, provider, lambda: call(server), resource_id=server.resource_id)

    def _update(self, change: Change) -> ObservedServer:
        before, after = change.before, change.after
        assert before is not None and after is not None
        provider = self.providers[before.provider]
        current = before
        if before.status in (ServerStatus.STOPPED, ServerStatus.ERROR):  # error: failover by restart
            current = self._power(change, current, start=True)
        request = UpdateRequest(
            size=after.size,
            flavor=after.flavor,
            tags=after.tags,
            allow_restart=after.allow_restart,
            protect=after.protect,
            backup_policy=after.backup_policy or "",
        )
        if _as_requested(current, request):
            return current

        def resized(updated: ObservedServer) -> None:
            if (updated.size, updated.flavor) != (before.size, before.flavor):
                self.store.close_interval(before.provider, before.resource_id, end=self.clock.now())
                self.store.open_interval(self._interval(updated))

        return self._mutate(
            change,
            AuditAction.UPDATE,
            provider,
            lambda: provider.update(current, request),
            resource_id=before.resource_id,
            detail=Resize(before=before.size, after=after.size),
            ledger=resized,
        )

    def execute_change(self, change: Change) -> ChangeResult:
        """Carry out one change; provider errors become a FAILED result, never an exception."""
        if self.lease_lost is not None and self.lease_lost.is_set():  # nothing may be written any more
            return ChangeResult(change, ChangeStatus.SKIPPED, message="not started: this run lost its lease")
        try:
            resource_id = ""
            if change.action is Action.CREATE:
                resource_id = self._create(change).resource_id
            elif change.action is Action.ADOPT:
                resource_id = self._adopt(change).resource_id
            elif change.action is Action.UPDATE:
                resource_id = self._update(change).resource_id
            elif change.action is Action.REPLACE:
                assert change.before is not None
                _refuse_protected(change, change.before)  # before anything is created
                resource_id = self._create(change).resource_id  # create before destroy
                self._delete(change, change.before)
            elif change.action is Action.DELETE:
                assert change.before is not None
                self._delete(change, change.before)
                resource_id = change.before.resource_id
            return ChangeResult(change, ChangeStatus.SUCCEEDED, resource_id=resource_id)
        except ProviderError as exc:
            log.warning("change failed", change=change.id, error=str(exc))
            return ChangeResult(
                change, ChangeStatus.FAILED, message=str(exc), permanent=isinstance(exc, PermanentError)
            )
        except LeaseLostError as exc:  # a fenced ledger write was refused: stop starting changes
            if self.lease_lost is not None:
                self.lease_lost.set()
            log.error("ledger write refused", change=change.id, error=str(exc))
            return ChangeResult(change, ChangeStatus.FAILED, message=str(exc))

    # --- the walk ---------------------------------------------------------------------------
    def run_all(self) -> list[ChangeResult]:
        """Walk the DAG: run each change when its dependencies succeeded, skip it when one failed.

        ``reconciler.core.dag.walk`` keeps the walk linear in the number of changes and
        bounds how many calls each cloud sees at once (its provider's ``max_parallel``).
        """
        changes = {c.id: c for c in self.plan.changes}
        limits = {name: max(1, p.config.max_parallel) for name, p in self.providers.items()}
        workers = max(1, min(64, sum(limits.values())))
        # A change naming a provider that was not opened gets a group of its own, and fails
        # like any other crash (as the missing provider's KeyError).
        for change in changes.values():
            limits.setdefault(change.provider, 1)

        def run(cid: str) -> ChangeResult:
            change = changes[cid]
            if change.provider not in self.providers:
                raise KeyError(change.provider)
            if self.cancel is not None and self.cancel():
                message = "not started: the reconciler is shutting down"
                self._record(change, _audit_action(change), Outcome.SKIPPED, error=message)
                return ChangeResult(change, ChangeStatus.SKIPPED, message=message)
            return self.execute_change(change)

        def crashed(cid: str, exc: Exception) -> ChangeResult:
            # A user error (a secret gone since the check, a full disk refusing the ledger write) is
            # the whole run's: raised from here it stops the walk (no change starts after it, those
            # running finish) and surfaces as itself. An intent already written stays open to settle.
            if isinstance(exc, UserError):
                raise exc
            # A bug must not hang the walk; the intent, if one was written, stays open to settle.
            with contextlib.suppress(Exception):  # nor may a failing log call
                log.exception("change crashed", change=cid)
            return ChangeResult(changes[cid], ChangeStatus.FAILED, message=f"internal error: {exc!r}")

        def skip(cid: str, upstream: str) -> ChangeResult:
            change = changes[cid]
            message = f"skipped because {upstream} did not succeed"
            self._record(change, _audit_action(change), Outcome.SKIPPED, error=message)
            return ChangeResult(change, ChangeStatus.SKIPPED, message=message)

        def done(_cid: str, result: ChangeResult) -> None:
            if self.on_result is not None:
                self.on_result(result)

        results = walk(
            changes,
            deps=lambda cid: changes[cid].depends_on,
            run=run,
            succeeded=lambda result: result.status is ChangeStatus.SUCCEEDED,
            skip=skip,
            group=lambda cid: changes[cid].provider,
            limits=limits,
            max_workers=workers,
            on_done=done,
            crashed=crashed,
            thread_name_prefix="apply",
        )
        by_id = dict(zip(changes, results, strict=True))
        return [by_id[c.id] for c in self.plan.changes]


def _refuse_protected(change: Change, server: ObservedServer) -> None:
    """Whatever the plan says, a server carrying the protect mark is never deleted or replaced."""
    if server.protected:
        raise PermanentError(
            f"{change.key} is protected (its server {server.resource_id} carries the protect mark); "
            f"it was not {'replaced' if change.action is Action.REPLACE else 'deleted'} "
            "— apply protect: false first"
        )


def _as_requested(server: ObservedServer, request: UpdateRequest) -> bool:
    """Whether ``server`` already is what ``request`` asks for (nothing to update)."""
    return (server.size, server.flavor, server.tags, server.protected, server.backup_policy) == (
        request.size, request.flavor, request.tags, request.protect, request.backup_policy
    )


def _audit_action(change: Change) -> AuditAction:
    return {
        Action.CREATE: AuditAction.CREATE,
        Action.REPLACE: AuditAction.CREATE,
        Action.UPDATE: AuditAction.UPDATE,
        Action.DELETE: AuditAction.DELETE,
        Action.ADOPT: AuditAction.ADOPT,
    }.get(change.action, AuditAction.UPDATE)
