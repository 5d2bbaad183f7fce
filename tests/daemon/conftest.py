"""Fixtures for the daemon tests: real git repositories, the daemon as a real subprocess on
simcloud, a tiny HTTP server that records webhook alerts, and the e2e ``cli`` fixture."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from providers.simcloud.admin import admin_list
from reconciler.cli.main import main
from reconciler.config import resolve_secret
from reconciler.core.clock import Clock
from reconciler.daemon.alerts import Alerter
from reconciler.daemon.backoff import KeyBackoff
from reconciler.daemon.context import CycleContext, CycleOutcome, CycleReport, DaemonOptions
from reconciler.daemon.cycle import reconcile
from reconciler.daemon.http import DaemonMetrics
from reconciler.run.audit import RunContext
from reconciler.run.workspace import Workspace
from tests.e2e.conftest import NOW, REPO, Cli, Result, state_dir  # noqa: F401 - state_dir: a shared fixture

PROVIDERS = """\
apiVersion: reconciler/v1
kind: Provider
metadata:
  name: sim
spec:
  type: simcloud
  price_list: standard
---
apiVersion: reconciler/v1
kind: PriceList
metadata:
  name: standard
spec:
  currency: USD
  flavors:
    sim.small: "0.0100"
"""

TEMPLATES = """\
apiVersion: reconciler/v1
kind: ServerTemplate
metadata:
  name: web
spec:
  image:
    simcloud: debian-12
  size:
    cpus: 1
    memory_mb: 1024
    disk_gb: 10
  flavor:
    simcloud: sim.small
"""


def cluster(web: int | str = 2, *, extra: str = "") -> str:
    """A cluster ``shop``: ``web`` servers (replaced at once on failure) and one ``db`` (restarted)."""
    return f"""\
apiVersion: reconciler/v1
kind: Cluster
metadata:
  name: shop
spec:
  provider: sim
  members:
    db:
      template: web
      count: 1
      failover:
        mode: restart
        grace_seconds: 0
    web:
      template: web
      count: {web}
      depends_on: [db]
      failover:
        mode: replace
        grace_seconds: 0
        max_per_hour: 10
{extra}"""


def webhook_sink(url: str) -> str:
    return f"""\
apiVersion: reconciler/v1
kind: AlertSink
metadata:
  name: ops
spec:
  type: webhook
  url: {url}
  timeout_seconds: 2
  retries: 2
"""


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], state_dir: Path) -> Cli:  # noqa: F811
    """The real ``reconciler`` command, in this process (fast): like the e2e ``cli`` fixture."""

    def run(*args: str, env: dict[str, str] | None = None, now: str | None = NOW) -> Result:
        for name in [k for k in os.environ if k.startswith("RECONCILER_")]:
            monkeypatch.delenv(name)
        monkeypatch.setenv("RECONCILER_STATE_DIR", str(state_dir))
        if now is not None:
            monkeypatch.setenv("RECONCILER_NOW", now)
        for name, value in (env or {}).items():
            monkeypatch.setenv(name, value)
        capsys.readouterr()
        code = main(list(args))
        out, err = capsys.readouterr()
        return Result(code, out, err)

    return run


# --- git ------------------------------------------------------------------------------------------
@dataclass
class GitRepo:
    path: Path

    @property
    def url(self) -> str:
        return self.path.as_uri()

    def git(self, *args: str) -> str:
        env = {
            **os.environ,
            "GIT_CONFIG_NOSYSTEM": "1",
            "HOME": str(self.path.parent),
        }
        done = subprocess.run(
            ["git", *args], cwd=self.path, env=env, capture_output=True, text=True, check=True, timeout=30
        )
        return done.stdout.strip()

    def commit(
        self, files: dict[str, str], message: str, author: str = "Ada Lovelace <ada@example.com>"
    ) -> str:
        """Write the files (below the repository's clusters/ folder), commit them, return the sha."""
        for name, text in files.items():
            target = self.path / "clusters" / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
        name, _, email = author.partition(" <")
        self.git("add", "-A")
        self.git(
            "-c",
            f"user.name={name}",
            "-c",
            f"user.email={email.rstrip('>')}",
            "commit",
            "-q",
            "-m",
            message,
        )
        return self.git("rev-parse", "HEAD")


@pytest.fixture
def repo(tmp_path: Path) -> GitRepo:
    """A git repository ``infra`` on branch main with a valid first commit (shop: db + 2 web)."""
    path = tmp_path / "infra"
    path.mkdir()
    git_repo = GitRepo(path)
    git_repo.git("init", "-q", "-b", "main")
    git_repo.commit(
        {"providers.yaml": PROVIDERS, "templates.yaml": TEMPLATES, "shop.yaml": cluster(2)},
        "shop with two web",
    )
    return git_repo


# --- webhook receiver -------------------------------------------------------------------------------
@dataclass
class Receiver:
    url: str
    received: list[dict[str, Any]] = field(default_factory=list)
    failures_left: int = 0  # answer fail_status this many times first
    fail_status: int = 500
    delay: float = 0.0  # seconds to wait before answering
    attempts: int = 0  # POSTs received, answered or not

    def wait_for(self, predicate: Callable[[dict[str, Any]], bool], timeout: float = 15) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for item in list(self.received):
                if predicate(item):
                    return item
            time.sleep(0.05)
        raise AssertionError(f"no matching alert within {timeout}s; got {self.received}")


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """An HTTP server on 127.0.0.1 that records every JSON body POSTed to it."""
    box: dict[str, Receiver] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            sink = box["r"]
            sink.attempts += 1
            time.sleep(sink.delay)
            if sink.failures_left > 0:
                sink.failures_left -= 1
                self.send_response(sink.fail_status)
                self.end_headers()
                return
            payload = json.loads(body)
            payload["_headers"] = {k.lower(): v for k, v in self.headers.items()}
            sink.received.append(payload)
            self.send_response(204)
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    box["r"] = Receiver(url=f"http://127.0.0.1:{server.server_address[1]}/alerts")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield box["r"]
    server.shutdown()
    server.server_close()


# --- the daemon as a subprocess ---------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(predicate: Callable[[], bool], timeout: float = 20, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


@dataclass
class DaemonProcess:
    proc: subprocess.Popen[str]
    state_dir: Path
    port: int
    log_path: Path

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def servers(self) -> list[dict[str, Any]]:
        return admin_list(self.state_dir) if (self.state_dir / "simcloud.db").exists() else []

    def running(self) -> dict[str, dict[str, Any]]:
        return {s["key"]: s for s in self.servers() if s["status"] == "running"}

    def get(self, path: str) -> tuple[int, str]:
        import urllib.error
        import urllib.request

        try:
            with urllib.request.urlopen(self.base + path, timeout=5) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()

    def metrics(self) -> dict[str, list[tuple[dict[str, str], float]]]:
        """name → [(labels, value)], parsed with prometheus-client's own parser."""
        status, text = self.get("/metrics")
        assert status == 200
        found: dict[str, list[tuple[dict[str, str], float]]] = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                found.setdefault(sample.name, []).append((dict(sample.labels), sample.value))
        return found

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def stop(self, timeout: float = 20) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=timeout)


