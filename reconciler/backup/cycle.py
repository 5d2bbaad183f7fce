"""backup_cycle: backups as a reconcile of their own — ``backup run`` (and the daemon) and ``backup list``.

These are engine-level functions (the CLI and the daemon are thin shells over them), each
level-triggered: it observes the servers and lists the backups now, decides with the pure
rules of ``reconciler.core.backups``, and acts through ``backup_apply`` with the audit ledger.

* ``backup_cycle`` takes the backups that are due (or, with ``force``, one now) and prunes
  what retention no longer keeps, then brings the backup-storage ledger in step with the
  backups listed. The daemon calls it every cycle; ``reconciler backup run`` once.
* ``inspect_backups`` is the read-only view behind ``reconciler backup list PATH``.
* ``delete_backups`` deletes chosen backups by id (``reconciler backup delete``): the way to
  remove backups no policy prunes any more — those of keys removed from the desired state
  (their final backups) or moved out from under a policy.

``restore`` lives in ``backup_restore``.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass

from reconciler.core.backups import BackupAction, BackupKind, BackupPlan, KeyStatus, plan_backups
from reconciler.core.errors import UserError
from reconciler.core.model import (
    Capabilities,
    DesiredState,
    ObservedServer,
    Snapshot,
)
from reconciler.core.plan import Plan
from reconciler.core.provider import Provider
from reconciler.core.records import Lease
from reconciler.run import engine
from reconciler.run.backups import (
    BackupResult,
    BackupRunner,
    BackupStatus,
    list_snapshots,
    sync_backup_usage,
)
from reconciler.run.executor import RunContext
from reconciler.run.leases import LeaseKeeper, lease_ttl


@dataclass(frozen=True)
class BackupReport:
    """What one backup cycle did, what failed, and where every key stands afterwards."""

    results: tuple[BackupResult, ...] = ()
    statuses: tuple[KeyStatus, ...] = ()  # after the cycle
    notes: tuple[str, ...] = ()
    recovered: tuple[str, ...] = ()

    @property
    def failures(self) -> tuple[BackupResult, ...]:
        return tuple(r for r in self.results if r.status is BackupStatus.FAILED)

    @property
    def overdue(self) -> tuple[KeyStatus, ...]:
        """Keys whose newest backup is older than their policy's ``max_age_hours`` (alert on these)."""
        return tuple(s for s in self.statuses if s.overdue)

    @property
    def ok(self) -> bool:
        return not self.failures

    def count(self, kind: BackupKind, status: BackupStatus = BackupStatus.SUCCEEDED) -> int:
        return sum(1 for r in self.results if r.action.kind is kind and r.status is status)


def lease_plan(state: DesiredState, ws: engine.Workspace) -> Plan:
    """An empty plan naming the state's providers: what ``engine.acquire_leases`` takes."""
    return Plan(
        deployment=state.deployment,
        created_at=ws.clock.now(),
        changes=(),
        providers=state.providers,
        basis=(),
    )


def _capabilities(providers: Mapping[str, Provider]) -> dict[str, Capabilities]:
    return {name: type(p).capabilities for name, p in providers.items()}


def _plan(
    state: DesiredState,
    providers: Mapping[str, Provider],
    observed: Sequence[ObservedServer],
    snapshots: Sequence[Snapshot],
    ws: engine.Workspace,
    *,
    force: bool = False,
    keys: Collection[str] | None = None,
) -> BackupPlan:
    return plan_backups(
        deployment=state.deployment,
        declared=state.servers,
        desired=state.servers,
        observed=observed,
        snapshots=snapshots,
        changes=(),
        policies=state.backup_policies,
        capabilities=_capabilities(providers),
        now=ws.clock.now(),
        price_list_for=state.price_list_for,
        force=force,
        keys=keys,
    )


def check_keys(state: DesiredState, keys: Collection[str]) -> None:
    """Every ``--key`` must name a desired server under a backup policy."""
    covered = {s.key for s in state.servers if s.backup_policy}
    wrong = sorted(set(keys) - covered)
    if wrong:
        raise UserError(
            f"{', '.join(wrong)}: not a server under a backup policy in {state.source_path}; "
            f"keys with a policy: {', '.join(sorted(covered)) or '(none)'}"
        )


class BackupSession:
    """One backup operation's providers (opened) and provider leases (held and renewed).

    ``leases`` the caller already holds (a daemon) are used as they are; otherwise the
    session takes its own for the state's providers and releases them at the end.
    """

    def __init__(self, state: DesiredState, ws: engine.Workspace, run: RunContext,
                 leases: Sequence[Lease] | None) -> None:
        self.providers = engine.open_providers(state.providers, ws)
        self.store = ws.store()
        self.own = leases is None
        ttl = lease_ttl(engine.LEASE_TTL_SECONDS)
        try:
            self.held = (
                engine.acquire_leases(self.store, lease_plan(state, ws), run, ws.clock, ttl_seconds=ttl)
                if self.own
                else list(leases or ())
            )
        except BaseException:
            engine.close_providers(self.providers, ws)
            raise
        self.keeper = LeaseKeeper(self.store, self.held, ttl_seconds=ttl, clock=ws.clock)
        self.ws = ws
        self.runner = BackupRunner(
            deployment=state.deployment,
            providers=self.providers,
            store=self.store,
            clock=ws.clock,
            run=run,
            price_list_for=state.price_list_for,
            retry=ws.retry,
        )

    def __enter__(self) -> BackupSession:
        self.keeper.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.keeper.stop()
        for lease in self.held if self.own else ():
            self.store.release_lease(lease)
        engine.close_providers(self.providers, self.ws)


