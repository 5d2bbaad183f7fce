"""daemon.console_port: the web console beside the reconcile loop — what it may ask, how it is built.

``DaemonConsolePort`` is ``console.port.DaemonPort`` over a running ``Daemon``: its status (a
cycle running, the last report, the commit converged, the keys in backoff), the checkout
of its good commit (the desired state the pages show), and the requests an operator may
make — sync now and run due backups (both a fetch and a cycle now, which takes every
backup that is due), retry (the key's backoff forgotten, and a cycle now).

``daemon_console`` puts the console and the daemon's endpoints on one app. Who may use it
is the ``Console`` document of the commit converged; at startup, before a cycle chose one,
that of the branch tip. On a non-loopback address without one the console stays closed
(nobody can sign in; ``/healthz``, ``/readyz``, ``/metrics`` and ``/hooks/git`` are served
as before) and the log says so.
"""

from __future__ import annotations

import time

import structlog

from reconciler.config import load_with_console
from reconciler.console.port import CommitInfo, Desired, LoopStatus
from reconciler.console.runtime import UsageRenderer
from reconciler.console.setup import Console, make_console
from reconciler.core.console_model import ConsoleSpec
from reconciler.core.errors import UserError
from reconciler.daemon.http import status_routes
from reconciler.daemon.loop import Daemon
from reconciler.daemon.source import Commit
from reconciler.run.workspace import Workspace

log = structlog.get_logger("reconciler.daemon")


def _info(commit: Commit) -> CommitInfo:
    return CommitInfo(commit.sha, commit.author, commit.message)


class DaemonConsolePort:
    """What the console asks of a running daemon (thread-safe: it reads, or sets events)."""

    def __init__(self, daemon: Daemon) -> None:
        self.daemon = daemon

    def status(self) -> LoopStatus:
        d = self.daemon
        report = d.last_report
        ready, why = d.ready()
        return LoopStatus(
            present=True,
            running=d.cycling,
            cycles=d.cycles_done,
            outcome=report.outcome.value if report else "",
            message=report.message if report else "",
            changes=report.changes if report else 0,
            applied=report.applied if report else 0,
            failed=report.failed if report else 0,
            held=report.held if report else 0,
            finished_at=d.last_cycle_at,
            ready=ready,
            ready_reason=why,
            commit=_info(d.good) if d.good is not None else None,
            held_keys=tuple(d.ctx.backoff.held(time.monotonic())),
        )

    def desired(self) -> Desired | None:
        good = self.daemon.good
        if good is None:
            return None
        source = self.daemon.source
        root = source.root(good)
        path = root / source.subpath if source.subpath else root
        return Desired(path, _info(good), self.daemon.options.deployment, shown_root=root)

    def sync_now(self) -> None:
        self.daemon.trigger_fetch()

    def run_backups(self) -> None:
        self.daemon.trigger_fetch()

    def retry(self, key: str) -> bool:
        backoff = self.daemon.ctx.backoff
        if not backoff.waiting(key, time.monotonic()):
            return False
        backoff.succeeded(key)
        self.daemon.trigger_fetch()
        return True


def tip_access(daemon: Daemon, tip: Commit | None) -> ConsoleSpec | None:
    """The Console document of the branch tip (None when it has none, or is invalid)."""
    if tip is None:
        return None
    try:
        return load_with_console(daemon.source.checkout(tip), deployment=daemon.options.deployment)[1]
    except UserError:
        return None


def daemon_console(
    daemon: Daemon, tip: Commit | None, listen: str, *, usage_html: UsageRenderer | None = None
) -> Console:
    """The console for ``reconciler run --listen``, with the daemon's endpoints on the same app."""
    spec = tip_access(daemon, tip)
    ws = Workspace(state_dir=daemon.ws.state_dir, clock=daemon.ws.clock, store_url=daemon.ws.store_url)
    console = make_console(
        DaemonConsolePort(daemon),
        ws,
        listen,
        known_access=spec,
        writable=True,
        usage_html=usage_html,
        extra_routes=status_routes(daemon.metrics, daemon.probes()),
        strict=False,
    )
    if console.runtime.closed:
        log.warning(
            "the console is closed: the listener is not on a loopback address and the desired state "
            "declares no Console document; /healthz, /readyz, /metrics and /hooks/git are served",
            listen=listen,
        )
    return console
