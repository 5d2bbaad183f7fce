"""run.backups: carries out BackupActions through the providers' snapshot calls, with both ledgers.

Every mutating call is bracketed in the audit ledger like a server change: an *intent*
before the call, the outcome (settling it) after. For one backup:

1. with ``quiesce: shutdown`` and a running server: stop it (STOP intent and outcome);
2. SNAPSHOT intent → ``provider.snapshot`` (``TransientError`` retried with backoff) →
   outcome, in one transaction with the opening of the backup's storage interval; the
   outcome's detail records the server's size at that moment (a restore reads it back);
3. start the server again (START intent and outcome) — except for a final backup, whose
   server is about to be deleted.

A prune is a DELETE_SNAPSHOT intent → ``provider.delete_snapshot`` → outcome, with the
storage interval closed; a backup already gone counts as pruned. A key's prunes run only
after its new backup succeeded: when it failed, they are recorded as skipped, so a failing
backup never costs an older one. Failures are returned (``BackupResult``), never raised —
except from the final-backup hook, which raises so the executor does not delete a server
whose final backup failed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import threading
from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import TypeVar

from reconciler.core.audit_detail import (
    AuditDetail,
    PruneDetail,
    QuiesceDetail,
    RestartedAfterBackup,
    SnapshotDetail,
)
from reconciler.core.backups import BackupAction, BackupKind
from reconciler.core.changes import Change
from reconciler.core.clock import Clock
from reconciler.core.errors import NotFoundError, PermanentError, ProviderError
from reconciler.core.model import ObservedServer, PriceList, Quiesce, ServerStatus, Snapshot, SnapshotRequest
from reconciler.core.provider import Provider
from reconciler.core.records import AuditAction, AuditEntry, BackupInterval, Outcome
from reconciler.core.retry import RetryPolicy, call_with_retry
from reconciler.run.audit import AuditWriter, RunContext
from reconciler.run.logger import get_logger
from reconciler.run.session import ProviderSession
from reconciler.store.base import Store

log = get_logger("reconciler.run.backups")
T = TypeVar("T")
PriceListFor = Callable[[str], PriceList | None]


class BackupStatus(StrEnum):
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"


@dataclass(frozen=True)
class BackupResult:
    """What became of one BackupAction; ``snapshot_id`` is set when a backup was taken."""

    action: BackupAction
    status: BackupStatus
    message: str = ""
    snapshot_id: str = ""
    size_gb: float = 0.0


def describe(result: BackupResult) -> str:
    """One line for people: ``+ shop/db/0 backup shop-db-0-20261103T0200Z succeeded (snap-…, 57.3 GB)``."""
    action = result.action
    what = {
        BackupKind.TAKE: f"backup {action.name}",
        BackupKind.FINAL: f"final backup {action.name}",
        BackupKind.PRUNE: f"prune {action.snapshot_id} ({action.name})",
    }[action.kind]
    line = f"{action.kind.symbol} {action.key} {what} {result.status.value}"
    if result.snapshot_id:
        line += f" ({result.snapshot_id}, {result.size_gb:g} GB)"
    return line + (f": {result.message}" if result.message else "")


_POWER_READ = 10_000  # the newest stop/start entries read to find servers a backup left stopped


def left_stopped_by_backups(
    store: Store, deployment: str, observed: Sequence[ObservedServer]
) -> list[ObservedServer]:
    """Servers observed stopped now whose last stop by the reconciler was a backup's quiesce,
    with no start recorded after it: a run was killed (or failed) between the stop and the start."""
    stopped = {(s.provider, s.resource_id): s for s in observed if s.status is ServerStatus.STOPPED}
    if not stopped:
        return []
    decided: dict[tuple[str, str], bool] = {}
    for entry in store.recent_audit(deployment, [AuditAction.STOP, AuditAction.START], limit=_POWER_READ):
        record = entry.record
        ident = (record.provider, record.resource_id)
        if ident not in stopped or ident in decided:
            continue
        if record.action is AuditAction.START and record.outcome is Outcome.SUCCEEDED:
            decided[ident] = False
        elif record.action is AuditAction.STOP and QuiesceDetail.decode(record.detail) is not None:
            decided[ident] = True
    return [server for ident, server in stopped.items() if decided.get(ident)]


def _price(price_list_for: PriceListFor, provider: str) -> PriceList | None:
    try:
        return price_list_for(provider)
    except KeyError:
        return None


def backup_interval(
    deployment: str, snapshot: Snapshot, policy: str, start: datetime, price_list_for: PriceListFor
) -> BackupInterval:
    """The storage interval a backup opens, priced by its provider's ``backup_gb_month``."""
    plist = _price(price_list_for, snapshot.provider)
    return BackupInterval(
        deployment=deployment,
        provider=snapshot.provider,
        snapshot_id=snapshot.snapshot_id,
        key=snapshot.key,
        policy=policy,
        size_gb=snapshot.size_gb,
        start=start,
        gb_month_rate=plist.backup_gb_month if plist is not None else None,
        currency=plist.currency if plist is not None else "",
        price_list=plist.name if plist is not None else "",
    )


