"""console.setup: put a console together — the runtime for a loop (or none), its app, its listener.

``reconciler console PATH`` and ``reconciler run`` both call ``make_console``: it checks
where the console may listen (``app.check_exposure``), makes the snapshot cache over the
desired state the port names, the cookie signer and the templates, and the Starlette app
with the caller's extra routes. ``known_access`` is the Console document the caller
already read (at startup), so access is decided before the first snapshot is made.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass

from starlette.applications import Starlette
from starlette.routing import BaseRoute

from reconciler.config.console import is_loopback
from reconciler.console.app import build_app, check_exposure
from reconciler.console.port import DaemonPort, Desired
from reconciler.console.render import environment
from reconciler.console.runtime import Runtime, UsageRenderer
from reconciler.console.serve import parse_listen
from reconciler.console.session import Signer, session_key
from reconciler.console.snapshot import ConsoleSnapshot, SnapshotCache, build_snapshot
from reconciler.core.console_model import ConsoleSpec
from reconciler.run.workspace import Workspace


@dataclass(frozen=True)
class Console:
    app: Starlette
    runtime: Runtime

    def stop(self) -> None:
        """Ask open event streams to end (before the listener shuts down)."""
        stopping = self.runtime.extra.get("stopping")
        if isinstance(stopping, threading.Event):
            stopping.set()


def _reader(port: DaemonPort, ws: Workspace) -> ConsoleSnapshot:
    desired: Desired | None = port.desired()
    if desired is None:
        status = port.status()
        return ConsoleSnapshot(
            taken_at=ws.clock.now(),
            seconds=0.0,
            deployment="",
            source="",
            problems=(status.message or "no valid commit to reconcile yet",),
        )
    return build_snapshot(desired, ws)


def make_console(
    port: DaemonPort,
    ws: Workspace,
    listen: str,
    *,
    known_access: ConsoleSpec | None,
    writable: bool,
    usage_html: UsageRenderer | None = None,
    extra_routes: Sequence[BaseRoute] = (),
    max_age: float = 30.0,
    strict: bool = True,
) -> Console:
    """The console's app and runtime. ``strict``: refuse (``UserError``) a non-loopback ``listen``
    without a Console document; otherwise the console stays closed there until one is declared."""
    if strict:
        check_exposure(listen, known_access)
    loopback = is_loopback(parse_listen(listen)[0])
    cache = SnapshotCache(lambda: _reader(port, ws), max_age=max_age, epoch=lambda: port.status().cycles)
    cache.access, cache.access_loaded = known_access, True
    runtime = Runtime(
        port=port,
        cache=cache,
        ws=ws,
        signer=Signer(session_key(ws.state_dir)),
        templates=environment(),
        loopback=loopback,
        writable=writable,
        usage_html=usage_html,
    )
    runtime.extra["stopping"] = threading.Event()
    return Console(build_app(runtime, extra_routes), runtime)
