"""console.events: ``GET /events`` — live updates as server-sent events.

Twice a second the stream looks at the reconcile loop (``port.status()``) and at the audit
ledger's newest entries, and sends what changed:

* ``event: loop`` — the loop's status (a cycle started or finished, its outcome), JSON;
* ``event: audit`` — each new audit entry of the deployment (``id:`` is its seq, so a
  reconnecting browser resumes with ``Last-Event-ID``), JSON with a one-line ``text``.

A finished cycle also marks the snapshot stale, so the pages show what it did. A comment
every 15 s keeps proxies from closing an idle stream; the stream ends when the session
does, after ``MAX_STREAM_SECONDS`` (the browser reconnects by itself), or when the
console stops. Only the viewer role is needed.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Any

import anyio
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from reconciler.console.api import status_dict
from reconciler.console.auth_routes import runtime
from reconciler.console.ledger import ALL_ACTIONS
from reconciler.console.runtime import Runtime, require
from reconciler.core.clock import isoformat
from reconciler.core.records import AuditEntry

TICK_SECONDS = 0.5
KEEPALIVE_SECONDS = 15.0
MAX_STREAM_SECONDS = 600.0
_MAX_PER_TICK = 100


def entry_event(entry: AuditEntry) -> dict[str, Any]:
    record = entry.record
    subject = f" {record.key}" if record.key else ""
    text = f"{record.action.value}{subject}: {record.outcome.value}"
    if record.error:
        text += f" — {record.error[:200]}"
    return {
        "seq": entry.seq,
        "at": isoformat(entry.at),
        "action": record.action.value,
        "outcome": record.outcome.value,
        "key": record.key,
        "actor": record.actor,
        "text": text,
    }


def _message(event: str, data: dict[str, Any], ident: int | None = None) -> str:
    head = f"id: {ident}\n" if ident is not None else ""
    return f"{head}event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


def _newest(rt: Runtime, deployment: str) -> int:
    store = rt.store()
    if store is None:
        return 0
    found = store.recent_audit(deployment, ALL_ACTIONS, limit=1)
    return found[0].seq if found else 0


def _after(rt: Runtime, deployment: str, seq: int) -> list[AuditEntry]:
    store = rt.store()
    if store is None:
        return []
    found: list[AuditEntry] = []
    for entry in store.audit_log(deployment=deployment, since_seq=seq):
        found.append(entry)
        if len(found) >= _MAX_PER_TICK:
            break
    return found


async def stream(request: Request) -> Response:
    rt = runtime(request)
    require(request, rt)
    deployment = rt.cache.get().deployment
    resume = request.headers.get("last-event-id", "")
    start_seq = int(resume) if resume.isdigit() else await anyio.to_thread.run_sync(_newest, rt, deployment)

    async def events() -> AsyncIterator[str]:
        seq = start_seq
        status = rt.port.status()
        yield "retry: 2000\n\n" + _message("loop", status_dict(status))
        began = last_sent = time.monotonic()
        stopping = rt.extra.get("stopping")
        while time.monotonic() - began < MAX_STREAM_SECONDS:
            await anyio.sleep(TICK_SECONDS)
            if await request.is_disconnected() or (stopping is not None and stopping.is_set()):
                return
            if require_quietly(request, rt) is False:
                yield _message("signed-out", {})
                return
            now_status = rt.port.status()
            if (now_status.running, now_status.cycles) != (status.running, status.cycles):
                if now_status.cycles != status.cycles:
                    rt.cache.invalidate()
                status = now_status
                yield _message("loop", status_dict(status))
                last_sent = time.monotonic()
            for entry in await anyio.to_thread.run_sync(_after, rt, deployment, seq):
                seq = entry.seq
                yield _message("audit", entry_event(entry), entry.seq)
                last_sent = time.monotonic()
            if time.monotonic() - last_sent > KEEPALIVE_SECONDS:
                yield ": keepalive\n\n"
                last_sent = time.monotonic()

    return StreamingResponse(
        events(),
        media_type="text/event-stream",
        headers={"cache-control": "no-store", "x-accel-buffering": "no"},
    )


def require_quietly(request: Request, rt: Runtime) -> bool:
    """Whether the request's session (or token) still stands."""
    try:
        require(request, rt)
    except Exception:
        return False
    return True
