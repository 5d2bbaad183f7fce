"""core.backups: which servers a BackupPolicy covers, when their backups are due, and what retention keeps.

Pure logic — no provider, no store, no clock of its own: desired and observed servers, the
backups the clouds list and ``now`` go in; a frozen ``BackupPlan`` of ``BackupAction``
values comes out. The plan carries it (``Plan.backups``), ``backup_apply`` carries it out.

The rules, precisely:

* **Coverage.** A key is under the policy its desired server names (``backup_policy``). A
  server whose key no longer names one (its member, or its ``backup_policy``, was removed)
  is under the policy its backup-policy mark names — written on the server at create and
  on every update, so a removed YAML still knows it; a policy that is no longer declared
  gives a final backup with the default method and no quiesce. A server without the mark
  (made before marks were written) is under the policy its key's newest backup names, if
  that policy is still declared.
* **Due.** A scheduled backup of a key is due when a tick of the policy's cron schedule
  (five fields, UTC) lies in ``(newest, now]``; ``newest`` is when the key's newest backup
  was taken or, with none yet, when its server was created (a new server is first backed up
  at the first tick after its creation). However many ticks were missed, one backup is
  taken, named after the latest tick (``shop-db-0-20261103T0200Z``), so a retried or
  concurrent run for the same tick asks for the same backup. ``force`` takes one now,
  due or not (``shop-db-0-manual-20261103T101500Z``).
* **Retention** (grandfather-father-son), over a key's backups that are ``available`` and
  carry a policy mark, newest first (ties broken by backup id):

  - ``keep_last N`` keeps the N newest;
  - ``keep_daily N`` keeps, for each of the N most recent UTC calendar days that have a
    backup, the newest backup of that day;
  - ``keep_weekly N`` the same per ISO week (Monday to Sunday, UTC);
  - ``keep_monthly N`` the same per calendar month.

  A backup is kept when any rule keeps it; every other one is pruned. A backup being taken
  in the same plan counts as the newest one (it is taken before anything is pruned, and
  if it fails nothing of that key is pruned). Backups of keys that are no longer desired
  are never pruned automatically; backups in another status are neither counted nor pruned.
* **Final backup.** Before a planned delete or replace of a server under a policy, its
  backup is taken (``shop-db-0-final-<resource id>``), unless the plan was made with
  ``--skip-final-backup``; a failed final backup stops that delete.
* **Cost.** Each action carries the storage cost it adds per 30-day month: its size in GB ×
  the provider's PriceList ``backup_gb_month`` (negative for a prune). A backup not yet
  taken is estimated from the key's newest backup, else from the server's disk size.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Collection, Hashable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum

from reconciler.core.changes import Change
from reconciler.core.clock import isoformat
from reconciler.core.cron import latest_tick, next_tick
from reconciler.core.model import (
    Action,
    BackupMethod,
    BackupPolicy,
    DesiredServer,
    ObservedServer,
    PriceList,
    Quiesce,
    Retention,
    ServerStatus,
    Snapshot,
)
from reconciler.core.provider import Capabilities

AVAILABLE = "available"
_TICK_FORMAT = "%Y%m%dT%H%MZ"
_MOMENT_FORMAT = "%Y%m%dT%H%M%SZ"


class BackupKind(StrEnum):
    """What a backup action does (closed set)."""

    TAKE = "take"  # a scheduled (or forced) backup
    FINAL = "final"  # a backup before a planned delete or replace
    PRUNE = "prune"  # delete a backup retention no longer keeps

    @property
    def symbol(self) -> str:
        return "-" if self is BackupKind.PRUNE else "+"


@dataclass(frozen=True)
class BackupAction:
    """One backup to take or prune. ``reason`` is for people; apply never decides on it."""

    kind: BackupKind
    key: str
    provider: str
    policy: str
    reason: str
    resource_id: str = ""  # take/final: the server backed up; prune: the server the backup came from
    name: str = ""  # take/final: the name to give the backup; prune: the backup's name
    snapshot_id: str = ""  # prune: the backup to delete
    taken_at: datetime | None = None  # prune: when it was taken; take: the tick it is due for
    size_gb: float = 0.0  # prune: its size; take/final: an estimate (see ``estimated``)
    estimated: bool = False
    quiesce: Quiesce = Quiesce.NONE  # take/final: SHUTDOWN stops the server around the snapshot
    method: BackupMethod = BackupMethod.SNAPSHOT  # take/final
    change_id: str = ""  # final: the delete or replace it must precede
    monthly_cost: Decimal | None = None  # storage cost added per 30-day month (negative frees)
    currency: str = ""

    @property
    def id(self) -> str:
        return f"{self.kind.value}:{self.key}#{self.snapshot_id or self.resource_id}"

    def snapshot(self, owner: str) -> Snapshot:
        """The backup a prune deletes, as the provider contract names it."""
        return Snapshot(
            provider=self.provider,
            snapshot_id=self.snapshot_id,
            resource_id=self.resource_id,
            key=self.key,
            owner=owner,
            name=self.name,
            created_at=self.taken_at or datetime(1970, 1, 1, tzinfo=UTC),
            size_gb=self.size_gb,
            policy=self.policy,
        )


@dataclass(frozen=True)
class KeyStatus:
    """Where one key under a policy stands: its newest backup, the next tick, whether it is overdue."""

    key: str
    policy: str
    provider: str
    backups: int
    newest_at: datetime | None
    next_due: datetime | None
    age_hours: float | None  # since the newest backup (or the server's creation when none)
    max_age_hours: float | None
    due: bool = False  # a scheduled backup is due now (``next_due`` is the tick it is due for)

    @property
    def overdue(self) -> bool:
        return (
            self.max_age_hours is not None
            and self.age_hours is not None
            and (self.age_hours > self.max_age_hours)
        )


@dataclass(frozen=True)
class BackupPlan:
    """What backups a plan or a backup run takes and prunes, and what it notices."""

    actions: tuple[BackupAction, ...] = ()
    statuses: tuple[KeyStatus, ...] = ()
    notes: tuple[str, ...] = ()

    def of_kind(self, kind: BackupKind) -> tuple[BackupAction, ...]:
        return tuple(a for a in self.actions if a.kind is kind)

    @property
    def overdue(self) -> tuple[KeyStatus, ...]:
        return tuple(s for s in self.statuses if s.overdue)


# --- schedule -------------------------------------------------------------------------------
def due_tick(schedule: str, newest: datetime | None, now: datetime) -> datetime | None:
    """The tick a backup is due for (the latest one in ``(newest, now]``), or None when none is due."""
    if newest is None:
        return None
    tick = latest_tick(schedule, now)
    return tick if tick > newest else None


def backup_name(key: str, label: str) -> str:
    """``shop/db/0`` + ``20261103T0200Z`` → ``shop-db-0-20261103T0200Z``."""
    return f"{key.replace('/', '-')}-{label}"


def scheduled_name(key: str, tick: datetime) -> str:
    return backup_name(key, tick.astimezone(UTC).strftime(_TICK_FORMAT))


def manual_name(key: str, now: datetime) -> str:
    return backup_name(key, "manual-" + now.astimezone(UTC).strftime(_MOMENT_FORMAT))


def final_name(key: str, resource_id: str) -> str:
    return backup_name(key, f"final-{resource_id}")


# --- retention ------------------------------------------------------------------------------
def _newest_per_bucket(
    ordered: Sequence[tuple[str, datetime]], count: int, bucket: Callable[[datetime], Hashable]
) -> set[str]:
    """For the ``count`` most recent buckets with backups, the newest backup of each."""
    kept: set[str] = set()
    seen: set[Hashable] = set()
    for ident, moment in ordered:
        if len(seen) >= count:
            break
        slot = bucket(moment.astimezone(UTC))
        if slot not in seen:
            seen.add(slot)
            kept.add(ident)
    return kept


def retained(items: Sequence[tuple[str, datetime]], retention: Retention) -> frozenset[str]:
    """The ids (of ``(id, taken_at)`` pairs) the retention rules keep; see the module docstring."""
    ordered = sorted(items, key=lambda item: (item[1], item[0]), reverse=True)
    kept = {ident for ident, _ in ordered[: retention.keep_last]}
    kept |= _newest_per_bucket(ordered, retention.keep_daily, lambda m: m.date())
    kept |= _newest_per_bucket(ordered, retention.keep_weekly, lambda m: m.isocalendar()[:2])
    kept |= _newest_per_bucket(ordered, retention.keep_monthly, lambda m: (m.year, m.month))
    return frozenset(kept)


def describe_retention(retention: Retention) -> str:
    parts = [
        f"{name} {value}"
        for name, value in (
            ("keep_last", retention.keep_last),
            ("keep_daily", retention.keep_daily),
            ("keep_weekly", retention.keep_weekly),
            ("keep_monthly", retention.keep_monthly),
        )
        if value
    ]
    return ", ".join(parts) or "nothing"


# --- planning -------------------------------------------------------------------------------
def storage_cost(
    price_list_for: Callable[[str], PriceList | None], provider: str, size_gb: float, sign: int = 1
) -> tuple[Decimal | None, str]:
    """Monthly storage cost of ``size_gb`` on ``provider`` (``backup_gb_month``), and its currency."""
    try:
        plist = price_list_for(provider)
    except KeyError:
        plist = None
    if plist is None or plist.backup_gb_month == 0:
        return None, ""
    return sign * plist.backup_gb_month * Decimal(str(size_gb)), plist.currency


def _pick_server(servers: Sequence[ObservedServer], provider: str) -> ObservedServer | None:
    """The server a scheduled backup of a key is taken from: running first, newest generation."""
    states = (ServerStatus.RUNNING, ServerStatus.STOPPED)
    usable = [s for s in servers if s.provider == provider and s.status in states]
    usable.sort(key=lambda s: (s.status is not ServerStatus.RUNNING, -s.generation, s.resource_id))
    return usable[0] if usable else None


def _counted(snapshots: Sequence[Snapshot]) -> list[Snapshot]:
    return [s for s in snapshots if s.status == AVAILABLE and s.policy is not None]


@dataclass(frozen=True)
class _Context:
    """What planning backups needs beside the servers and policies: the deployment, now, the prices."""

    deployment: str
    now: datetime
    price_list_for: Callable[[str], PriceList | None]

    def cost(self, provider: str, size_gb: float, sign: int = 1) -> tuple[Decimal | None, str]:
        return storage_cost(self.price_list_for, provider, size_gb, sign)


def _age_hours(since: datetime | None, now: datetime) -> float | None:
    return None if since is None else max(0.0, (now - since).total_seconds() / 3600)


def _estimate(snaps: Sequence[Snapshot], server: ObservedServer) -> float:
    newest = max(snaps, key=lambda s: (s.created_at, s.snapshot_id), default=None)
    return newest.size_gb if newest is not None else float(server.size.disk_gb)


def _scheduled(
    ctx: _Context,
    want: DesiredServer,
    policy: BackupPolicy,
    server: ObservedServer | None,
    snaps: Sequence[Snapshot],
    force: bool,
) -> tuple[list[BackupAction], KeyStatus]:
    """The take (if due) and prunes of one desired key, and its status."""
    newest = max((s.created_at for s in snaps), default=None)
    since = newest if newest is not None else (server.created_at if server is not None else None)
    tick = due_tick(policy.schedule, since, ctx.now)
    if since is None and server is not None:  # a provider that reports no creation time: due now
        tick = latest_tick(policy.schedule, ctx.now)
    status = KeyStatus(
        key=want.key,
        policy=policy.name,
        provider=want.provider,
        backups=len(snaps),
        newest_at=newest,
        next_due=tick or (next_tick(policy.schedule, since) if since is not None else None),
        age_hours=_age_hours(since, ctx.now),
        max_age_hours=policy.max_age_hours,
        due=tick is not None,
    )
    actions: list[BackupAction] = []
    pending: list[tuple[str, datetime]] = []
    if server is not None and (tick is not None or force):
        size = _estimate(snaps, server)
        cost, currency = ctx.cost(server.provider, size)
        last = f"newest backup {isoformat(newest)}" if newest is not None else "no backup yet"
        if tick is not None:  # due anyway: --force takes the scheduled one
            name = scheduled_name(want.key, tick)
            reason = f"{policy.name} ({policy.schedule}) due since {isoformat(tick)}; {last}"
        else:
            name = manual_name(want.key, ctx.now)
            reason = f"taken on demand (--force); {last}"
        actions.append(
            BackupAction(
                kind=BackupKind.TAKE,
                key=want.key,
                provider=server.provider,
                policy=policy.name,
                reason=reason,
                resource_id=server.resource_id,
                name=name,
                taken_at=tick or ctx.now,
                size_gb=size,
                estimated=True,
                quiesce=policy.quiesce,
                method=policy.method,
                monthly_cost=cost,
                currency=currency,
            )
        )
        pending.append(("\x00pending", ctx.now))
    counted = _counted(snaps)
    keep = retained([(s.snapshot_id, s.created_at) for s in counted] + pending, policy.retention)
    for snap in sorted(counted, key=lambda s: (s.created_at, s.snapshot_id)):
        if snap.snapshot_id in keep:
            continue
        cost, currency = ctx.cost(snap.provider, snap.size_gb, -1)
        actions.append(
            BackupAction(
                kind=BackupKind.PRUNE,
                key=want.key,
                provider=snap.provider,
                policy=policy.name,
                reason=f"beyond the retention of {policy.name} ({describe_retention(policy.retention)})",
                resource_id=snap.resource_id,
                name=snap.name,
                snapshot_id=snap.snapshot_id,
                taken_at=snap.created_at,
                size_gb=snap.size_gb,
                monthly_cost=cost,
                currency=currency,
            )
        )
    return actions, status


def _final(ctx: _Context, change: Change, policy: BackupPolicy, snaps: Sequence[Snapshot]) -> BackupAction:
    server = change.before
    assert server is not None
    size = _estimate(snaps, server)
    cost, currency = ctx.cost(server.provider, size)
    return BackupAction(
        kind=BackupKind.FINAL,
        key=change.key,
        provider=server.provider,
        policy=policy.name,
        reason=f"final backup before the {change.action.value} ({policy.name})",
        resource_id=server.resource_id,
        name=final_name(change.key, server.resource_id),
        taken_at=ctx.now,
        size_gb=size,
        estimated=True,
        quiesce=policy.quiesce,
        method=policy.method,
        change_id=change.id,
        monthly_cost=cost,
        currency=currency,
    )


def plan_backups(
    *,
    deployment: str,
    declared: Sequence[DesiredServer],
    desired: Sequence[DesiredServer],
    observed: Sequence[ObservedServer],
    snapshots: Sequence[Snapshot] | None,
    changes: Sequence[Change],
    policies: Mapping[str, BackupPolicy],
    capabilities: Mapping[str, Capabilities],
    now: datetime,
    price_list_for: Callable[[str], PriceList | None],
    skip_final_backup: bool = False,
    force: bool = False,
    keys: Collection[str] | None = None,
) -> BackupPlan:
    """Every backup to take or prune now (see the module docstring for the rules).

    ``declared`` is every server the YAML declares (policy lookup); ``desired`` those the
    plan keeps (none when destroying), whose scheduled backups and retention apply.
    ``snapshots`` None means the backups were not listed: only final backups are planned.
    ``keys`` limits scheduled backups and prunes to those keys (final backups always apply).
    """
    ctx = _Context(deployment=deployment, now=now, price_list_for=price_list_for)
    declared_by_key = {s.key: s for s in declared}
    snaps_by_key: dict[str, list[Snapshot]] = defaultdict(list)
    for snap in snapshots or ():
        if snap.owner == deployment:
            snaps_by_key[snap.key].append(snap)

    def policy_of(key: str, server: ObservedServer) -> BackupPolicy | None:
        want = declared_by_key.get(key)
        if want is not None and want.backup_policy:
            return policies.get(want.backup_policy)
        if server.backup_policy:  # the mark outlives the YAML, and the policy document too
            return policies.get(server.backup_policy) or BackupPolicy(name=server.backup_policy, schedule="")
        if want is not None:
            return None
        marked = [s for s in snaps_by_key.get(key, ()) if s.policy]
        newest = max(marked, key=lambda s: (s.created_at, s.snapshot_id), default=None)
        return policies.get(newest.policy) if newest is not None and newest.policy else None

    def can_snapshot(provider: str) -> bool:
        return capabilities.get(provider, Capabilities()).snapshots

    actions: list[BackupAction] = []
    notes: list[str] = []
    statuses: list[KeyStatus] = []
    leaving: dict[str, set[str]] = defaultdict(set)  # key -> resource ids deleted or replaced
    for change in changes:
        if change.action not in (Action.DELETE, Action.REPLACE) or change.before is None:
            continue
        leaving[change.key].add(change.before.resource_id)
        policy = policy_of(change.key, change.before)
        if policy is None:
            continue
        if not can_snapshot(change.before.provider):
            notes.append(
                f"{change.key}: provider {change.before.provider} cannot take snapshots; "
                f"no final backup before its {change.action.value} (backup policy {policy.name})"
            )
        elif skip_final_backup:
            notes.append(
                f"{change.key}: no final backup before its {change.action.value} (--skip-final-backup)"
            )
        else:
            actions.append(_final(ctx, change, policy, snaps_by_key.get(change.key, ())))

    servers_by_key: dict[str, list[ObservedServer]] = defaultdict(list)
    for server in observed:
        if server.owner == deployment and server.resource_id not in leaving.get(server.key, set()):
            servers_by_key[server.key].append(server)
    if snapshots is not None:
        for want in sorted(desired, key=lambda s: s.key):
            policy = policies.get(want.backup_policy) if want.backup_policy else None
            if policy is None or (keys is not None and want.key not in keys):
                continue
            if not can_snapshot(want.provider):
                notes.append(
                    f"{want.key}: provider {want.provider} cannot take snapshots; "
                    f"backup policy {policy.name} does not apply"
                )
                continue
            found = servers_by_key.get(want.key, [])
            source = _pick_server(found, want.provider)
            if source is None and found and not leaving.get(want.key):
                notes.append(f"{want.key}: no running or stopped server to back up; its backup waits")
            taken, status = _scheduled(ctx, want, policy, source, snaps_by_key.get(want.key, ()), force)
            actions.extend(taken)
            statuses.append(status)
    order = {BackupKind.FINAL: 0, BackupKind.TAKE: 1, BackupKind.PRUNE: 2}
    actions.sort(key=lambda a: (a.key, order[a.kind], a.taken_at or now, a.id))
    return BackupPlan(actions=tuple(actions), statuses=tuple(statuses), notes=tuple(notes))


def monthly_totals(actions: Sequence[BackupAction]) -> tuple[tuple[Decimal, str], ...]:
    """The summed monthly storage cost of the priced actions, one (total, currency) per currency."""
    totals: dict[str, Decimal] = {}
    for action in actions:
        if action.monthly_cost is not None:
            totals[action.currency] = totals.get(action.currency, Decimal(0)) + action.monthly_cost
    return tuple((totals[currency], currency) for currency in sorted(totals))




