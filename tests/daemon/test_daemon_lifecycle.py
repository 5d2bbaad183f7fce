"""The daemon across restarts and shutdowns: ``--once``, resuming the last good commit from the
ledger after a restart onto an invalid tip, and SIGTERM in the middle of an apply."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import structlog

from reconciler.cli import logs
from reconciler.core.records import AuditAction, Outcome
from reconciler.daemon.context import CycleOutcome, DaemonOptions
from reconciler.daemon.loop import Daemon
from reconciler.run.workspace import Workspace
from reconciler.store.sqlite import SQLiteStore
from tests.daemon.conftest import PROVIDERS, GitRepo, StartDaemon, cluster, wait_until
from tests.e2e.conftest import REPO, Cli


def _once(repo: GitRepo, state_dir: Path, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECONCILER_")}
    env.update({"RECONCILER_STATE_DIR": str(state_dir), "PYTHONPATH": str(REPO)})
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "reconciler",
            "run",
            "--source",
            str(repo.path),
            "--path",
            "clusters",
            "--once",
            "--listen",
            "off",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )


def test_restart_onto_an_invalid_tip_resumes_the_last_good_commit(
    repo: GitRepo, state_dir: Path, tmp_path: Path
) -> None:
    good = repo.git("rev-parse", "HEAD")
    first = _once(repo, state_dir, tmp_path)
    assert first.returncode == 0, first.stderr
    assert [json.loads(line)["event"] for line in first.stderr.splitlines()][-1] == "stopped"  # JSON logs

    bad = repo.commit({"shop.yaml": cluster(2, extra="    extra: {}\n")}, "a member with no template")
    logs.configure(verbosity=1)  # info lines reach capture_logs whatever an earlier test configured
    for _ in range(2):  # restarted twice: the second must not record the same rejection again
        ws = Workspace(state_dir=state_dir)
        daemon = Daemon(DaemonOptions(source=str(repo.path), path="clusters", once=True), ws)
        with structlog.testing.capture_logs() as captured:
            daemon.run()
        daemon.finish(clean=True)
        ws.close()
        assert daemon.last_report is not None and daemon.last_report.outcome is CycleOutcome.CONVERGED
        assert daemon.good is not None and daemon.good.sha == good
        assert any(e["event"] == "resuming the last good commit from the ledger" for e in captured)

    with SQLiteStore(state_dir / "state.db") as store:
        entries = list(store.audit_log())
        assert store.verify().ok
    rejected = [e for e in entries if e.record.action is AuditAction.REJECTED]
    assert [e.record.commit for e in rejected] == [bad]
    assert "clusters/shop.yaml:" in rejected[0].record.error and "template" in rejected[0].record.error
    assert json.loads(rejected[0].record.detail)["kept"] is None  # nothing good was known when it was seen
    assert {e.record.commit for e in entries if e.record.action is AuditAction.COMMIT} == {good}
    created = [
        e for e in entries if e.record.action is AuditAction.CREATE and e.record.outcome is Outcome.SUCCEEDED
    ]
    assert len(created) == 3  # converged once; the restarts changed nothing


def test_run_refuses_a_fixed_clock(cli: Cli, repo: GitRepo) -> None:
    result = cli("run", "--source", str(repo.path), "--once", "--listen", "off")  # cli fixes RECONCILER_NOW
    assert result.code == 1 and "run keeps real time" in result.err


def test_sigterm_mid_apply_finishes_in_flight_calls_and_starts_nothing_new(
    repo: GitRepo, start_daemon: StartDaemon, state_dir: Path
) -> None:
    slow = PROVIDERS.replace(
        "  price_list: standard\n", "  price_list: standard\n  max_parallel: 1\n  latency_ms: 150\n"
    )
    repo.commit({"providers.yaml": slow, "shop.yaml": cluster(12)}, "twelve slow web servers")
    daemon = start_daemon(repo, wait_ready=False)
    wait_until(lambda: len(daemon.servers()) >= 3, what="the apply under way")
    started = time.monotonic()
    assert daemon.stop() == 0
    assert time.monotonic() - started < 10
    assert len(daemon.servers()) < 13  # it did not carry on creating everything

    with SQLiteStore(state_dir / "state.db") as store:
        assert store.verify().ok
        assert store.unresolved_intents("clusters") == []  # every call that started was settled
        lease = store.current_lease("provider/sim")
        assert lease is not None and lease.expires_at.year == 1970
        entries = list(store.audit_log())
    skipped = [e for e in entries if e.record.outcome is Outcome.SKIPPED]
    assert skipped and any("shutting down" in e.record.error for e in skipped)
    ends = [e for e in entries if e.record.action is AuditAction.RUN_END]
    assert "failed or skipped" in ends[-2].record.detail and "stopped" in ends[-1].record.detail
