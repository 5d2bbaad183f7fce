"""core.status: one line per server key — where it runs, its power and sync state, its last
change and what it costs — and counts per cluster, for ``reconciler status``.

Built from one observation and the plan made from it (so "drifted" means what a plan would
change, in the plan's words — plus the drift a member's ``drift: warn`` or ``drift: ignore``
keeps the plan from healing, ``core.diff.held_drift``, with the policy named), plus the newest
audit entry of each key. A server the provider reports as still being built or changing state
is ``pending``, never ``running``; a key no server carries yet is ``missing``. Pure.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from reconciler.core.changes import Change, ChangeCause, FieldChange
from reconciler.core.diff import held_drift
from reconciler.core.keys import cluster_of, natural_key
from reconciler.core.model import (
    Action,
    DesiredServer,
    DriftMode,
    ObservedServer,
    PriceList,
    ServerStatus,
    Size,
)
from reconciler.core.plan import Plan
from reconciler.core.pricing import hourly_rate, price_list_of
from reconciler.core.provider import Capabilities
from reconciler.core.records import AuditEntry


class Power(StrEnum):
    RUNNING = "running"
    PENDING = "pending"  # being built, started or changed by the provider: not running yet
    STOPPED = "stopped"
    ERROR = "error"
    MISSING = "missing"  # no server carries the key (a pending create, say)


class Sync(StrEnum):
    SYNCED = "synced"
    DRIFTED = "drifted"
    PENDING_CREATE = "pending create"
    PENDING_ADOPT = "pending adopt"
    PENDING_DELETE = "pending delete"


_POWER = {
    ServerStatus.RUNNING: Power.RUNNING,
    ServerStatus.PENDING: Power.PENDING,
    ServerStatus.STOPPED: Power.STOPPED,
    ServerStatus.ERROR: Power.ERROR,
}


@dataclass(frozen=True)
class LastChange:
    action: str
    outcome: str
    at: datetime
    actor: str

    def __str__(self) -> str:
        return f"{self.action} {self.outcome} {self.at.strftime('%Y-%m-%d %H:%M')} by {self.actor}"


@dataclass(frozen=True)
class KeyStatus:
    key: str
    provider: str
    resource_id: str  # "" when missing
    power: Power
    sync: Sync
    healed: str  # what the plan changes on a drifted key ("" otherwise)
    last_change: LastChange | None
    hourly: Decimal | None  # None: nothing prices it
    currency: str = ""
    drift_policy: DriftMode | None = None  # set when some drift is held back by warn or ignore
    held: tuple[str, ...] = ()  # what differs that the policy holds back (no plan heals it)

    @property
    def cluster(self) -> str:
        return cluster_of(self.key)

    @property
    def drift(self) -> str:
        """Everything that differs on a drifted key: what the plan heals, then what is held."""
        return ", ".join(dict.fromkeys(part for part in (self.healed, *self.held) if part))


@dataclass(frozen=True)
class ClusterCounts:
    cluster: str
    servers: int
    power: Mapping[Power, int]
    sync: Mapping[Sync, int]
    hourly: Decimal


def last_changes(entries: Iterable[AuditEntry]) -> dict[str, LastChange]:
    """The newest entry per key among ``entries`` (newest first), intents left out."""
    found: dict[str, LastChange] = {}
    for entry in entries:
        record = entry.record
        if record.key and record.key not in found and record.outcome.value != "intent":
            found[record.key] = LastChange(record.action.value, record.outcome.value, entry.at, record.actor)
    return found


def _names(fields: Sequence[FieldChange]) -> list[str]:
    return [f.name for f in fields if f.name != "spec_hash"]


def _sync(changes: Sequence[Change], held: Sequence[FieldChange]) -> tuple[Sync, str]:
    """The sync state of a key from its planned changes and the drift its policy holds back,
    with what the plan changes on it."""
    actions = {c.action for c in changes}
    if Action.ADOPT in actions:
        return Sync.PENDING_ADOPT, ""
    if changes and actions == {Action.CREATE} and all(c.cause is ChangeCause.NOT_PRESENT for c in changes):
        return Sync.PENDING_CREATE, ""
    if changes and actions == {Action.DELETE} and all(
        c.cause is ChangeCause.NO_LONGER_DECLARED for c in changes
    ):
        return Sync.PENDING_DELETE, ""
    if not changes and not held:
        return Sync.SYNCED, ""
    planned = _names([f for c in changes for f in c.fields])
    return Sync.DRIFTED, ", ".join(dict.fromkeys(planned)) or "; ".join(c.reason for c in changes)


def _rate(price_list_for: Callable[[str], PriceList | None], provider: str, size: Size,
          flavor: str | None) -> tuple[Decimal | None, str]:
    plist = price_list_of(price_list_for, provider)
    if plist is None or not plist.prices(flavor):
        return None, ""
    return hourly_rate(plist, size, flavor), plist.currency


def key_statuses(
    desired: Sequence[DesiredServer],
    observed: Sequence[ObservedServer],
    plan: Plan,
    last: Mapping[str, LastChange],
    price_list_for: Callable[[str], PriceList | None],
    described: Sequence[ObservedServer] = (),
    capabilities: Mapping[str, Capabilities] | None = None,
) -> list[KeyStatus]:
    """One status per key desired or owned, in key order. A key still to be adopted shows the
    server its ``adopt:`` entry names (``described``), as it runs now. ``capabilities`` (per
    provider name) lets the drift that ``drift: warn``/``ignore`` holds back be told."""
    caps = capabilities or {}
    want = {s.key: s for s in desired}
    seen: dict[str, ObservedServer] = {}
    for server in sorted(observed, key=lambda s: (s.status is not ServerStatus.RUNNING, -s.generation)):
        seen.setdefault(server.key, server)
    targets = {(s.provider, s.resource_id): s for s in described}
    by_key: dict[str, list[Change]] = {}
    for change in plan.changes:
        by_key.setdefault(change.key, []).append(change)
    rows = []
    for key in sorted(want.keys() | seen.keys(), key=natural_key):
        have, wanted = seen.get(key), want.get(key)
        if have is None and wanted is not None and wanted.adopt_id:
            have = targets.get((wanted.provider, wanted.adopt_id))
        held: tuple[FieldChange, ...] = ()
        if have is not None and wanted is not None and have.owner and have.provider == wanted.provider \
                and wanted.provider in caps:
            held = held_drift(wanted, have, caps[wanted.provider])
        sync, healed = _sync(by_key.get(key, []), held)
        rate, currency = (None, "") if have is None else _rate(
            price_list_for, have.provider, have.size, have.flavor
        )
        provider = have.provider if have is not None else wanted.provider if wanted is not None else ""
        rows.append(KeyStatus(
            key=key,
            provider=provider,
            resource_id=have.resource_id if have is not None else "",
            power=_POWER[have.status] if have is not None else Power.MISSING,
            sync=sync,
            healed=healed,
            last_change=last.get(key),
            hourly=rate,
            currency=currency,
            drift_policy=wanted.drift if held and sync is Sync.DRIFTED and wanted is not None else None,
            held=tuple(dict.fromkeys(_names(held))) if sync is Sync.DRIFTED else (),
        ))
    return rows


def cluster_counts(rows: Sequence[KeyStatus]) -> list[ClusterCounts]:
    clusters: dict[str, list[KeyStatus]] = {}
    for row in rows:
        clusters.setdefault(row.cluster, []).append(row)
    return [
        ClusterCounts(
            cluster=name,
            servers=len(found),
            power={p: sum(1 for r in found if r.power is p) for p in Power},
            sync={s: sum(1 for r in found if r.sync is s) for s in Sync},
            hourly=sum((r.hourly for r in found if r.hourly is not None), Decimal(0)),
        )
        for name, found in sorted(clusters.items())
    ]
