"""daemon.http: the daemon's one HTTP listener — health, readiness, Prometheus metrics, git webhook.

* ``GET /healthz`` — 200 while the reconcile loop is alive and making progress, else 503;
* ``GET /readyz`` — 200 once a valid desired state is loaded and the clouds were observed,
  503 before that and while shutting down;
* ``GET /metrics`` — Prometheus text format (prometheus-client, a registry of our own);
* ``POST /hooks/git`` — ask for a fetch and a cycle now (GitHub, GitLab or Gitea push
  webhooks). The body is read and ignored: the daemon trusts only what it fetches, so the
  endpoint needs no secret — the worst a caller can do is make it fetch early.

The listener binds ``127.0.0.1:9108`` by default; put a proxy in front of it before
exposing it further. Requests are served from a small thread pool, never from the loop.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import structlog
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

from reconciler.core.errors import UserError

log = structlog.get_logger("reconciler.daemon.http")

DEFAULT_LISTEN = "127.0.0.1:9108"
_MAX_BODY = 1 << 20


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


def parse_listen(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:9108`` for IPv6) → (host, port)."""
    host, sep, port = text.strip().rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise UserError(f"--listen {text!r} is not HOST:PORT; write it like {DEFAULT_LISTEN}")
    return host, int(port)


class StatusServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], metrics: DaemonMetrics, probes: Probes) -> None:
        self.metrics = metrics
        self.probes = probes
        super().__init__(address, _Handler)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"


class _Handler(BaseHTTPRequestHandler):
    server: StatusServer
    protocol_version = "HTTP/1.1"

    def _send(self, status: int, body: bytes, content_type: str = "text/plain; charset=utf-8") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _probe(self, probe: Callable[[], tuple[bool, str]]) -> None:
        ok, reason = probe()
        self._send(200 if ok else 503, (reason + "\n").encode())

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        path = self.path.split("?", 1)[0]
        if path == "/healthz":
            self._probe(self.server.probes.health)
        elif path == "/readyz":
            self._probe(self.server.probes.ready)
        elif path == "/metrics":
            self._send(200, self.server.metrics.render(), CONTENT_TYPE_LATEST)
        else:
            self._send(404, b"not found; try /healthz, /readyz, /metrics or POST /hooks/git\n")

    do_HEAD = do_GET

    def do_POST(self) -> None:  # noqa: N802
        length = int(self.headers.get("Content-Length") or 0)
        if length > _MAX_BODY:
            self._send(413, b"body too large\n")
            return
        if length:
            self.rfile.read(length)
        if self.path.split("?", 1)[0] != "/hooks/git":
            self._send(404, b"not found; POST /hooks/git triggers a fetch\n")
            return
        self.server.probes.hook()
        self._send(202, b"fetch scheduled\n")

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's name
        log.debug("http", client=self.client_address[0], request=format % args)


def start_server(listen: str, metrics: DaemonMetrics, probes: Probes) -> StatusServer:
    """Bind and serve in a background thread (``server.shutdown()`` stops it)."""
    host, port = parse_listen(listen)
    try:
        server = StatusServer((host, port), metrics, probes)
    except OSError as exc:
        raise UserError(f"--listen {listen}: cannot listen there ({exc.strerror or exc})") from None
    threading.Thread(target=server.serve_forever, name="http", daemon=True).start()
    return server