def sync_backup_usage(
    store: Store,
    deployment: str,
    snapshots: Sequence[Snapshot],
    listed: Collection[str],
    price_list_for: PriceListFor,
    now: datetime,
) -> None:
    """Make the backup-storage ledger agree with the backups listed now (level-triggered)."""
    open_now = {
        (i.provider, i.snapshot_id): i
        for i in store.backup_intervals(start=now, deployment=deployment)
        if i.end is None
    }
    seen = {(s.provider, s.snapshot_id): s for s in snapshots if s.owner == deployment}
    for ident, snap in seen.items():
        if ident not in open_now:
            start = min(snap.created_at, now)
            store.open_backup_interval(
                backup_interval(deployment, snap, snap.policy or "", start, price_list_for)
            )
    for ident, interval in open_now.items():
        if ident not in seen and interval.provider in listed:
            store.close_backup_interval(interval.provider, interval.snapshot_id, end=now)


def _log_retry(provider: Provider, call: str) -> Callable[[int, Exception, float], None]:
    def retried(attempt: int, exc: Exception, wait_s: float) -> None:
        log.info("retrying", provider=provider.name, call=call, attempt=attempt, error=str(exc))

    return retried


@dataclass
class BackupRunner:
    """Takes and prunes backups for one deployment and run (thread-safe; results accumulate)."""

    deployment: str
    providers: Mapping[str, Provider]
    store: Store
    clock: Clock
    run: RunContext
    price_list_for: PriceListFor
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    results: list[BackupResult] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _gates: dict[str, threading.BoundedSemaphore] = field(default_factory=dict)

    @classmethod
    def in_session(
        cls,
        session: ProviderSession,
        deployment: str,
        run: RunContext,
        price_list_for: PriceListFor,
        providers: Iterable[str] | None = None,
    ) -> BackupRunner:
        """A runner over the session's providers (all, or those named) and its store."""
        return cls(
            deployment=deployment,
            providers=session.providers if providers is None else session.only(providers),
            store=session.ws.store(),
            clock=session.ws.clock,
            run=run,
            price_list_for=price_list_for,
            retry=session.ws.retry,
        )

    def __post_init__(self) -> None:
        self._audit = AuditWriter(self.store, self.clock, self.deployment, self.run, self.retry)
        self._gates = {
            name: threading.BoundedSemaphore(max(1, p.config.max_parallel))
            for name, p in self.providers.items()
        }

    # --- helpers ---------------------------------------------------------------------------
    def _record(
        self, action: BackupAction, audit: AuditAction, outcome: Outcome, *, resource_id: str = "",
        token: str = "", detail: AuditDetail | str = "", error: str = "", intent_seq: int | None = None,
    ) -> AuditEntry:
        return self._audit.record(
            action.key, action.provider, audit, outcome, resource_id=resource_id, token=token,
            detail=detail, error=error, intent_seq=intent_seq,
        )

    def _gated(self, provider: Provider, fn: Callable[[], T]) -> Callable[[], T]:
        """``fn`` run within the provider's parallelism limit (each attempt on its own)."""

        def call() -> T:
            with self._gates[provider.name]:
                return fn()

        return call

    def _keep(self, result: BackupResult) -> BackupResult:
        with self._lock:
            self.results.append(result)
        if result.status is not BackupStatus.SUCCEEDED:
            log.warning("backup action did not succeed", action=result.action.id, message=result.message)
        return result

    def _power(self, action: BackupAction, server: ObservedServer, *, start: bool) -> ObservedServer:
        provider = self.providers[server.provider]
        call = provider.start if start else provider.stop
        return self._audit.mutate(
            action.key,
            provider,
            AuditAction.START if start else AuditAction.STOP,
            self._gated(provider, lambda: call(server)),
            resource_id=server.resource_id,
            detail=QuiesceDetail(backup=action.name, quiesce=Quiesce.SHUTDOWN),
        )

    def restart(self, server: ObservedServer) -> ObservedServer:
        """Start a server a backup stopped and never started again (a run was killed in between);
        on failure the server is returned as it was (the failure is in the audit ledger)."""
        provider = self.providers[server.provider]
        try:
            return self._audit.mutate(
                server.key,
                provider,
                AuditAction.START,
                self._gated(provider, lambda: provider.start(server)),
                resource_id=server.resource_id,
                detail=RestartedAfterBackup(),
            )
        except ProviderError as exc:
            log.warning("could not start a server a backup left stopped", key=server.key, error=str(exc))
            return server

    def restart_left_stopped(
        self, observed: Sequence[ObservedServer], *, leave: Collection[str] = ()
    ) -> list[ObservedServer]:
        """``observed`` with every server a backup left stopped started again (keys in ``leave``,
        which a plan changes anyway, are left to it)."""
        left = left_stopped_by_backups(self.store, self.deployment, observed)
        chosen = {s.resource_id for s in left if s.key not in leave and s.provider in self.providers}
        return [self.restart(s) if s.resource_id in chosen else s for s in observed]

    # --- one backup ------------------------------------------------------------------------
    def take(self, action: BackupAction, server: ObservedServer) -> BackupResult:
        """Take one backup (quiescing as the policy says); failures are returned, not raised."""
        provider = self.providers[server.provider]
        quiesce = action.quiesce == Quiesce.SHUTDOWN and server.status is ServerStatus.RUNNING
        current = server
        if quiesce:
            try:
                current = self._power(action, server, start=False)
            except ProviderError as exc:
                return self._keep(
                    BackupResult(action, BackupStatus.FAILED, f"could not stop the server: {exc}")
                )
        detail = SnapshotDetail(
            kind=action.kind,
            name=action.name,
            policy=action.policy,
            method=action.method,
            server=server.resource_id,
            server_size=server.size,
            image=server.image,
        )
        intent = self._record(
            action,
            AuditAction.SNAPSHOT,
            Outcome.INTENT,
            resource_id=server.resource_id,
            token=action.name,
            detail=detail,
        )
        request = SnapshotRequest(name=action.name, policy=action.policy, method=action.method)
        snapshot: Snapshot | None = None
        message = ""
        try:
            take = self._gated(provider, lambda: provider.snapshot(current, request))
            snapshot = call_with_retry(take, self.retry, on_retry=_log_retry(provider, "snapshot"))
        except ProviderError as exc:
            message = f"snapshot failed: {exc}"
            self._record(
                action,
                AuditAction.SNAPSHOT,
                Outcome.FAILED,
                resource_id=server.resource_id,
                token=action.name,
                error=str(exc),
                intent_seq=intent.seq,
            )
        else:
            with self.store.transaction():
                self._record(
                    action,
                    AuditAction.SNAPSHOT,
                    Outcome.SUCCEEDED,
                    resource_id=snapshot.snapshot_id,
                    token=action.name,
                    detail=dataclasses.replace(detail, size_gb=snapshot.size_gb),
                    intent_seq=intent.seq,
                )
                self.store.open_backup_interval(
                    backup_interval(
                        self.deployment, snapshot, action.policy, snapshot.created_at, self.price_list_for
                    )
                )
        if quiesce and (action.kind is BackupKind.TAKE or snapshot is None):  # a final one stays down
            try:
                self._power(action, current, start=True)
            except ProviderError as exc:
                message = (message + "; " if message else "") + f"the server did not start again: {exc}"
        if snapshot is None or message:
            return self._keep(
                BackupResult(
                    action,
                    BackupStatus.FAILED,
                    message,
                    snapshot_id=snapshot.snapshot_id if snapshot else "",
                    size_gb=snapshot.size_gb if snapshot else 0.0,
                )
            )
        return self._keep(
            BackupResult(
                action, BackupStatus.SUCCEEDED, snapshot_id=snapshot.snapshot_id, size_gb=snapshot.size_gb
            )
        )

    def prune(self, action: BackupAction) -> BackupResult:
        """Delete one backup retention no longer keeps; a backup already gone counts as pruned."""
        provider = self.providers.get(action.provider)
        if provider is None:
            return self._keep(
                BackupResult(action, BackupStatus.FAILED, f"provider {action.provider} is not declared")
            )
        detail = PruneDetail(
            name=action.name, taken_at=action.taken_at, size_gb=action.size_gb, reason=action.reason
        )
        snapshot = action.snapshot(self.deployment)

        def delete() -> None:
            with contextlib.suppress(NotFoundError):  # gone already: what the prune wanted
                provider.delete_snapshot(snapshot)

        try:
            self._audit.mutate(
                action.key,
                provider,
                AuditAction.DELETE_SNAPSHOT,
                self._gated(provider, delete),
                resource_id=action.snapshot_id,
                detail=detail,
                ledger=lambda _: self.store.close_backup_interval(
                    action.provider, action.snapshot_id, end=self.clock.now()
                ),
            )
        except ProviderError as exc:
            return self._keep(BackupResult(action, BackupStatus.FAILED, f"prune failed: {exc}"))
        return self._keep(BackupResult(action, BackupStatus.SUCCEEDED))

    def skip(self, action: BackupAction, why: str) -> BackupResult:
        audit = AuditAction.DELETE_SNAPSHOT if action.kind is BackupKind.PRUNE else AuditAction.SNAPSHOT
        self._record(
            action, audit, Outcome.SKIPPED, resource_id=action.snapshot_id or action.resource_id, error=why
        )
        return self._keep(BackupResult(action, BackupStatus.SKIPPED, why))

    # --- many --------------------------------------------------------------------------------
    def _one_key(
        self, actions: Sequence[BackupAction], servers: Mapping[tuple[str, str], ObservedServer]
    ) -> None:
        failed = ""
        for action in actions:
            if action.kind is not BackupKind.TAKE:
                continue
            server = servers.get((action.provider, action.resource_id))
            if server is None:
                failed = f"server {action.resource_id} is no longer observed"
                self.skip(action, failed)
                continue
            result = self.take(action, server)
            if not result.snapshot_id:
                failed = result.message
        for action in actions:
            if action.kind is BackupKind.PRUNE:
                if failed:
                    self.skip(action, f"not pruned: the new backup of {action.key} failed ({failed})")
                else:
                    self.prune(action)

    def run_actions(
        self, actions: Sequence[BackupAction], servers: Sequence[ObservedServer]
    ) -> list[BackupResult]:
        """Scheduled takes, then prunes, per key (keys in parallel, bounded per provider).

        Final backups are not run here: they run just before their delete (``final_hook``).
        Returns the results of these actions.
        """
        by_key: dict[str, list[BackupAction]] = defaultdict(list)
        for action in actions:
            if action.kind is not BackupKind.FINAL:
                by_key[action.key].append(action)
        if not by_key:
            return []
        index = {(s.provider, s.resource_id): s for s in servers}
        before = len(self.results)
        workers = max(1, min(32, sum(max(1, p.config.max_parallel) for p in self.providers.values())))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="backup") as pool:
            for future in [pool.submit(self._one_key, by_key[key], index) for key in sorted(by_key)]:
                future.result()
        with self._lock:
            return self.results[before:]

    def final_hook(self, actions: Sequence[BackupAction]) -> Callable[[Change, ObservedServer], None]:
        """For ``Executor.before_delete``: take a change's final backup, raising when it fails."""
        finals = {(a.change_id, a.resource_id): a for a in actions if a.kind is BackupKind.FINAL}

        def before_delete(change: Change, server: ObservedServer) -> None:
            action = finals.get((change.id, server.resource_id))
            if action is None:
                return
            result = self.take(action, server)
            if not result.snapshot_id:
                raise PermanentError(
                    f"final backup of {change.key} failed ({result.message}); {server.resource_id} was not "
                    "deleted — fix the cause, or apply with --skip-final-backup"
                )

        return before_delete
