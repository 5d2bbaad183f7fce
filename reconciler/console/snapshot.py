"""console.snapshot: one read of the desired state, the clouds and the ledgers, that the pages render from.

A snapshot loads the desired state the console shows (the daemon's commit, or the folder
``reconciler console`` was given), lists every provider once in a read-only
``ProviderSession`` (and its backups, under a backup policy), and plans — the same
``make_plan`` as ``plan`` and the daemon, never applied. From that it derives one row per
server key (observed, or declared and not yet there), naturally ordered (``web/2`` before
``web/10``), each with its sync state:

* ``synced`` — observed, and the plan leaves it alone;
* ``drifted`` — the cloud changed behind the reconciler's back: the server failed, was
  stopped, resized or retagged (its spec hash still the desired one), or vanished (the
  ledger knows its key);
* ``pending`` — the desired state asks for a change nobody made yet (a new server, a new
  spec, one no longer declared).

A problem (invalid YAML, a cloud that cannot be listed) is carried, not raised: the pages
say it, located, and keep what could be read. ``SnapshotCache`` keeps the newest one and
makes the next in a background thread once it is older than ``max_age`` (or when asked).
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import structlog

from reconciler.config import deployment_name, load_with_console
from reconciler.console.port import CommitInfo, Desired
from reconciler.core.backups import KeyStatus, plan_backups
from reconciler.core.changes import Change
from reconciler.core.console_model import ConsoleSpec
from reconciler.core.errors import ProviderError, UserError
from reconciler.core.keys import natural_key
from reconciler.core.model import (
    HOURS_PER_MONTH,
    Action,
    DesiredState,
    ObservedServer,
    ServerStatus,
    Snapshot,
)
from reconciler.core.plan import Plan
from reconciler.core.pricing import hourly_rate
from reconciler.core.provider import Capabilities
from reconciler.core.records import AuditAction, Outcome
from reconciler.run.audit import scaled_counts
from reconciler.run.planning import make_plan
from reconciler.run.session import ProviderSession
from reconciler.run.workspace import Workspace

log = structlog.get_logger("reconciler.console")

SYNCED, DRIFTED, PENDING = "synced", "drifted", "pending"
SYNC_STATES = (SYNCED, DRIFTED, PENDING)
ABSENT = "absent"  # declared, no server yet
STATUSES = (*(s.value for s in ServerStatus), ABSENT)
_CHANGE_ACTIONS = (
    AuditAction.CREATE,
    AuditAction.UPDATE,
    AuditAction.DELETE,
    AuditAction.START,
    AuditAction.STOP,
)
_LAST_CHANGES_READ = 50_000

Money = tuple[tuple[str, Decimal], ...]  # (currency, amount), sorted by currency


def add_money(*amounts: Money) -> Money:
    total: dict[str, Decimal] = {}
    for amount in amounts:
        for currency, value in amount:
            total[currency] = total.get(currency, Decimal(0)) + value
    return tuple(sorted(total.items()))


def monthly(amount: Money) -> Money:
    return tuple((c, v * HOURS_PER_MONTH) for c, v in amount)


@dataclass(frozen=True)
class ServerRow:
    key: str
    cluster: str
    member: str
    provider: str
    status: str  # a ServerStatus value, or ABSENT
    sync: str  # SYNCED, DRIFTED or PENDING
    flavor: str = ""
    size: str = ""
    addresses: tuple[str, ...] = ()
    created_at: datetime | None = None
    resource_id: str = ""
    change: str = ""  # the planned action ("" when none)
    reason: str = ""
    hourly: Money = ()
    last_change: datetime | None = None
    last_action: str = ""


@dataclass(frozen=True)
class GroupRow:
    """One provider × cluster of the overview."""

    provider: str
    cluster: str
    statuses: tuple[tuple[str, int], ...]
    synced: int
    drifted: int
    pending: int
    hourly: Money
    desired_hourly: Money

    @property
    def servers(self) -> int:
        return sum(n for status, n in self.statuses if status != ABSENT)


@dataclass(frozen=True)
class BackupRow:
    key: str
    policy: str
    provider: str
    points: tuple[Snapshot, ...]  # restore points, newest first
    status: KeyStatus | None


@dataclass(frozen=True)
class ConsoleSnapshot:
    taken_at: datetime
    seconds: float
    deployment: str
    source: str
    commit: CommitInfo | None = None
    state: DesiredState | None = None
    console: ConsoleSpec | None = None
    plan: Plan | None = None
    rows: tuple[ServerRow, ...] = ()
    groups: tuple[GroupRow, ...] = ()
    backups: tuple[BackupRow, ...] = ()
    problems: tuple[str, ...] = ()
    loaded: bool = False  # the desired state loaded (``console`` is meaningful)

    def row(self, key: str) -> ServerRow | None:
        return next((r for r in self.rows if r.key == key), None)

    def clusters(self) -> tuple[str, ...]:
        return tuple(
            sorted({r.cluster for r in self.rows} | {g.cluster for g in self.groups}, key=natural_key)
        )


def sync_state(change: Change | None, known: Callable[[str], bool]) -> str:
    """SYNCED, DRIFTED or PENDING for a key and the change the plan has for it (see the module text)."""
    if change is None:
        return SYNCED
    if change.cause.is_failover:
        return DRIFTED
    if change.action is Action.CREATE:
        return DRIFTED if known(change.key) else PENDING
    if change.action in (Action.UPDATE, Action.REPLACE) and change.before and change.after:
        return DRIFTED if change.before.spec_hash == change.after.spec_hash else PENDING
    return PENDING


def _rate(state: DesiredState, server: ObservedServer) -> Money:
    price_list = state.price_list_for(server.provider) if state.providers else None
    if price_list is None:
        return ()
    return ((price_list.currency, hourly_rate(price_list, server.size, server.flavor)),)


def _rows(
    state: DesiredState, plan: Plan, store_known: Callable[[str], bool], last: dict[str, tuple[datetime, str]]
) -> list[ServerRow]:
    changes: dict[str, Change] = {}
    for planned in plan.changes:
        changes.setdefault(planned.key, planned)
    rows: list[ServerRow] = []
    seen: set[str] = set()
    by_resource = {(c.before.provider, c.before.resource_id): c for c in plan.changes if c.before}
    for server in plan.basis:
        change = by_resource.get((server.provider, server.resource_id))
        seen.add(server.key)
        when, action = last.get(server.key, (None, ""))
        rows.append(
            ServerRow(
                key=server.key,
                cluster=server.key.split("/")[0],
                member=server.key.rpartition("/")[0],
                provider=server.provider,
                status=server.status.value,
                sync=sync_state(change, store_known),
                flavor=server.flavor or "",
                size=str(server.size),
                addresses=server.addresses,
                created_at=server.created_at,
                resource_id=server.resource_id,
                change=change.action.value if change else "",
                reason=change.reason if change else "",
                hourly=_rate(state, server),
                last_change=when,
                last_action=action,
            )
        )
    for wanted in state.servers:
        if wanted.key in seen:
            continue
        change = changes.get(wanted.key)
        when, action = last.get(wanted.key, (None, ""))
        rows.append(
            ServerRow(
                key=wanted.key,
                cluster=wanted.cluster,
                member=f"{wanted.cluster}/{wanted.member}",
                provider=wanted.provider,
                status=ABSENT,
                sync=sync_state(change, store_known),
                flavor=wanted.flavor or "",
                size=str(wanted.size),
                change=change.action.value if change else "",
                reason=change.reason if change else "",
                last_change=when,
                last_action=action,
            )
        )
    rows.sort(key=lambda r: (natural_key(r.key), r.provider, r.resource_id))
    return rows


def _groups(state: DesiredState, rows: list[ServerRow]) -> list[GroupRow]:
    desired_rate: dict[tuple[str, str], Money] = {}
    for server in state.servers:
        price_list = state.price_list_for(server.provider)
        if price_list is not None:
            rate = ((price_list.currency, hourly_rate(price_list, server.size, server.flavor)),)
            ident = (server.provider, server.cluster)
            desired_rate[ident] = add_money(desired_rate.get(ident, ()), rate)
    found: dict[tuple[str, str], list[ServerRow]] = {}
    for row in rows:
        found.setdefault((row.provider, row.cluster), []).append(row)
    groups = []
    for ident in sorted(set(found) | set(desired_rate), key=lambda i: (natural_key(i[0]), natural_key(i[1]))):
        members = found.get(ident, [])
        counts = {s: 0 for s in STATUSES}
        for row in members:
            counts[row.status] = counts.get(row.status, 0) + 1
        groups.append(
            GroupRow(
                provider=ident[0],
                cluster=ident[1],
                statuses=tuple((s, n) for s, n in counts.items()),
                synced=sum(r.sync == SYNCED for r in members),
                drifted=sum(r.sync == DRIFTED for r in members),
                pending=sum(r.sync == PENDING for r in members),
                hourly=add_money(*(r.hourly for r in members if r.status != ABSENT)),
                desired_hourly=desired_rate.get(ident, ()),
            )
        )
    return groups


def _backups(
    state: DesiredState,
    plan: Plan,
    snapshots: list[Snapshot],
    capabilities: Mapping[str, Capabilities],
    now: datetime,
) -> list[BackupRow]:
    if not state.backup_policies:
        return []
    result = plan_backups(
        deployment=state.deployment,
        declared=state.servers,
        desired=state.servers,
        observed=plan.basis,
        snapshots=snapshots,
        changes=plan.changes,
        policies=state.backup_policies,
        capabilities=capabilities,
        now=now,
        price_list_for=state.price_list_for,
    )
    by_key: dict[str, list[Snapshot]] = {}
    for snap in snapshots:
        by_key.setdefault(snap.key, []).append(snap)
    statuses = {s.key: s for s in result.statuses}
    policy_of = {s.key: s.backup_policy for s in state.servers if s.backup_policy}
    keys = sorted(set(policy_of) | set(by_key), key=natural_key)
    provider_of = {s.key: s.provider for s in state.servers}
    return [
        BackupRow(
            key=key,
            policy=policy_of.get(key) or (statuses[key].policy if key in statuses else ""),
            provider=provider_of.get(key, by_key[key][0].provider if key in by_key else ""),
            points=tuple(sorted(by_key.get(key, []), key=lambda s: s.created_at, reverse=True)),
            status=statuses.get(key),
        )
        for key in keys
    ]


def build_snapshot(desired: Desired, ws: Workspace) -> ConsoleSnapshot:
    """Read everything the pages show, once (see the module text). Never raises a UserError."""
    started = time.monotonic()
    now = ws.clock.now()
    deployment = desired.deployment or deployment_name(desired.path)
    shown = f"commit {desired.commit.short}" if desired.commit else str(desired.path)
    base = ConsoleSnapshot(
        taken_at=now, seconds=0.0, deployment=deployment, source=shown, commit=desired.commit
    )
    store = ws.existing_store()
    try:
        counts = scaled_counts(store, deployment) if store is not None else None
        state, console = load_with_console(desired.path, deployment=desired.deployment, counts=counts)
    except UserError as exc:
        problems = tuple(f"the desired state is invalid: {_shown(desired, str(d))}" for d in exc.diagnostics)
        return _done(base, started, problems=problems)
    base = _done(base, started, state=state, console=console, loaded=True, deployment=state.deployment)
    try:
        with ProviderSession(ws, state.providers) as session:
            observed = session.observe(state.deployment)
            snapshots = session.list_snapshots(state.deployment)[0] if state.backup_policies else []

            def last_generation(key: str) -> int | None:
                return store.max_generation(state.deployment, key) if store is not None else None

            plan = make_plan(
                state,
                observed,
                session.providers,
                clock=ws.clock,
                last_generation=last_generation,
                commit=desired.commit.sha if desired.commit else None,
                snapshots=snapshots,
            )
            capabilities = session.capabilities
    except (ProviderError, UserError) as exc:
        return _done(base, started, problems=(f"the clouds could not be read: {_shown(desired, str(exc))}",))
    last: dict[str, tuple[datetime, str]] = {}
    if store is not None:
        for entry in store.recent_audit(state.deployment, _CHANGE_ACTIONS, limit=_LAST_CHANGES_READ):
            if entry.record.outcome is Outcome.SUCCEEDED and entry.record.key not in last:
                last[entry.record.key] = (entry.at, entry.record.action.value)
    rows = _rows(state, plan, lambda key: last_generation(key) is not None, last)
    return _done(
        base,
        started,
        plan=plan,
        rows=tuple(rows),
        groups=tuple(_groups(state, rows)),
        backups=tuple(_backups(state, plan, snapshots, capabilities, now)),
    )


def _shown(desired: Desired, text: str) -> str:
    """A message with the checkout's folder left out of its file names."""
    if desired.shown_root is None:
        return text
    return text.replace(str(desired.shown_root) + "/", "")


