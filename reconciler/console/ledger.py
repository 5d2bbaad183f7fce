"""console.ledger: what the console reads from and writes to the audit ledger.

* the Audit page: entries of the deployment, newest first, filtered by key (and the keys
  below it), action, actor (operator or author), commit and time — the store's
  ``audit_search``, the query ``audit log`` runs;
* open alerts: ``alert`` entries of the last ``ALERT_DAYS`` days that no ``console``
  acknowledgement names;
* the failover state of a cluster: its recent failures seen and failovers;
* every console request, one ``console`` entry with actor ``console:<user>`` (the one
  writer, ``run.audit.AuditWriter``, appends it);
* the verify result: the hash chain and the signed checkpoints, as ``audit verify`` checks.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from reconciler.console.access import Principal
from reconciler.console.views import Page
from reconciler.core.audit_detail import AlertDetail, ConsoleRequest
from reconciler.core.audit_detail_console import ConsoleRequestKind
from reconciler.core.clock import Clock
from reconciler.core.errors import UserError
from reconciler.core.keys import cluster_of
from reconciler.core.records import AuditAction, AuditEntry, AuditQuery, Outcome
from reconciler.run import anchor
from reconciler.run.audit import AuditWriter, RunContext
from reconciler.store.base import Store

ALERT_DAYS = 7
_ALERTS_READ = 500
ALL_ACTIONS = tuple(AuditAction)


@dataclass(frozen=True)
class AuditFilter:
    """The Audit page's filter, as its form shows it ("" or None: not filtered)."""

    key: str = ""
    action: AuditAction | None = None
    actor: str = ""
    commit: str = ""
    since: datetime | None = None
    until: datetime | None = None

    def query(self, deployment: str, limit: int) -> AuditQuery:
        """The store's query for the newest ``limit`` entries this filter selects (``audit log``'s)."""
        return AuditQuery(
            deployment=deployment,
            key=self.key or None,
            actions=(self.action,) if self.action else (),
            actor=self.actor or None,
            commit=self.commit or None,
            since=self.since,
            until=self.until,
            limit=limit,
        )


def audit_page(
    store: Store | None, deployment: str, wanted: AuditFilter, number: int, per_page: int
) -> Page[AuditEntry]:
    """Page ``number`` of the entries ``wanted`` selects, newest first; the store does the filtering."""
    if store is None:
        return Page((), number, per_page, 0, False)
    newest = list(store.audit_search(wanted.query(deployment, number * per_page + 1)))
    newest.reverse()
    start = (number - 1) * per_page
    shown = tuple(newest[start : start + per_page])
    return Page(shown, number, per_page, None, len(newest) > start + per_page)


@dataclass(frozen=True)
class OpenAlert:
    seq: int
    at: datetime
    event: str
    subject: str
    summary: str


def acknowledged(store: Store, deployment: str, since: datetime) -> set[int]:
    seqs: set[int] = set()
    for entry in store.recent_audit(deployment, [AuditAction.CONSOLE], since=since, limit=_ALERTS_READ * 4):
        detail = ConsoleRequest.decode(entry.record.detail)
        if (
            detail is not None
            and detail.request is ConsoleRequestKind.ACKNOWLEDGE
            and detail.target.isdigit()
        ):
            seqs.add(int(detail.target))
    return seqs


def open_alerts(store: Store | None, deployment: str, now: datetime) -> list[OpenAlert]:
    if store is None:
        return []
    since = now - timedelta(days=ALERT_DAYS)
    done = acknowledged(store, deployment, since)
    alerts = []
    for entry in store.recent_audit(deployment, [AuditAction.ALERT], since=since, limit=_ALERTS_READ):
        if entry.seq in done:
            continue
        detail = AlertDetail.decode(entry.record.detail)
        alerts.append(
            OpenAlert(
                seq=entry.seq,
                at=entry.at,
                subject=entry.record.key,
                event=detail.event.value if detail else "alert",
                summary=detail.summary if detail else entry.record.detail,
            )
        )
    return alerts


def alert_entry(store: Store, deployment: str, seq: int) -> AuditEntry | None:
    """The ``alert`` entry with this seq (None when there is none)."""
    for entry in store.audit_log(deployment=deployment, since_seq=seq - 1):
        return entry if entry.seq == seq and entry.record.action is AuditAction.ALERT else None
    return None


@dataclass(frozen=True)
class FailoverState:
    failed: tuple[str, ...]  # keys observed in error now
    recent: tuple[AuditEntry, ...]  # failures seen and failovers of the last day, newest first
    held: tuple[str, ...]  # keys the daemon holds back after failures


def failover_state(
    store: Store | None,
    deployment: str,
    cluster: str,
    failed: Sequence[str],
    held: Sequence[str],
    now: datetime,
) -> FailoverState:
    recent: list[AuditEntry] = []
    if store is not None:
        entries = store.recent_audit(
            deployment,
            [AuditAction.FAILOVER, AuditAction.FAILURE_SEEN],
            since=now - timedelta(days=1),
            limit=1000,
        )
        recent = [e for e in entries if cluster_of(e.record.key).split("/")[0] == cluster][:50]
    mine = tuple(k for k in held if k.split("/")[0] == cluster)
    return FailoverState(tuple(failed), tuple(recent), mine)


def record_request(
    store: Store,
    clock: Clock,
    deployment: str,
    principal: Principal,
    kind: ConsoleRequestKind,
    target: str = "",
    commit: str = "",
) -> AuditEntry:
    """One ``console`` entry: who asked what, of what (the actor is ``console:<user>``)."""
    run = RunContext(run_id=uuid.uuid4().hex[:12], actor=principal.actor, commit=commit)
    writer = AuditWriter(store, clock, deployment, run)
    detail = ConsoleRequest(kind, target, principal.role.value, principal.via.value)
    return writer.record(
        target if kind is ConsoleRequestKind.RETRY else "",
        "",
        AuditAction.CONSOLE,
        Outcome.INFO,
        detail=detail,
    )


@dataclass(frozen=True)
class Verified:
    ok: bool
    entries: int
    text: str
    at: datetime


def verify(store: Store | None, location: str, now: datetime) -> Verified:
    """The hash chain walked and the signed checkpoints checked (what ``audit verify`` says)."""
    if store is None:
        return Verified(True, 0, "audit ledger is empty: nothing to verify", now)
    result = store.verify()
    if not result.ok:
        return Verified(
            False, result.entries, f"BROKEN at entry {result.first_bad_seq}: {result.problem}", now
        )
    try:
        anchored = anchor.verify(store, location)
    except UserError as exc:
        return Verified(False, result.entries, f"the signed checkpoints cannot be checked: {exc}", now)
    if not anchored.ok:
        return Verified(False, result.entries, f"BROKEN: {anchored.problem}", now)
    text = f"intact: {result.entries} entries, hash chain verified"
    if anchored.checkpoints:
        text += f"; {anchored.checkpoints} signed checkpoints agree (entries 1-{anchored.covered_seq})"
    else:
        text += "; not anchored: no signed checkpoint of this ledger was found"
    return Verified(True, result.entries, text, now)
