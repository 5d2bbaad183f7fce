"""backup.cycle: backups as a reconcile of their own — ``backup run`` (and the daemon) and ``backup list``.

These are engine-level functions (the CLI and the daemon are thin shells over them), each
level-triggered: it observes the servers and lists the backups now, decides with the pure
rules of ``reconciler.core.backups``, and acts through ``run.backups`` with the audit ledger,
all in one ``ProviderSession``.

* ``backup_cycle`` (``backup_cycle_in_session`` in a daemon's session) takes the backups
  that are due (or, with ``force``, one now) and prunes what retention no longer keeps,
  then brings the backup-storage ledger in step with the backups listed. The daemon calls
  it every cycle; ``reconciler backup run`` once.
* ``inspect_backups`` is the read-only view behind ``reconciler backup list PATH``.
* ``delete_backups`` deletes chosen backups by id (``reconciler backup delete``): the way to
  remove backups no policy prunes any more — those of keys removed from the desired state
  (their final backups) or moved out from under a policy.

``restore`` lives in ``backup.restore``.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass

from reconciler.core.backups import BackupAction, BackupKind, BackupPlan, KeyStatus, plan_backups
from reconciler.core.errors import UserError
from reconciler.core.model import DesiredState, ObservedServer, Snapshot
from reconciler.run.audit import RunContext
from reconciler.run.backups import BackupResult, BackupRunner, BackupStatus, sync_backup_usage
from reconciler.run.session import ProviderSession
from reconciler.run.workspace import Workspace


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


def _plan(
    state: DesiredState,
    session: ProviderSession,
    observed: Sequence[ObservedServer],
    snapshots: Sequence[Snapshot],
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
        capabilities=session.capabilities,
        now=session.ws.clock.now(),
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
    ws: Workspace,
    run: RunContext,
    *,
    force: bool = False,
    keys: set[str] | None = None,
) -> BackupReport:
    """``backup run``: ``backup_cycle_in_session`` in a session of its own, holding every provider's lease."""
    with ProviderSession(ws, state.providers) as session:
        session.hold(run)
        return backup_cycle_in_session(state, session, run, force=force, keys=keys)


def backup_cycle_in_session(
    state: DesiredState,
    session: ProviderSession,
    run: RunContext,
    *,
    force: bool = False,
    keys: set[str] | None = None,
    observed: Sequence[ObservedServer] | None = None,
) -> BackupReport:
    """Take due backups and prune what retention no longer keeps; report failures and overdue keys.

    ``force`` takes a backup of every key in scope even when none is due. ``keys`` limits
    the cycle to those keys. The session must hold the leases of the providers it acts on;
    ``observed``: the servers this session listed already (a daemon cycle, after its apply).
    """
    ws, store = session.ws, session.ws.store()
    names = [config.name for config in state.providers]
    runner = BackupRunner.in_session(session, state.deployment, run, state.price_list_for, names)
    if observed is None:
        observed = session.observe(state.deployment, names)
    recovered = session.settle(state.deployment, run, observed)
    observed = runner.restart_left_stopped(observed)
    snapshots, listed = session.list_snapshots(state.deployment, names)
    planned = _plan(state, session, observed, snapshots, force=force, keys=keys)
    results = runner.run_actions(planned.actions, observed)
    session.check_leases()
    if results:
        snapshots, listed = session.list_snapshots(state.deployment, names)
    sync_backup_usage(store, state.deployment, snapshots, listed, state.price_list_for, ws.clock.now())
    after = _plan(state, session, observed, snapshots, keys=keys)
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
    ws: Workspace,
    run: RunContext,
    backup_ids: Sequence[str],
    *,
    confirm: Callable[[Sequence[Snapshot]], bool],
) -> tuple[BackupResult, ...] | None:
    """Delete these backups (intent and outcome in the audit ledger, storage interval closed).

    Every id must name a backup of this deployment the clouds list now; ``confirm`` sees
    them first (None returned when it says no: nothing deleted).
    """
    with ProviderSession(ws, state.providers) as session:
        session.hold(run)
        runner = BackupRunner.in_session(session, state.deployment, run, state.price_list_for)
        session.settle(state.deployment, run)
        snapshots, listed = session.list_snapshots(state.deployment)
        chosen = find_backups(snapshots, backup_ids, state.deployment)
        if not confirm(chosen):
            return None
        results = tuple(
            runner.prune(
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
        snapshots, listed = session.list_snapshots(state.deployment)
        now = ws.clock.now()
        sync_backup_usage(ws.store(), state.deployment, snapshots, listed, state.price_list_for, now)
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
    state: DesiredState, ws: Workspace, *, keys: Collection[str] | None = None
) -> BackupListing:
    """Read-only: observe, list the backups and judge them against the policies."""
    with ProviderSession(ws, state.providers) as session:
        observed = session.observe(state.deployment)
        snapshots, _ = session.list_snapshots(state.deployment)
        planned = _plan(state, session, observed, snapshots, keys=keys)
    shown = [s for s in snapshots if keys is None or s.key in keys]
    shown.sort(key=lambda s: (s.key, s.created_at, s.snapshot_id))
    prunable = frozenset(a.snapshot_id for a in planned.of_kind(BackupKind.PRUNE))
    return BackupListing(tuple(shown), prunable, planned.statuses, planned.notes)