def _done(base: ConsoleSnapshot, started: float, **changes: Any) -> ConsoleSnapshot:
    return dataclasses.replace(base, seconds=time.monotonic() - started, **changes)


class SnapshotCache:
    """The newest snapshot, remade in the background when it is older than ``max_age``.

    ``epoch`` (the loop's count of finished cycles) says when the clouds changed for sure: a
    snapshot made before the newest cycle finished is remade before it is shown again (waiting
    up to ``wait_seconds`` for it), as it is after ``invalidate``; a merely old one is shown
    while the next is made.
    """

    def __init__(
        self,
        make: Callable[[], ConsoleSnapshot],
        *,
        max_age: float = 30.0,
        epoch: Callable[[], int] = lambda: 0,
        wait_seconds: float = 2.0,
    ) -> None:
        self._make = make
        self._epoch = epoch
        self.max_age = max_age
        self.wait_seconds = wait_seconds
        self._current: ConsoleSnapshot | None = None
        self._made_at = 0.0
        self._made_epoch = -1
        self._lock = threading.Lock()
        self._building: threading.Thread | None = None
        self._stale = False
        self.access: ConsoleSpec | None = None  # the Console document of the newest valid desired state
        self.access_loaded = False

    def _build(self, epoch: int) -> None:
        try:
            snapshot = self._make()
        except Exception:  # the console must survive whatever one read meets
            log.exception("console snapshot failed")
            with self._lock:
                self._building = None
            return
        with self._lock:
            self._current, self._made_at, self._building = snapshot, time.monotonic(), None
            self._made_epoch = epoch
            if snapshot.loaded:
                self.access, self.access_loaded = snapshot.console, True

    def get(self, *, wait: bool = False) -> ConsoleSnapshot:
        """The newest snapshot: made now the first time and after a cycle; an old one starts the next."""
        epoch = self._epoch()
        with self._lock:
            current = self._current
            outdated = self._stale or epoch != self._made_epoch
            old = current is None or outdated or time.monotonic() - self._made_at > self.max_age
            if old and self._building is None:
                self._stale = False
                self._building = threading.Thread(
                    target=self._build, args=(epoch,), name="console-snapshot", daemon=True
                )
                self._building.start()
            building = self._building
        if (current is None or wait or outdated) and building is not None:
            building.join(None if current is None else self.wait_seconds)
            with self._lock:
                current = self._current
        if current is None:
            return ConsoleSnapshot(
                taken_at=datetime.now().astimezone(),
                seconds=0.0,
                deployment="",
                source="",
                problems=("the console could not read anything yet; see its log",),
            )
        return current

    def invalidate(self) -> None:
        """The next ``get`` makes a new snapshot first (a cycle finished, say)."""
        with self._lock:
            self._stale = True

    def age(self) -> timedelta:
        return timedelta(seconds=time.monotonic() - self._made_at)
