"""Helpers of the console tests: a fake reconcile loop, a console app over a desired state, signing in."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from starlette.testclient import TestClient

from reconciler.config import load_with_console
from reconciler.console.port import CommitInfo, Desired, LoopStatus
from reconciler.console.setup import Console, make_console
from reconciler.core.clock import Clock
from reconciler.run.workspace import Workspace
from tests.console.conftest import PASSWORDS

CSRF_INPUT = re.compile(r'<input type="hidden" name="csrf" value="([^"]+)">')
CSRF_META = re.compile(r'<meta name="csrf" content="([^"]*)">')


@dataclass
class FakeLoop:
    """A reconcile loop that only counts what it is asked."""

    path: Path
    syncs: int = 0
    backups: int = 0
    retried: list[str] = field(default_factory=list)
    held: tuple[str, ...] = ("shop/web/1",)
    cycles: int = 0
    running: bool = False

    def status(self) -> LoopStatus:
        return LoopStatus(
            present=True,
            running=self.running,
            cycles=self.cycles,
            outcome="converged",
            finished_at=datetime(2026, 11, 3, tzinfo=UTC),
            ready=True,
            commit=CommitInfo("0123456789abcdef0123", "Ada", "shop with two web"),
            held_keys=self.held,
        )

    def desired(self) -> Desired | None:
        return Desired(self.path, CommitInfo("0123456789abcdef0123", "Ada", "shop with two web"))

    def sync_now(self) -> None:
        self.syncs += 1

    def run_backups(self) -> None:
        self.backups += 1

    def retry(self, key: str) -> bool:
        if key not in self.held:
            return False
        self.retried.append(key)
        return True


def console_for(
    folder: Path, state_dir: Path, port: object, *, listen: str = "127.0.0.1:0", writable: bool = True
) -> Console:
    _, spec = load_with_console(folder)
    state_dir.mkdir(parents=True, exist_ok=True)
    ws = Workspace(state_dir=state_dir, clock=Clock())
    return make_console(port, ws, listen, known_access=spec, writable=writable)  # type: ignore[arg-type]


def login(client: TestClient, user: str, password: str | None = None) -> str:
    """Sign ``user`` in; returns the session's CSRF token (from the overview's meta tag)."""
    form = client.get("/login")
    assert form.status_code == 200
    token = CSRF_INPUT.search(form.text)
    assert token is not None
    answer = client.post(
        "/login",
        data={"username": user, "password": password or PASSWORDS[user], "csrf": token.group(1)},
        follow_redirects=False,
    )
    assert answer.status_code == 303, answer.text
    page = client.get("/")
    assert page.status_code == 200
    meta = CSRF_META.search(page.text)
    assert meta is not None and meta.group(1)
    return meta.group(1)
