"""backup.restore: ``reconciler restore`` — a server for a key, created from one of its backups.

Level-triggered like every command: it observes the key's servers and lists the backups
now, describes what it will do and asks for confirmation, then:

1. creates the restored server through ``Provider.create_from_snapshot`` — a new generation
   of the same key, with CREATE intent and outcome in the audit ledger (the intent names
   the backup) and a usage interval opened;
2. deletes every live server of that key, each after its own final backup when the key is
   under a policy — its member's, else the one its backup-policy mark names — unless
   ``skip_final_backup``; a server whose final backup failed is left alone.

A key whose live server carries the protect mark (or whose member says ``protect: true``)
is never restored over: the restore is refused before anything is created.

A restore that was killed part-way is finished by running it again: the killed run's create
intent is settled by its token like any create's (``run.settle``), and when a live server of
the key is the one an earlier restore from the same backup created (its token is in that
restore's intent) while other servers of the key still run, step 1 is skipped and step 2
deletes the others — never a third copy. (The next ``plan`` shows the second copy too, and
``apply`` removes the older one.)

The restored server has the size its server had when the backup was taken (read back
from the audit ledger's snapshot entry; the template's size when the ledger does not
know), and its spec hash covers that size — so when the template has changed since, the
next plan shows the resize or replacement honestly.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from reconciler.backup.cycle import find_backups
from reconciler.config import check_secrets, render_user_data, resolve_secret
from reconciler.core.audit_detail import CreateIntent, ReplacedByRestore, RestoredFrom
from reconciler.core.backups import BackupAction, BackupKind, final_name
from reconciler.core.clock import isoformat
from reconciler.core.errors import NotFoundError, UserError
from reconciler.core.model import (
    BackupMethod,
    CreateRequest,
    DesiredServer,
    DesiredState,
    ObservedServer,
    Quiesce,
    Size,
    Snapshot,
    compute_spec_hash,
    idempotency_token,
    server_name,
)
from reconciler.core.pricing import usage_interval
from reconciler.core.records import AuditAction, Outcome
from reconciler.run.audit import AuditWriter, RunContext, backup_server_size
from reconciler.run.backups import BackupResult, BackupRunner
from reconciler.run.session import ProviderSession
from reconciler.run.workspace import Workspace
from reconciler.store.base import Store


@dataclass(frozen=True)
class RestoreResult:
    server: ObservedServer | None  # None when cancelled
    replaced: tuple[str, ...] = ()  # resource ids of the servers of the key that were deleted
    backups: tuple[BackupResult, ...] = ()  # final backups of the replaced servers


def _find_backup(session: ProviderSession, want: DesiredServer, backup_id: str, deployment: str) -> Snapshot:
    snapshots, _ = session.list_snapshots(deployment)
    [found] = find_backups(snapshots, [backup_id], deployment)
    if found.key != want.key:
        raise UserError(f"backup {backup_id} is a backup of {found.key}, not of {want.key}")
    if found.provider != want.provider:
        raise UserError(
            f"backup {backup_id} is on provider {found.provider}, but {want.key} now lives on "
            f"{want.provider}; a backup restores on its own provider"
        )
    return found


def describe_restore(
    want: DesiredServer,
    backup: Snapshot,
    size: Size,
    current: Sequence[ObservedServer],
    earlier: ObservedServer | None = None,
) -> str:
    taken = isoformat(backup.created_at)
    what = f"backup {backup.snapshot_id} ({backup.name}, taken {taken}, {backup.size_gb:g} GB)"
    if earlier is not None:
        text = (
            f"Finish restoring {want.key} from {what}: it was already restored as {earlier.resource_id} "
            "by a restore that did not finish."
        )
    else:
        text = f"Restore {want.key} from {what} as a new server of {size} on provider {want.provider}."
    if current:
        ids = ", ".join(s.resource_id for s in current)
        text += f" The current server(s) {ids} of {want.key} will be deleted afterwards."
    if size != want.size:
        text += f" The template now asks for {want.size}: the next apply will change it to that."
    return text


def restore(
    state: DesiredState,
    ws: Workspace,
    run: RunContext,
    key: str,
    backup_id: str,
    *,
    confirm: Callable[[str], bool],
    skip_final_backup: bool = False,
) -> RestoreResult:
    """Restore ``key`` from backup ``backup_id`` (see the module docstring); ``confirm`` gets the
    description of what will happen and returns False to cancel."""
    want = next((s for s in state.servers if s.key == key), None)
    if want is None:
        raise UserError(
            f"{key} is not a server of the desired state in {state.source_path}; restore needs its template"
        )
    check_secrets([want])
    with ProviderSession(ws, state.providers) as session:
        session.hold(run)
        store = ws.store()
        runner = BackupRunner.in_session(session, state.deployment, run, state.price_list_for)
        observed = session.observe(state.deployment)
        session.settle(state.deployment, run, observed)
        current = [s for s in observed if s.key == key and s.owner == state.deployment]
        _refuse_protected(want, current)
        backup = _find_backup(session, want, backup_id, state.deployment)
        size = backup_server_size(store, state.deployment, key, backup_id) or want.size
        earlier = _restored_before(store, state.deployment, key, backup_id, current)
        if earlier is not None:
            current = [s for s in current if s.resource_id != earlier.resource_id]
        if not confirm(describe_restore(want, backup, size, current, earlier)):
            return RestoreResult(server=None)
        writer = AuditWriter(store, ws.clock, state.deployment, run, ws.retry)
        if earlier is not None:
            _bill_from_creation(store, state, earlier, ws.clock.now())
        restored = earlier or _create_restored(state, session, writer, want, backup, size, current)
        finals: list[BackupResult] = []
        replaced: list[str] = []
        for old in current:
            name = want.backup_policy or old.backup_policy  # the mark outlives the YAML
            policy = state.backup_policies.get(name) if name else None
            if name and not skip_final_backup:
                action = BackupAction(
                    kind=BackupKind.FINAL,
                    key=key,
                    provider=old.provider,
                    policy=name,
                    reason=f"final backup before the restore from {backup_id} replaces it",
                    resource_id=old.resource_id,
                    name=final_name(key, old.resource_id),
                    quiesce=policy.quiesce if policy else Quiesce.NONE,
                    method=policy.method if policy else BackupMethod.SNAPSHOT,
                )
                result = runner.take(action, old)
                finals.append(result)
                if not result.snapshot_id:
                    continue  # never delete a server whose final backup failed
            _delete(session, writer, old)
            replaced.append(old.resource_id)
        session.check_leases()
        return RestoreResult(server=restored, replaced=tuple(replaced), backups=tuple(finals))


def _restored_before(
    store: Store, deployment: str, key: str, backup_id: str, current: Sequence[ObservedServer]
) -> ObservedServer | None:
    """The live server an unfinished restore of ``key`` from ``backup_id`` created, if any.

    Unfinished: other servers of the key still run beside it. A lone server restored from
    this backup long ago is not resumed; restoring from it again makes a new one.
    """
    if len(current) < 2:
        return None
    tokens = set()
    for entry in store.recent_audit(deployment, [AuditAction.CREATE], key=key, limit=1000):
        intent = CreateIntent.decode(entry.record.detail) if entry.record.outcome is Outcome.INTENT else None
        if intent is not None and intent.restore_from == backup_id:
            tokens.add(entry.record.token)
    return next((s for s in current if s.token and s.token in tokens), None)


def _bill_from_creation(store: Store, state: DesiredState, server: ObservedServer, now: datetime) -> None:
    """Open ``server``'s usage interval from its creation, unless one is open: a restore
    killed between its create and the ledger write left it unbilled."""
    if any(i.resource_id == server.resource_id and i.provider == server.provider
           for i in store.open_intervals(state.deployment)):
        return
    plist, start = state.price_list_for(server.provider), min(server.created_at or now, now)
    store.open_interval(usage_interval(state.deployment, server, plist, start=start))


def _refuse_protected(want: DesiredServer, current: Sequence[ObservedServer]) -> None:
    """A restore replaces the key's live servers: refused while any of them is protected."""
    held = [s.resource_id for s in current if s.protected or want.protect]
    if held:
        raise UserError(
            f"{want.key} is protected (server {', '.join(held)} carries the protect mark or the member "
            "says protect: true), and a restore would replace it; nothing was restored — set "
            "protect: false for its member and apply, then restore (and set protect: true again)"
        )