StartDaemon = Callable[..., DaemonProcess]


@pytest.fixture
def start_daemon(tmp_path: Path, state_dir: Path) -> Iterator[StartDaemon]:  # noqa: F811
    started: list[DaemonProcess] = []

    def start(repo: GitRepo, *extra: str, interval: float = 0.4, wait_ready: bool = True) -> DaemonProcess:
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("RECONCILER_")}
        env.update({"RECONCILER_STATE_DIR": str(state_dir), "PYTHONPATH": str(REPO)})
        log_path = tmp_path / f"daemon-{len(started)}.log"
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "reconciler",
                "run",
                "--source",
                repo.url,
                "--path",
                "clusters",
                "--interval",
                str(interval),
                "--git-poll",
                "0.2",
                "--listen",
                f"127.0.0.1:{port}",
                *extra,
            ],
            cwd=tmp_path,
            env=env,
            stdout=log_path.open("w"),
            stderr=subprocess.STDOUT,
            text=True,
            stdin=subprocess.DEVNULL,
        )
        daemon = DaemonProcess(proc, state_dir, port, log_path)
        started.append(daemon)
        if wait_ready:
            wait_until(lambda: _ready(daemon), timeout=30, what=f"the daemon to be ready:\n{daemon.log()}")
        return daemon

    yield start
    for daemon in started:
        if daemon.proc.poll() is None:
            daemon.proc.kill()
            daemon.proc.wait(timeout=10)


def _ready(daemon: DaemonProcess) -> bool:
    if daemon.proc.poll() is not None:
        raise AssertionError(f"the daemon exited with {daemon.proc.returncode}:\n{daemon.log()}")
    try:
        return daemon.get("/readyz")[0] == 200
    except OSError:
        return False


# --- daemon cycles in this process, on a fixed clock ------------------------------------------------
T0 = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)


@dataclass
class Cycles:
    """``reconcile`` called directly, the clock fixed at ``T0 + seconds`` for each cycle."""

    ws: Workspace
    ctx: CycleContext
    folder: Path

    def at(self, seconds: float) -> CycleOutcome:
        return self.report(seconds).outcome

    def report(self, seconds: float) -> CycleReport:
        self.ws.clock.fixed = T0 + timedelta(seconds=seconds)
        run = RunContext(run_id=f"run{seconds:g}", actor="Ada <ada@example.com>", commit="c0ffee")
        return reconcile(self.ctx, self.folder, run)

    def web(self) -> list[str]:
        return sorted(s["key"] for s in admin_list(self.ws.state_dir) if s["key"].startswith("shop/web/"))


@contextmanager
def in_process_cycles(tmp_path: Path, files: dict[str, str]) -> Iterator[Cycles]:
    """A desired-state folder ``shop`` (providers, templates and ``files``) and a cycle context."""
    folder = tmp_path / "shop"
    folder.mkdir()
    for name, text in {"providers.yaml": PROVIDERS, "templates.yaml": TEMPLATES, **files}.items():
        (folder / name).write_text(text, encoding="utf-8")
    ws = Workspace(state_dir=tmp_path / "state", clock=Clock(fixed=T0))
    alerter = Alerter(resolve_secret=resolve_secret)
    ctx = CycleContext(
        ws=ws,
        options=DaemonOptions(source="unused"),
        backoff=KeyBackoff(base_seconds=60),
        metrics=DaemonMetrics(),
        alerter=alerter,
        identity="test-daemon@nowhere:1",
        cancel=lambda: False,
        heartbeat=lambda: None,
    )
    try:
        yield Cycles(ws, ctx, folder)
    finally:
        alerter.close(1.0)
        ws.close()
