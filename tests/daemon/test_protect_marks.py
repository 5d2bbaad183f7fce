"""The daemon honours the guard marks on servers: a protected server is never deleted by a
commit that drops it, never replaced by failover, never scaled in; a final backup follows the
backup-policy mark of a server whose member no longer names a policy."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from providers.simcloud.admin import admin_fail, admin_list
from reconciler.core.model import Autoscale, ScaleMetric
from reconciler.core.records import AuditAction, Outcome
from reconciler.daemon import autoscale
from reconciler.daemon.autoscale import decide
from reconciler.run.audit import RunContext
from tests.daemon.conftest import T0, cluster, in_process_cycles

POLICY = """\
apiVersion: reconciler/v1
kind: BackupPolicy
metadata:
  name: weekly
spec:
  schedule: "0 3 * * 0"
  retention:
    keep_last: 2
"""


def _servers(state_dir: Path, member: str) -> dict[str, dict[str, object]]:
    return {s["key"]: s for s in admin_list(state_dir) if str(s["key"]).startswith(f"shop/{member}/")}


def test_a_commit_dropping_protected_servers_deletes_none(tmp_path: Path) -> None:
    shop = cluster(1).replace("      count: 1\n", "      count: 1\n      protect: true\n", 1)  # db
    with in_process_cycles(tmp_path, {"shop.yaml": shop}) as cycles:
        cycles.at(0)
        before = _servers(cycles.ws.state_dir, "db")
        assert list(before) == ["shop/db/0"]
        # the next commit drops the member's protect line and its count together
        dropped = cluster(1).replace("      count: 1\n", "      count: 0\n", 1)
        (cycles.folder / "shop.yaml").write_text(dropped)
        report = cycles.report(60)
        assert report.failed == 0
        assert _servers(cycles.ws.state_dir, "db") == before


def test_failover_never_replaces_a_protected_server(tmp_path: Path) -> None:
    web = cluster(2).replace("        max_per_hour: 10\n", "        max_per_hour: 10\n      protect: true\n")
    assert "protect: true" in web
    with in_process_cycles(tmp_path, {"shop.yaml": web}) as cycles:
        cycles.at(0)
        state = cycles.ws.state_dir
        failed = admin_fail(state, "shop/web/0")
        cycles.at(60)
        cycles.at(120)
        now = _servers(state, "web")
        assert now["shop/web/0"]["resource_id"] == failed["resource_id"]  # not replaced
        assert sorted(now) == ["shop/web/0", "shop/web/1"]


def test_scale_in_keeps_protected_servers(tmp_path: Path) -> None:
    scaled = """\
apiVersion: reconciler/v1
kind: Cluster
metadata:
  name: shop
spec:
  provider: sim
  members:
    web:
      template: web
      protect: true
      autoscale: {min: 2, max: 4, metric: cpu, target: 99.0, cooldown_seconds: 120}
"""
    with in_process_cycles(tmp_path, {"shop.yaml": scaled}) as cycles:
        store = cycles.ws.store()
        rule = Autoscale(member="shop/web", min=2, max=4, metric=ScaleMetric.CPU, target=99.0)
        run = RunContext(run_id="seed", actor="test", commit="")
        autoscale.record(store, "shop", run, decide(rule, 3, {"x": 100.0}, None, T0), T0 - timedelta(hours=1))
        cycles.at(0)
        assert len(_servers(cycles.ws.state_dir, "web")) == 4
        for step in range(1, 12):  # idle: the autoscaler lowers the count towards min
            cycles.at(step * 200)
        assert len(_servers(cycles.ws.state_dir, "web")) == 4  # protected: none deleted


def test_final_backup_follows_the_mark_in_a_daemon_cycle(tmp_path: Path) -> None:
    policy_line = "        max_per_hour: 10\n      backup_policy: weekly\n"
    shop = cluster(2).replace("        max_per_hour: 10\n", policy_line)
    with in_process_cycles(tmp_path, {"shop.yaml": shop, "policy.yaml": POLICY}) as cycles:
        cycles.at(0)
        # the next commit scales web down and drops its policy line in one go
        (cycles.folder / "shop.yaml").write_text(cluster(1))
        report = cycles.report(60)
        assert report.failed == 0
        assert list(_servers(cycles.ws.state_dir, "web")) == ["shop/web/0"]
        snaps = [s for s in cycles.ws.store().backup_intervals(deployment="shop") if s.key == "shop/web/1"]
        assert len(snaps) == 1 and snaps[0].policy == "weekly"


def test_failover_takes_a_final_backup_before_it_replaces(tmp_path: Path) -> None:
    policy_line = "        max_per_hour: 10\n      backup_policy: weekly\n"
    shop = cluster(2).replace("        max_per_hour: 10\n", policy_line)
    with in_process_cycles(tmp_path, {"shop.yaml": shop, "policy.yaml": POLICY}) as cycles:
        cycles.at(0)
        state = cycles.ws.state_dir
        failed = admin_fail(state, "shop/web/0")
        for step in (60, 120, 180):
            cycles.at(step)
        now = _servers(state, "web")
        assert now["shop/web/0"]["resource_id"] != failed["resource_id"]  # replaced by failover
        entries = [e for e in cycles.ws.store().audit_log(deployment="shop") if e.record.key == "shop/web/0"]
        final = [e.seq for e in entries if e.record.action is AuditAction.SNAPSHOT
                 and e.record.outcome is Outcome.SUCCEEDED and '"final"' in e.record.detail]
        gone = failed["resource_id"]
        deleted = [e.seq for e in entries if e.record.action is AuditAction.DELETE
                   and e.record.outcome is Outcome.SUCCEEDED and e.record.resource_id == gone]
        assert len(final) == 1 and len(deleted) == 1 and final[0] < deleted[0]  # backed up, then deleted