def backup_cycle(
    state: DesiredState,
    ws: engine.Workspace,
    run: RunContext,
    *,
    force: bool = False,
    keys: set[str] | None = None,
    leases: Sequence[Lease] | None = None,
) -> BackupReport:
    """Take due backups and prune what retention no longer keeps; report failures and overdue keys.

    ``force`` takes a backup of every key in scope even when none is due. ``keys`` limits
    the cycle to those keys. ``leases``: provider leases the caller already holds (a daemon);
    otherwise the cycle takes its own for the state's providers and releases them after.
    """
    with BackupSession(state, ws, run, leases) as op:
        providers, store = op.providers, op.store
        recovered = engine.settle_intents(store, providers, state.deployment, run, ws.clock)
        observed = engine.observe(providers, state.deployment, ws.retry)
        snapshots, listed = list_snapshots(providers, state.deployment, ws.retry)
        planned = _plan(state, providers, observed, snapshots, ws, force=force, keys=keys)
        results = op.runner.run_actions(planned.actions, observed)
        op.keeper.check()
        if results:
            snapshots, listed = list_snapshots(providers, state.deployment, ws.retry)
        sync_backup_usage(store, state.deployment, snapshots, listed, state.price_list_for, ws.clock.now())
        after = _plan(state, providers, observed, snapshots, ws, keys=keys)
        return BackupReport(
            results=tuple(results), statuses=after.statuses, notes=planned.notes, recovered=tuple(recovered)
        )


def find_backups(snapshots: Sequence[Snapshot], backup_ids: Sequence[str], deployment: str) -> list[Snapshot]:
    """The listed backups with these ids, in the order asked; a UserError names any not found."""
    by_id = {s.snapshot_id: s for s in snapshots}
    missing = [b for b in backup_ids if b not in by_id]
    if missing:
        raise UserError(
            f"no backup {', '.join(missing)} of deployment {deployment} on its providers; "
            "see `reconciler backup list PATH` for the backups there are"
        )
    return [by_id[b] for b in dict.fromkeys(backup_ids)]


def delete_backups(
    state: DesiredState,
    ws: engine.Workspace,
    run: RunContext,
    backup_ids: Sequence[str],
    *,
    confirm: Callable[[Sequence[Snapshot]], bool],
) -> tuple[BackupResult, ...] | None:
    """Delete these backups (intent and outcome in the audit ledger, storage interval closed).

    Every id must name a backup of this deployment the clouds list now; ``confirm`` sees
    them first (None returned when it says no: nothing deleted).
    """
    with BackupSession(state, ws, run, None) as op:
        engine.settle_intents(op.store, op.providers, state.deployment, run, ws.clock)
        snapshots, listed = list_snapshots(op.providers, state.deployment, ws.retry)
        chosen = find_backups(snapshots, backup_ids, state.deployment)
        if not confirm(chosen):
            return None
        results = tuple(
            op.runner.prune(
                BackupAction(
                    kind=BackupKind.PRUNE,
                    key=snap.key,
                    provider=snap.provider,
                    policy=snap.policy or "",
                    reason="deleted on request (reconciler backup delete)",
                    resource_id=snap.resource_id,
                    name=snap.name,
                    snapshot_id=snap.snapshot_id,
                    taken_at=snap.created_at,
                    size_gb=snap.size_gb,
                )
            )
            for snap in chosen
        )
        snapshots, listed = list_snapshots(op.providers, state.deployment, ws.retry)
        sync_backup_usage(op.store, state.deployment, snapshots, listed, state.price_list_for, ws.clock.now())
        return results


# --- backup list ------------------------------------------------------------------------------
@dataclass(frozen=True)
class BackupListing:
    """Every owned backup listed now, with what the next run would prune, and each key's status."""

    snapshots: tuple[Snapshot, ...]
    prunable: frozenset[str]  # snapshot ids retention no longer keeps
    statuses: tuple[KeyStatus, ...]
    notes: tuple[str, ...]


def inspect_backups(
    state: DesiredState, ws: engine.Workspace, *, keys: Collection[str] | None = None
) -> BackupListing:
    """Read-only: observe, list the backups and judge them against the policies."""
    providers = engine.open_providers(state.providers, ws)
    try:
        observed = engine.observe(providers, state.deployment, ws.retry)
        snapshots, _ = list_snapshots(providers, state.deployment, ws.retry)
        planned = _plan(state, providers, observed, snapshots, ws, keys=keys)
    finally:
        engine.close_providers(providers, ws)
    shown = [s for s in snapshots if keys is None or s.key in keys]
    shown.sort(key=lambda s: (s.key, s.created_at, s.snapshot_id))
    prunable = frozenset(a.snapshot_id for a in planned.of_kind(BackupKind.PRUNE))
    return BackupListing(tuple(shown), prunable, planned.statuses, planned.notes)
