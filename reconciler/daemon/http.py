"""daemon.http: the daemon's HTTP endpoints — health, readiness, Prometheus metrics, git webhook.

* ``GET /healthz`` — 200 while the reconcile loop is alive and making progress, else 503;
* ``GET /readyz`` — 200 once a valid desired state is loaded and the clouds were observed,
  503 before that and while shutting down;
* ``GET /metrics`` — Prometheus text format (prometheus-client, a registry of our own);
* ``POST /hooks/git`` — ask for a fetch and a cycle now (GitHub, GitLab or Gitea push
  webhooks). The body is read and ignored: the daemon trusts only what it fetches, so the
  endpoint needs no secret — the worst a caller can do is make it fetch early.

They are Starlette routes (``status_routes``), served on uvicorn in a background thread
(``console.serve``) beside the web console, which ``reconciler run`` mounts at ``/`` on the
same listener; ``start_server`` without an app serves them alone. The listener binds
``127.0.0.1:9108`` by default; put a proxy in front of it before exposing it further.
Requests are served by the listener's own event loop, never by the reconcile loop.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import structlog
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp

from reconciler.console import serve
from reconciler.console.guard import Guard
from reconciler.console.serve import WebServer

log = structlog.get_logger("reconciler.daemon.http")

DEFAULT_LISTEN = serve.DEFAULT_LISTEN
_MAX_BODY = 1 << 20
StatusServer = WebServer
parse_listen = serve.parse_listen


class DaemonMetrics:
    """Every metric the daemon exports, in one registry (not the process-global one)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.cycles = Counter(
            "reconciler_cycles", "Reconcile cycles run, by outcome", ["outcome"], registry=r
        )
        self.cycle_duration = Histogram(
            "reconciler_cycle_duration_seconds",
            "How long one reconcile cycle took",
            buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600),
            registry=r,
        )
        self.changes = Counter(
            "reconciler_changes_applied",
            "Changes the executor finished, by action, provider and result",
            ["action", "provider", "status"],
            registry=r,
        )
        self.errors = Counter("reconciler_errors", "Errors met by the daemon, by kind", ["kind"], registry=r)
        self.drift = Counter(
            "reconciler_drift_found",
            "Servers found different from the desired state behind the reconciler's back, by kind",
            ["kind"],
            registry=r,
        )
        self.servers = Gauge(
            "reconciler_servers",
            "Owned servers observed at the start of the last cycle, by provider and state",
            ["provider", "state"],
            registry=r,
        )
        self.last_sync = Gauge(
            "reconciler_last_successful_sync_timestamp_seconds",
            "Unix time of the last cycle that found (or left) the clouds converged",
            registry=r,
        )
        self.hourly_cost = Gauge(
            "reconciler_hourly_cost",
            "Estimated hourly cost of what runs now, by currency",
            ["currency"],
            registry=r,
        )
        self.desired_hourly_cost = Gauge(
            "reconciler_desired_hourly_cost",
            "Estimated hourly cost of the desired state, by currency",
            ["currency"],
            registry=r,
        )
        self.backoff = Gauge("reconciler_keys_in_backoff", "Server keys held back after failures", registry=r)
        self.alerts = Counter(
            "reconciler_alerts",
            "Alerts delivered or not, by event, sink and result",
            ["event", "sink", "result"],
            registry=r,
        )
        self.scale = Counter(
            "reconciler_scale_decisions",
            "Autoscaler count changes, by member and direction",
            ["member", "direction"],
            registry=r,
        )
        self.failovers = Counter(
            "reconciler_failovers",
            "Failovers started or held back, by member and verdict",
            ["member", "verdict"],
            registry=r,
        )
        self.commit = Gauge(
            "reconciler_desired_commit_info", "The commit being reconciled (value 1)", ["commit"], registry=r
        )
        self.rejected = Counter(
            "reconciler_rejected_commits",
            "Commits refused because their desired state is invalid",
            registry=r,
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)


@dataclass(frozen=True)
class Probes:
    """What the listener asks the daemon: (ok, reason) for health and readiness, and a hook trigger."""

    health: Callable[[], tuple[bool, str]]
    ready: Callable[[], tuple[bool, str]]
    hook: Callable[[], None]


def _text(status: int, text: str) -> Response:
    return PlainTextResponse(text, status_code=status)


def status_routes(metrics: DaemonMetrics, probes: Probes) -> list[BaseRoute]:
    """``/healthz``, ``/readyz``, ``/metrics`` and ``/hooks/git``, as Starlette routes."""

    def probe(check: Callable[[], tuple[bool, str]]) -> Callable[[Request], Response]:
        def answer(request: Request) -> Response:
            ok, reason = check()
            return _text(200 if ok else 503, reason + "\n")

        return answer

    def scrape(request: Request) -> Response:
        return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)

    async def hook(request: Request) -> Response:
        if request.method != "POST":
            return _text(404, "not found; POST /hooks/git triggers a fetch\n")
        async for _ in request.stream():  # read and ignored (Guard bounds its size)
            pass
        probes.hook()
        return _text(202, "fetch scheduled\n")

    return [
        Route("/healthz", probe(probes.health), methods=["GET"]),
        Route("/readyz", probe(probes.ready), methods=["GET"]),
        Route("/metrics", scrape, methods=["GET"]),
        Route("/hooks/git", hook, methods=["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH"]),
    ]


def status_app(metrics: DaemonMetrics, probes: Probes) -> Starlette:
    """The endpoints alone (no console): anything else is 404."""

    async def missing(request: Request, exc: Exception) -> Response:
        return _text(404, "not found; try /healthz, /readyz, /metrics or POST /hooks/git\n")

    return Starlette(
        routes=status_routes(metrics, probes),
        middleware=[Middleware(Guard, max_body=_MAX_BODY)],
        exception_handlers={404: missing, 405: missing},
    )


def start_server(
    listen: str,
    metrics: DaemonMetrics,
    probes: Probes,
    *,
    app: ASGIApp | None = None,
    tls: tuple[str | None, str | None] = (None, None),
) -> StatusServer:
    """Bind and serve in a background thread (``server.shutdown()`` stops it): ``app`` (the console
    with these routes mounted), or the endpoints alone; https with ``tls`` (certificate, key)."""
    chosen = app if app is not None else status_app(metrics, probes)
    return serve.start(chosen, listen, tls_cert=tls[0], tls_key=tls[1])
