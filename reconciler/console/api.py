"""console.api: the JSON API, ``/api/v1/…``, by session cookie or ``Authorization: Bearer <token>``.

Reading needs the viewer role:

* ``GET /api/v1/servers`` — one page of servers in natural key order (``provider``,
  ``cluster``, ``status``, ``sync``, ``q``, ``page``, ``per_page``);
* ``GET /api/v1/clusters`` — per provider and cluster: servers by state, synced, drifted,
  pending, cost;
* ``GET /api/v1/plan`` — the pending plan for the commit converged, destructive changes first;
* ``GET /api/v1/usage`` — the usage report (``period``, ``from``, ``to``, ``by``, ``mode``);
* ``GET /api/v1/audit`` — entries newest first (``key``, ``action``, ``actor``, ``commit``,
  ``since``, ``until``, ``page``);
* ``GET /api/v1/status`` — the reconcile loop.

Asking answers 202: ``POST /api/v1/sync``, ``POST /api/v1/backups`` and
``POST /api/v1/servers/{key}/retry`` for an operator, ``POST /api/v1/alerts/{seq}/ack`` for
an admin.

A POST by session needs the session's CSRF token in ``X-CSRF-Token``; with none, or the
wrong one, it is 403 — as it is for a role that may not. No session and no token: 401.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from reconciler.billing.usage import report_dict
from reconciler.console import ledger, usage
from reconciler.console.actions import perform
from reconciler.console.auth_routes import runtime
from reconciler.console.pages import audit_filter
from reconciler.console.port import LoopStatus
from reconciler.console.runtime import check_csrf, require
from reconciler.console.snapshot import ConsoleSnapshot, GroupRow, Money, ServerRow, monthly
from reconciler.console.views import ServerFilter, destructive_first, filter_rows, page_params, paginate
from reconciler.core.audit_detail_console import ConsoleRequestKind
from reconciler.core.changes import Change
from reconciler.core.clock import isoformat
from reconciler.core.cost_codec import cost_to_dict
from reconciler.core.records import AuditEntry


def _time(moment: datetime | None) -> str | None:
    return isoformat(moment) if moment is not None else None


def _money(amount: Money) -> dict[str, str]:
    return {currency: str(value) for currency, value in amount}


def server_dict(row: ServerRow) -> dict[str, Any]:
    return {
        "key": row.key,
        "cluster": row.cluster,
        "member": row.member,
        "provider": row.provider,
        "status": row.status,
        "sync": row.sync,
        "flavor": row.flavor or None,
        "size": row.size,
        "addresses": list(row.addresses),
        "created_at": _time(row.created_at),
        "resource_id": row.resource_id,
        "change": row.change or None,
        "reason": row.reason or None,
        "hourly": _money(row.hourly),
        "last_change": _time(row.last_change),
        "last_action": row.last_action or None,
    }


def group_dict(group: GroupRow) -> dict[str, Any]:
    return {
        "provider": group.provider,
        "cluster": group.cluster,
        "servers": group.servers,
        "by_status": dict(group.statuses),
        "synced": group.synced,
        "drifted": group.drifted,
        "pending": group.pending,
        "hourly": _money(group.hourly),
        "monthly": _money(monthly(group.hourly)),
        "desired_hourly": _money(group.desired_hourly),
    }


def change_dict(change: Change) -> dict[str, Any]:
    return {
        "id": change.id,
        "action": change.action.value,
        "key": change.key,
        "provider": change.provider,
        "cause": change.cause.value,
        "reason": change.reason,
        "fields": [asdict(f) for f in change.fields],
        "depends_on": list(change.depends_on),
    }


def entry_dict(entry: AuditEntry) -> dict[str, Any]:
    record = entry.record
    return {
        "seq": entry.seq,
        "at": isoformat(entry.at),
        "actor": record.actor,
        "commit": record.commit,
        "action": record.action.value,
        "outcome": record.outcome.value,
        "key": record.key,
        "provider": record.provider,
        "resource_id": record.resource_id,
        "detail": record.detail,
        "error": record.error,
        "run_id": record.run_id,
        "hash": entry.hash,
    }


def status_dict(status: LoopStatus) -> dict[str, Any]:
    return {
        "loop": status.present,
        "running": status.running,
        "cycles": status.cycles,
        "outcome": status.outcome or None,
        "message": status.message,
        "changes": status.changes,
        "applied": status.applied,
        "failed": status.failed,
        "held": status.held,
        "finished_at": _time(status.finished_at),
        "ready": status.ready,
        "commit": status.commit.sha if status.commit else None,
        "held_keys": list(status.held_keys),
    }


def _snapshot_dict(snapshot: ConsoleSnapshot) -> dict[str, Any]:
    return {
        "taken_at": isoformat(snapshot.taken_at),
        "deployment": snapshot.deployment,
        "commit": snapshot.commit.sha if snapshot.commit else None,
        "problems": list(snapshot.problems),
    }


async def servers(request: Request) -> Response:
    rt = runtime(request)
    require(request, rt)
    snapshot = rt.cache.get()
    number, per_page = page_params(request.query_params)
    found = paginate(filter_rows(snapshot.rows, ServerFilter.parse(request.query_params)), number, per_page)
    return JSONResponse(
        {
            "snapshot": _snapshot_dict(snapshot),
            "page": found.number,
            "per_page": found.per_page,
            "total": found.total,
            "servers": [server_dict(r) for r in found.items],
        }
    )


async def clusters(request: Request) -> Response:
    rt = runtime(request)
    require(request, rt)
    snapshot = rt.cache.get()
    return JSONResponse(
        {"snapshot": _snapshot_dict(snapshot), "clusters": [group_dict(g) for g in snapshot.groups]}
    )


async def plan(request: Request) -> Response:
    rt = runtime(request)
    require(request, rt)
    snapshot = rt.cache.get()
    found = snapshot.plan
    body: dict[str, Any] = {"snapshot": _snapshot_dict(snapshot), "plan": None}
    if found is not None:
        body["plan"] = {
            "deployment": found.deployment,
            "commit": found.commit,
            "summary": found.summary(),
            "cost": cost_to_dict(found.cost),  # per currency, as in the plan file
            "violations": [
                {"policy": v.policy, "message": v.message, "denies": v.denies} for v in found.violations
            ],
            "changes": [change_dict(c) for c in destructive_first(found.changes)],
        }
    return JSONResponse(body)


async def usage_report(request: Request) -> Response:
    rt = runtime(request)
    require(request, rt)
    snapshot = rt.cache.get()
    q, found = usage.requested(request.query_params, rt.store(), snapshot, rt.ws.clock.now())
    return JSONResponse(report_dict(usage.report(found, q)))


async def audit(request: Request) -> Response:
    rt = runtime(request)
    require(request, rt)
    snapshot = rt.cache.get()
    number, per_page = page_params(request.query_params)
    found = ledger.audit_page(rt.store(), snapshot.deployment, audit_filter(request), number, per_page)
    return JSONResponse(
        {
            "page": number,
            "per_page": per_page,
            "more": found.more,
            "entries": [entry_dict(e) for e in found.items],
        }
    )


async def status(request: Request) -> Response:
    rt = runtime(request)
    require(request, rt)
    return JSONResponse(status_dict(rt.port.status()))


async def _act(request: Request, kind: ConsoleRequestKind, target: str = "") -> Response:
    rt = runtime(request)
    principal, session = require(request, rt)
    check_csrf(request, session)
    outcome = perform(rt, principal, kind, target)
    return JSONResponse({"message": outcome.message}, status_code=outcome.status)


async def sync(request: Request) -> Response:
    return await _act(request, ConsoleRequestKind.SYNC)


async def run_backups(request: Request) -> Response:
    return await _act(request, ConsoleRequestKind.RUN_BACKUPS)


async def retry(request: Request) -> Response:
    return await _act(request, ConsoleRequestKind.RETRY, request.path_params["key"])


async def acknowledge(request: Request) -> Response:
    return await _act(request, ConsoleRequestKind.ACKNOWLEDGE, str(request.path_params["seq"]))
