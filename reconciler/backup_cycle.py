"""backup_cycle: backups as a reconcile of their own — ``backup run`` (and the daemon) and ``backup list``.

These are engine-level functions (the CLI and the daemon are thin shells over them), each
level-triggered: it observes the servers and lists the backups now, decides with the pure
rules of ``reconciler.backup``, and acts through ``backup_apply`` with the audit ledger.

* ``backup_cycle`` takes the backups that are due (or, with ``force``, one now) and prunes
  what retention no longer keeps, then brings the backup-storage ledger in step with the
  backups listed. The daemon calls it every cycle; ``reconciler backup run`` once.
* ``inspect_backups`` is the read-only view behind ``reconciler backup list PATH``.

``restore`` lives in ``backup_restore``.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

from providers.base import Provider
from reconciler import engine
from reconciler.apply import RunContext
from reconciler.backup import BackupKind, BackupPlan, KeyStatus, plan_backups
from reconciler.backup_apply import (
    BackupResult,
    BackupRunner,
    BackupStatus,
    list_snapshots,
    sync_backup_usage,
)
from reconciler.errors import UserError
from reconciler.leases import LeaseKeeper, lease_ttl
from reconciler.model import (
    Capabilities,
    DesiredState,
    ObservedServer,
    Snapshot,
)
from reconciler.plan import Plan
from reconciler.store.base import Lease


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
    providers = engine.open_providers(state.providers, ws)
    store = ws.store()
    own = leases is None
    ttl = lease_ttl(engine.LEASE_TTL_SECONDS)
    held = (
        engine.acquire_leases(store, lease_plan(state, ws), run, ws.clock, ttl_seconds=ttl)
        if own
        else list(leases or ())
    )
    keeper = LeaseKeeper(store, held, ttl_seconds=ttl, clock=ws.clock)
    try:
        keeper.start()
        recovered = engine.settle_intents(store, providers, state.deployment, run, ws.clock)
        observed = engine.observe(providers, state.deployment, ws.retry)
        snapshots, listed = list_snapshots(providers, state.deployment, ws.retry)
        planned = _plan(state, providers, observed, snapshots, ws, force=force, keys=keys)
        runner = BackupRunner(
            deployment=state.deployment,
            providers=providers,
            store=store,
            clock=ws.clock,
            run=run,
            price_list_for=state.price_list_for,
            retry=ws.retry,
        )
        results = runner.run_actions(planned.actions, observed)
        keeper.check()
        if results:
            snapshots, listed = list_snapshots(providers, state.deployment, ws.retry)
        sync_backup_usage(store, state.deployment, snapshots, listed, state.price_list_for, ws.clock.now())
        after = _plan(state, providers, observed, snapshots, ws, keys=keys)
        return BackupReport(
            results=tuple(results), statuses=after.statuses, notes=planned.notes, recovered=tuple(recovered)
        )
    finally:
        keeper.stop()
        for lease in held if own else ():
            store.release_lease(lease)
        engine.close_providers(providers, ws)


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
