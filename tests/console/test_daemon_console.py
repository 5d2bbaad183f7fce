"""The console beside a real daemon: one listener for console and probes, sync now, the live stream."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import httpx

from providers.simcloud.admin import admin_delete
from reconciler.core.records import AuditAction
from tests.console.conftest import PASSWORDS
from tests.console.support import CSRF_INPUT, CSRF_META
from tests.daemon.conftest import DaemonProcess, wait_until


def _login(base: str, user: str) -> tuple[httpx.Client, str]:
    client = httpx.Client(base_url=base, timeout=10)
    form = client.get("/login")
    token = CSRF_INPUT.search(form.text)
    assert token is not None
    answer = client.post(
        "/login", data={"username": user, "password": PASSWORDS[user], "csrf": token.group(1)}
    )
    assert answer.status_code == 303, answer.text
    meta = CSRF_META.search(client.get("/").text)
    assert meta is not None
    return client, meta.group(1)


class Stream:
    """The events of ``/events``, read in a thread."""

    def __init__(self, client: httpx.Client) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []
        self._client = client
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        try:
            self._follow()
        except httpx.HTTPError:  # the daemon stopped at the end of the test
            pass

    def _follow(self) -> None:
        with self._client.stream("GET", "/events", timeout=30) as answer:
            assert answer.status_code == 200 and answer.headers["content-type"].startswith(
                "text/event-stream"
            )
            kind = ""
            for line in answer.iter_lines():
                if self._stop.is_set():
                    return
                if line.startswith("event: "):
                    kind = line[len("event: ") :]
                elif line.startswith("data: "):
                    self.events.append((kind, json.loads(line[len("data: ") :])))

    def wait(self, kind: str, test: Any, timeout: float = 20) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for found, data in list(self.events):
                if found == kind and test(data):
                    return data
            time.sleep(0.05)
        raise AssertionError(f"no {kind} event matched within {timeout}s; got {self.events}")

    def close(self) -> None:
        self._stop.set()


def test_sync_now_runs_a_cycle_seen_live(console_daemon: DaemonProcess) -> None:
    daemon = console_daemon
    assert daemon.get("/healthz")[0] == 200 and daemon.get("/readyz") == (200, "ok\n")
    assert daemon.get("/metrics")[0] == 200
    assert daemon.get("/hooks/git")[0] == 404
    wait_until(lambda: len(daemon.running()) == 3, what="the first cycle to converge")

    alice, csrf = _login(daemon.base, "alice")
    status = alice.get("/api/v1/status").json()
    assert status["loop"] and status["commit"] and status["outcome"] == "converged"
    stream = Stream(alice)
    try:
        first = stream.wait("loop", lambda d: True)
        admin_delete(daemon.state_dir, "shop/web/1")  # behind the daemon's back; no cycle is due
        time.sleep(0.6)
        assert "shop/web/1" not in daemon.running()
        answer = alice.post("/api/v1/sync", headers={"X-CSRF-Token": csrf})
        assert answer.status_code == 202, answer.text
        stream.wait("audit", lambda d: d["action"] == "console" and d["actor"] == "console:alice")
        stream.wait(
            "audit",
            lambda d: d["action"] == "create" and d["key"] == "shop/web/1" and d["outcome"] == "succeeded",
        )
        done = stream.wait("loop", lambda d: d["cycles"] > first["cycles"] and not d["running"])
        assert done["outcome"] == "converged"
    finally:
        stream.close()
    assert "shop/web/1" in daemon.running()

    victor, victor_csrf = _login(daemon.base, "victor")
    assert 'id="sync-now"' not in victor.get("/").text
    assert victor.post("/api/v1/sync", headers={"X-CSRF-Token": victor_csrf}).status_code == 403
    assert victor.post("/actions/sync", data={"csrf": victor_csrf}).status_code == 403
    entries = alice.get("/api/v1/audit", params={"action": AuditAction.CONSOLE.value}).json()["entries"]
    assert [e["actor"] for e in entries] == ["console:alice"]