def _create_restored(
    state: DesiredState,
    session: ProviderSession,
    writer: AuditWriter,
    want: DesiredServer,
    backup: Snapshot,
    size: Size,
    current: Sequence[ObservedServer],
) -> ObservedServer:
    provider, store, clock = session.providers[want.provider], writer.store, writer.clock
    # Honest marks: the desired spec hash when the disk is the template's; else one covering the
    # restored disk (it differs from the desired one, so the next plan shows the replacement).
    spec_hash = want.spec_hash
    if not spec_hash or size.disk_gb != want.size.disk_gb:
        spec_hash = compute_spec_hash(dataclasses.replace(want, size=size))
    last = store.max_generation(state.deployment, want.key)
    generation = max([s.generation for s in current] + ([last] if last is not None else []), default=-1) + 1
    token = idempotency_token(state.deployment, want.key, spec_hash, generation)
    detail = CreateIntent(
        generation=generation, spec_hash=spec_hash, size=size, restore_from=backup.snapshot_id
    )
    request = CreateRequest(
        owner=state.deployment,
        key=want.key,
        name=server_name(want.key, generation),
        token=token,
        generation=generation,
        spec_hash=spec_hash,
        image=want.image,
        size=size,
        flavor=want.flavor,
        user_data=render_user_data(want, resolve_secret),
        tags=want.tags,
        cluster=want.cluster,
        member=want.member,
        protect=want.protect,
        backup_policy=want.backup_policy or "",
    )
    plist = state.price_list_for(want.provider)
    return writer.mutate(
        want.key,
        provider,
        AuditAction.CREATE,
        lambda: provider.create_from_snapshot(request, backup),
        token=token,
        detail=detail,
        success_detail=RestoredFrom(snapshot_id=backup.snapshot_id),
        ledger=lambda created: store.open_interval(
            usage_interval(state.deployment, created, plist, start=clock.now())
        ),
    )


def _delete(session: ProviderSession, writer: AuditWriter, old: ObservedServer) -> None:
    provider = session.providers[old.provider]

    def delete() -> None:
        with contextlib.suppress(NotFoundError):  # gone already: what delete wanted
            provider.delete(old)

    writer.mutate(
        old.key,
        provider,
        AuditAction.DELETE,
        delete,
        resource_id=old.resource_id,
        detail=ReplacedByRestore(),
        ledger=lambda _: writer.store.close_interval(old.provider, old.resource_id, end=writer.clock.now()),
    )
