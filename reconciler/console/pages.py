"""console.pages: the HTML pages — Overview, Cluster, Plan, Usage, Audit, Backups — and the action forms.

Every page is rendered on the server from the newest snapshot (``console.snapshot``) and the
ledgers; htmx swaps the server list, the plan's changes and the audit table in place when
a filter or a page changes (``HX-Request``: only the fragment is rendered). A page without
a session redirects to ``/login``. Action forms post with the session's CSRF token and
redirect back (303) with the outcome in the query string.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlencode

from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response

from reconciler.billing.modes import REPORT_MODES
from reconciler.billing.usage import GROUPINGS
from reconciler.console import ledger, usage
from reconciler.console.actions import perform
from reconciler.console.auth_routes import runtime, safe_next
from reconciler.console.render import page
from reconciler.console.runtime import Runtime, check_csrf, require
from reconciler.console.snapshot import DRIFTED, PENDING, STATUSES, SYNC_STATES, ConsoleSnapshot
from reconciler.console.views import (
    BadRequest,
    ServerFilter,
    destructive_first,
    filter_rows,
    page_params,
    paginate,
    text_param,
    time_param,
)
from reconciler.core.audit_detail_console import ConsoleRequestKind
from reconciler.core.records import AuditAction


def _fragment(request: Request) -> bool:
    return request.headers.get("hx-request") == "true" and request.headers.get("hx-boosted") != "true"


def _common(rt: Runtime, snapshot: ConsoleSnapshot) -> dict[str, Any]:
    return {"daemon": rt.port.status(), "snap": snapshot, "flash": ""}


def _servers(request: Request, snapshot: ConsoleSnapshot, base: ServerFilter | None = None) -> dict[str, Any]:
    wanted = ServerFilter.parse(request.query_params)
    if base is not None:
        wanted = ServerFilter(wanted.provider, base.cluster, wanted.status, wanted.sync, wanted.q)
    number, per_page = page_params(request.query_params)
    rows = filter_rows(snapshot.rows, wanted)
    return {
        "servers": paginate(rows, number, per_page),
        "filter": wanted,
        "statuses": STATUSES,
        "sync_states": SYNC_STATES,
        "providers": sorted({r.provider for r in snapshot.rows}),
        "clusters": snapshot.clusters(),
        "list_path": request.url.path,
    }


async def overview(request: Request) -> Response:
    rt = runtime(request)
    principal, session = require(request, rt)
    snapshot = rt.cache.get()
    context = {**_common(rt, snapshot), **_servers(request, snapshot)}
    if _fragment(request) and request.query_params.get("part") == "servers":
        return page(rt.templates, request, "_servers.html", principal=principal, session=session, **context)
    context["alerts"] = ledger.open_alerts(rt.store(), snapshot.deployment, rt.ws.clock.now())
    context["flash"] = text_param(request.query_params, "flash")[:200]
    return page(rt.templates, request, "overview.html", principal=principal, session=session, **context)


async def cluster(request: Request) -> Response:
    rt = runtime(request)
    principal, session = require(request, rt)
    name = request.path_params["name"]
    snapshot = rt.cache.get()
    if name not in snapshot.clusters():
        raise BadRequest(f"there is no cluster {name[:60]!r} in the desired state or the clouds")
    context = {**_common(rt, snapshot), **_servers(request, snapshot, ServerFilter(cluster=name))}
    if _fragment(request) and request.query_params.get("part") == "servers":
        return page(rt.templates, request, "_servers.html", principal=principal, session=session, **context)
    state = snapshot.state
    members = [s for s in (state.servers if state else ()) if s.cluster == name and s.ordinal == 0]
    mine = [r for r in snapshot.rows if r.cluster == name]
    loop = context["daemon"]
    context.update(
        name=name,
        members=members,
        counts={
            m.member: sum(
                1 for s in (state.servers if state else ()) if s.cluster == name and s.member == m.member
            )
            for m in members
        },
        drift=[r for r in mine if r.sync in (DRIFTED, PENDING)][:200],
        backups=[b for b in snapshot.backups if b.key.split("/")[0] == name][:200],
        failover=ledger.failover_state(
            rt.store(),
            snapshot.deployment,
            name,
            [r.key for r in mine if r.status == "error"],
            loop.held_keys,
            rt.ws.clock.now(),
        ),
        groups=[g for g in snapshot.groups if g.cluster == name],
    )
    return page(rt.templates, request, "cluster.html", principal=principal, session=session, **context)


async def plan(request: Request) -> Response:
    rt = runtime(request)
    principal, session = require(request, rt)
    snapshot = rt.cache.get()
    number, per_page = page_params(request.query_params)
    changes = destructive_first(snapshot.plan.changes) if snapshot.plan else []
    context = {**_common(rt, snapshot), "changes": paginate(changes, number, per_page), "plan": snapshot.plan}
    name = "_changes.html" if _fragment(request) else "plan.html"
    return page(rt.templates, request, name, principal=principal, session=session, **context)


async def usage_page(request: Request) -> Response:
    rt = runtime(request)
    principal, session = require(request, rt)
    snapshot = rt.cache.get()
    q, found = usage.requested(request.query_params, rt.store(), snapshot, rt.ws.clock.now())
    report = usage.report(found, q)
    body = rt.usage_html(found, q.by, q.mode) if rt.usage_html is not None else ""
    context = {
        **_common(rt, snapshot),
        "q": q,
        "report": report,
        "report_html": body,
        "periods": usage.PERIODS,
        "groupings": GROUPINGS,
        "modes": REPORT_MODES,
    }
    return page(rt.templates, request, "usage.html", principal=principal, session=session, **context)


async def usage_csv(request: Request) -> Response:
    rt = runtime(request)
    require(request, rt)
    snapshot = rt.cache.get()
    q, found = usage.requested(request.query_params, rt.store(), snapshot, rt.ws.clock.now())
    text = usage.csv_text(found, q)
    name = f"usage-{snapshot.deployment or 'all'}-{q.start:%Y%m%d}-{q.end:%Y%m%d}-{q.by}.csv"
    return PlainTextResponse(
        text,
        media_type="text/csv; charset=utf-8",
        headers={"content-disposition": f'attachment; filename="{name}"'},
    )


def audit_filter(request: Request) -> ledger.AuditFilter:
    params = request.query_params
    action = text_param(params, "action", choices=[a.value for a in AuditAction])
    return ledger.AuditFilter(
        key=text_param(params, "key"),
        action=AuditAction(action) if action else None,
        actor=text_param(params, "actor"),
        commit=text_param(params, "commit"),
        since=time_param(params, "since"),
        until=time_param(params, "until"),
    )


async def audit(request: Request) -> Response:
    rt = runtime(request)
    principal, session = require(request, rt)
    snapshot = rt.cache.get()
    wanted = audit_filter(request)
    number, per_page = page_params(request.query_params)
    found = ledger.audit_page(rt.store(), snapshot.deployment, wanted, number, per_page)
    verified = rt.extra.get("verified")
    query = {k: v for k, v in request.query_params.items() if k not in ("page",) and v}
    context = {
        **_common(rt, snapshot),
        "entries": found,
        "filter": wanted,
        "verified": verified,
        "actions": [a.value for a in AuditAction],
        "query": urlencode(query),
    }
    name = "_audit.html" if _fragment(request) else "audit.html"
    return page(rt.templates, request, name, principal=principal, session=session, **context)


async def audit_verify(request: Request) -> Response:
    rt = runtime(request)
    principal, session = require(request, rt)
    form = await request.form()
    check_csrf(request, session, str(form.get("csrf") or ""))
    rt.extra["verified"] = ledger.verify(rt.store(), rt.ws.store_location(), rt.ws.clock.now())
    return RedirectResponse("/audit", status_code=303)


async def backups(request: Request) -> Response:
    rt = runtime(request)
    principal, session = require(request, rt)
    snapshot = rt.cache.get()
    number, per_page = page_params(request.query_params)
    only = text_param(request.query_params, "show", choices=("all", "overdue", "due"))
    rows = list(snapshot.backups)
    if only == "overdue":
        rows = [b for b in rows if b.status is not None and b.status.overdue]
    elif only == "due":
        rows = [b for b in rows if b.status is not None and b.status.due]
    context = {**_common(rt, snapshot), "backups": paginate(rows, number, per_page), "show": only or "all"}
    return page(rt.templates, request, "backups.html", principal=principal, session=session, **context)


_FORM_ACTIONS = {
    "sync": ConsoleRequestKind.SYNC,
    "backups": ConsoleRequestKind.RUN_BACKUPS,
    "retry": ConsoleRequestKind.RETRY,
    "ack": ConsoleRequestKind.ACKNOWLEDGE,
}


async def action(request: Request) -> Response:
    """``POST /actions/{sync|backups|retry|ack}`` from a page's form; redirects back with the outcome."""
    rt = runtime(request)
    kind = _FORM_ACTIONS.get(request.path_params["name"])
    if kind is None:
        return PlainTextResponse("no such action\n", status_code=404)
    principal, session = require(request, rt)
    form = await request.form()
    check_csrf(request, session, str(form.get("csrf") or ""))
    target = str(form.get("target") or "")[:200]
    outcome = perform(rt, principal, kind, target)
    back = safe_next(str(form.get("back") or "/"))
    separator = "&" if "?" in back else "?"
    if _fragment(request):
        return PlainTextResponse(
            outcome.message, status_code=200 if outcome.status == 202 else outcome.status
        )
    return RedirectResponse(f"{back}{separator}flash={quote(outcome.message)}", status_code=303)
