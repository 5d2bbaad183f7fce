"""console.app: the Starlette application — the console's routes, their errors, and who may expose it.

``build_app(runtime, extra_routes)`` mounts the pages, the login, the API, the event stream
and ``/static`` (the console's CSS and JS, and the vendored htmx), plus ``extra_routes``
(the daemon's ``/healthz``, ``/readyz``, ``/metrics`` and ``/hooks/git``, which need no
session). Errors answer as the caller expects: a page without a session redirects to
``/login``; the API and the event stream answer 401 JSON; 403, 400 and 429 name the
reason; anything unexpected is logged and answered 500 without a traceback.

``check_exposure`` is the rule for where the console may listen: on a non-loopback address
only when the desired state declares who may use it (a ``Console`` document).
"""

from __future__ import annotations

from collections.abc import Sequence

import structlog
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from reconciler.config.console import is_loopback
from reconciler.console import api, auth_routes, events, oidc, pages
from reconciler.console.guard import Guard
from reconciler.console.render import page
from reconciler.console.runtime import Forbidden, Runtime, TooMany, Unauthorized
from reconciler.console.serve import parse_listen
from reconciler.console.views import BadRequest
from reconciler.core.console_model import ConsoleSpec
from reconciler.core.errors import UserError

log = structlog.get_logger("reconciler.console")


def check_exposure(listen: str, spec: ConsoleSpec | None) -> bool:
    """Whether ``listen`` is a loopback address; ``UserError`` for any other without a Console document."""
    host, _ = parse_listen(listen)
    loopback = is_loopback(host)
    if not loopback and spec is None:
        raise UserError(
            f"--listen {listen} is not a loopback address, and the desired state has no Console "
            "document: the console would be open to anyone who reaches it. Declare who may use it "
            "(kind: Console, see the README's Console section), or listen on 127.0.0.1"
        )
    return loopback


def _api(request: Request) -> bool:
    path = request.url.path
    return path.startswith("/api/") or path == "/events"


def _error(request: Request, status: int, reason: str, headers: dict[str, str] | None = None) -> Response:
    if _api(request) or "text/html" not in request.headers.get("accept", "text/html"):
        return JSONResponse({"error": reason}, status_code=status, headers=headers)
    rt: Runtime = request.app.state.console
    return page(
        rt.templates,
        request,
        "error.html",
        principal=None,
        session=None,
        status=status,
        headers=headers,
        status_code=status,
        reason=reason,
    )


async def _unauthorized(request: Request, exc: Exception) -> Response:
    if _api(request):
        return JSONResponse(
            {"error": "sign in first, or send Authorization: Bearer <token>"},
            status_code=401,
            headers={"www-authenticate": 'Bearer realm="reconciler"'},
        )
    return auth_routes.login_redirect(request)


async def _forbidden(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, Forbidden)
    return _error(request, 403, exc.reason)


async def _too_many(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, TooMany)
    return _error(request, 429, str(exc), {"retry-after": str(int(exc.retry_after) + 1)})


async def _bad(request: Request, exc: Exception) -> Response:
    return _error(request, 400, str(exc))


async def _http(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        return PlainTextResponse("not found\n", status_code=404)
    return PlainTextResponse(f"{exc.detail}\n", status_code=exc.status_code, headers=exc.headers)


async def _crash(request: Request, exc: Exception) -> Response:
    log.error("console request failed", path=request.url.path, error=repr(exc), exc_info=exc)
    return PlainTextResponse("internal error; see the console's log\n", status_code=500)


async def _login(request: Request) -> Response:
    if request.method == "POST":
        return await auth_routes.login(request)
    return await auth_routes.login_form(request)


def console_routes() -> list[BaseRoute]:
    return [
        Route("/", pages.overview),
        Route("/login", _login, methods=["GET", "POST"]),
        Route("/logout", auth_routes.logout, methods=["POST"]),
        Route("/clusters/{name}", pages.cluster),
        Route("/plan", pages.plan),
        Route("/usage", pages.usage_page),
        Route("/usage.csv", pages.usage_csv),
        Route("/audit", pages.audit),
        Route("/audit/verify", pages.audit_verify, methods=["POST"]),
        Route("/backups", pages.backups),
        Route("/actions/{name}", pages.action, methods=["POST"]),
        Route("/events", events.stream),
        Route("/api/v1/servers", api.servers),
        Route("/api/v1/clusters", api.clusters),
        Route("/api/v1/plan", api.plan),
        Route("/api/v1/usage", api.usage_report),
        Route("/api/v1/audit", api.audit),
        Route("/api/v1/status", api.status),
        Route("/api/v1/sync", api.sync, methods=["POST"]),
        Route("/api/v1/backups", api.run_backups, methods=["POST"]),
        Route("/api/v1/servers/{key:path}/retry", api.retry, methods=["POST"]),
        Route("/api/v1/alerts/{seq:int}/ack", api.acknowledge, methods=["POST"]),
        *oidc.oidc_routes(),
        Mount("/static", StaticFiles(packages=[("reconciler.console", "static")]), name="static"),
    ]


def build_app(rt: Runtime, extra_routes: Sequence[BaseRoute] = ()) -> Starlette:
    app = Starlette(
        routes=[*extra_routes, *console_routes()],
        middleware=[Middleware(Guard)],
        exception_handlers={
            Unauthorized: _unauthorized,
            Forbidden: _forbidden,
            TooMany: _too_many,
            BadRequest: _bad,
            **oidc.EXCEPTION_HANDLERS,
            HTTPException: _http,
            Exception: _crash,
        },
    )
    app.state.console = rt
    return app
