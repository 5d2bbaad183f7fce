"""The daemon as users run it: a real subprocess following a real git branch on simcloud.

One scenario, step by step, so the whole story costs one daemon start: converge, follow a
count change, reject an invalid commit (keeping the last good state, alerting a webhook),
heal ``simcloud fail/delete/edit``, export metrics, and stop cleanly on SIGTERM.
"""

from __future__ import annotations

import json
import time
import urllib.request
from pathlib import Path

from reconciler.core.records import AuditAction, Outcome
from reconciler.store.sqlite import SQLiteStore
from tests.daemon.conftest import (
    DaemonProcess,
    GitRepo,
    Receiver,
    StartDaemon,
    cluster,
    wait_until,
    webhook_sink,
)
from tests.e2e.conftest import Cli


def _web(daemon: DaemonProcess) -> dict[str, dict[str, object]]:
    return {k: s for k, s in daemon.running().items() if k.startswith("shop/web/")}


def _metric(metrics: dict[str, list[tuple[dict[str, str], float]]], name: str, **labels: str) -> float:
    return sum(v for found, v in metrics.get(name, []) if all(found.get(k) == x for k, x in labels.items()))


def test_daemon_follows_the_branch_heals_and_stops_cleanly(
    repo: GitRepo, start_daemon: StartDaemon, receiver: Receiver, cli: Cli, state_dir: Path
) -> None:
    repo.commit({"alerts.yaml": webhook_sink(receiver.url)}, "alert the ops webhook")
    daemon = start_daemon(repo)

    # 1. converges the first commit
    wait_until(lambda: len(daemon.running()) == 3, what="db + 2 web running")
    assert daemon.get("/healthz")[0] == 200

    # 2. a commit changes a count: the daemon follows it
    second = repo.commit(
        {"shop.yaml": cluster(3)}, "three web servers", author="Bob Builder <bob@example.com>"
    )
    wait_until(lambda: len(_web(daemon)) == 3, what="a third web server")

    # 3. an invalid commit is rejected; the last good state stays; the webhook hears of it
    bad = repo.commit({"shop.yaml": cluster("three")}, "oops", author="Eve <eve@example.com>")
    alert = receiver.wait_for(lambda a: a["event"] == "invalid-commit")
    assert alert["commit"] == bad and "clusters/shop.yaml:" in alert["summary"]
    assert "must be an integer" in alert["summary"] and second[:12] in alert["summary"]
    assert alert["_headers"]["content-type"] == "application/json"

    # 4. failures and drift behind the daemon's back are healed (the bad commit is still the tip)
    before = _web(daemon)
    assert cli("simcloud", "fail", "shop/web/0", now=None).code == 0
    assert cli("simcloud", "delete", "shop/web/1", now=None).code == 0
    assert cli("simcloud", "edit", "shop/web/2", "--cpus", "4", now=None).code == 0
    assert cli("simcloud", "stop", "shop/db/0", now=None).code == 0

    def healed() -> bool:
        web = _web(daemon)
        return (
            len(web) == 3
            and web["shop/web/0"]["resource_id"] != before["shop/web/0"]["resource_id"]
            and web["shop/web/2"]["cpus"] == 1
            and "shop/db/0" in daemon.running()
            and len(daemon.servers()) == 4
        )

    wait_until(healed, what="failed, deleted, resized and stopped servers healed")
    failover_alert = receiver.wait_for(lambda a: a["event"] == "failover" and a["subject"] == "shop/web/0")
    assert failover_alert["details"]["mode"] == "replace"

    # 5. metrics over HTTP, parsed by prometheus-client
    wait_until(  # the gauges describe the newest observation: wait for one made after the healing
        lambda: _metric(daemon.metrics(), "reconciler_servers", provider="sim", state="running") == 4,
        what="a cycle observing four running servers",
    )
    metrics = daemon.metrics()
    assert _metric(metrics, "reconciler_cycles_total", outcome="converged") >= 1
    assert _metric(metrics, "reconciler_changes_applied_total", action="create", status="succeeded") >= 5
    assert _metric(metrics, "reconciler_changes_applied_total", action="replace", provider="sim") >= 1
    assert _metric(metrics, "reconciler_drift_found_total") >= 2
    assert _metric(metrics, "reconciler_rejected_commits_total") == 1
    assert _metric(metrics, "reconciler_last_successful_sync_timestamp_seconds") > 1.7e9
    assert abs(_metric(metrics, "reconciler_hourly_cost", currency="USD") - 0.04) < 1e-9
    assert _metric(metrics, "reconciler_cycle_duration_seconds_count") >= 3
    assert (
        _metric(metrics, "reconciler_alerts_total", event="invalid-commit", sink="ops", result="delivered")
        == 1
    )
    assert _metric(metrics, "reconciler_desired_commit_info", commit=second) == 1

    # 6. SIGTERM: exit 0, leases released, audit chain intact, every entry traceable to its commit
    assert daemon.stop() == 0
    assert '"stopped"' in daemon.log()
    with SQLiteStore(state_dir / "state.db") as store:
        lease = store.current_lease("provider/sim")
        assert lease is not None and lease.expires_at.year == 1970  # released, not left to expire
        assert store.verify().ok
        entries = list(store.audit_log())
    commits = [e for e in entries if e.record.action is AuditAction.COMMIT]
    assert [e.record.commit for e in commits][-1] == second
    assert commits[-1].record.author == "Bob Builder <bob@example.com>"
    assert commits[-1].record.actor.startswith("daemon-")  # the daemon is the operator
    assert json.loads(commits[-1].record.detail)["message"] == "three web servers"
    rejected = [e for e in entries if e.record.action is AuditAction.REJECTED]
    assert len(rejected) == 1 and rejected[0].record.commit == bad
    assert json.loads(rejected[0].record.detail)["errors"][0].startswith("clusters/shop.yaml:")
    failovers = [e for e in entries if e.record.action is AuditAction.FAILOVER]
    assert {e.record.key for e in failovers} >= {"shop/web/0"}
    starts = [
        e for e in entries if e.record.action is AuditAction.RUN_START and "commit message" in e.record.detail
    ]
    assert starts and "commit message: three web servers" in starts[-1].record.detail
    shas = set(repo.git("rev-list", "main").split())
    applied = [
        e for e in entries if e.record.action is AuditAction.CREATE and e.record.outcome is Outcome.SUCCEEDED
    ]
    assert len(applied) >= 6 and all(e.record.commit in shas for e in applied)
    assert all("<" in str(e.record.author) and e.record.actor.startswith("daemon-") for e in applied)
    assert entries[-1].record.action is AuditAction.RUN_END and "stopped" in entries[-1].record.detail
    assert cli("audit", "verify", now=None).code == 0


def test_git_webhook_triggers_a_fetch_and_cycle_at_once(repo: GitRepo, start_daemon: StartDaemon) -> None:
    daemon = start_daemon(repo, "--git-poll", "120", interval=120)  # neither timer fires during the test
    wait_until(lambda: len(daemon.running()) == 3, what="the first commit converged")
    repo.commit({"shop.yaml": cluster(4)}, "four web servers")
    time.sleep(0.5)
    assert len(daemon.running()) == 3  # nobody told the daemon yet
    request = urllib.request.Request(
        daemon.base + "/hooks/git", data=b'{"ref": "refs/heads/main"}', method="POST"
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        assert response.status == 202
    wait_until(lambda: len(_web(daemon)) == 4, timeout=15, what="the pushed commit applied")
    assert daemon.stop() == 0
