"""One daemon cycle at a time, in this process on a fixed clock: the alert events it raises (budget,
provider errors, backups), per-key backoff, the mass-delete guard and leases held by another replica."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

from providers.simcloud.admin import admin_inject_faults
from reconciler.core.records import AuditAction, AuditEntry, AuditRecord, Outcome
from reconciler.daemon.context import CycleOutcome
from reconciler.daemon.cycle import fenced_write
from tests.daemon.conftest import Cycles, cluster, in_process_cycles

BUDGET = """\
apiVersion: reconciler/v1
kind: Budget
metadata:
  name: tight
spec:
  scope: global
  monthly: "10.00"
"""

NIGHTLY = """\
apiVersion: reconciler/v1
kind: BackupPolicy
metadata:
  name: often
spec:
  schedule: "* * * * *"
  max_age_hours: 0.01
  retention:
    keep_last: 2
"""


def _alerts(cycles: Cycles) -> list[tuple[str, str, str]]:
    """(event, subject, summary) of every alert the cycles recorded in the audit ledger."""
    entries: list[AuditEntry] = cycles.ws.store().recent_audit("shop", [AuditAction.ALERT], limit=1000)
    return [
        (json.loads(e.record.detail)["event"], e.record.key, json.loads(e.record.detail)["summary"])
        for e in reversed(entries)
    ]


def test_provider_error_alerts_and_backs_off_with_its_dependents(tmp_path: Path) -> None:
    with in_process_cycles(tmp_path, {"shop.yaml": cluster(2), "budget.yaml": BUDGET}) as cycles:
        (tmp_path / "state").mkdir()
        admin_inject_faults(tmp_path / "state", operation="create_server", kind="permanent", count=1)
        report = cycles.report(0)
        assert (report.outcome, report.failed, report.applied) == (
            CycleOutcome.FAILED,
            1,
            0,
        )  # db failed, web waited
        events = _alerts(cycles)
        assert ("provider-error", "shop/db/0") in [(e, s) for e, s, _ in events]
        assert any(e == "budget-exceeded" and "21.60" in text and "10.00" in text for e, _, text in events)

        held = cycles.report(30)  # shop/db/0 backs off (60 s); the web servers depend on it
        assert (held.outcome, held.applied, held.held) == (CycleOutcome.PROGRESSING, 0, 3)
        assert cycles.ctx.backoff.failures("shop/db/0") == 1
        assert cycles.at(61) is CycleOutcome.CONVERGED
        assert cycles.web() == ["shop/web/0", "shop/web/1"]
        assert cycles.ctx.backoff.failures("shop/db/0") == 0
        assert len([e for e in _alerts(cycles) if e[0] == "budget-exceeded"]) == 1  # not repeated every cycle


def test_backup_failures_and_overdue_backups_alert(tmp_path: Path) -> None:
    member = "      backup_policy: often\n"
    shop = cluster(1).replace("      count: 1\n", "      count: 1\n" + member, 1)
    with in_process_cycles(tmp_path, {"shop.yaml": shop, "policy.yaml": NIGHTLY}) as cycles:
        assert cycles.at(0) is CycleOutcome.CONVERGED
        admin_inject_faults(tmp_path / "state", operation="create_snapshot", kind="permanent", count=5)
        cycles.at(125)  # a backup of shop/db/0 is due, and fails; the newest backup is older than 36 s
        events = {(e, s) for e, s, _ in _alerts(cycles)}
        assert ("backup-failed", "shop/db/0") in events
        assert ("backup-overdue", "shop/db/0") in events


def test_a_mass_delete_is_refused_once_and_nothing_is_deleted(tmp_path: Path) -> None:
    with in_process_cycles(tmp_path, {"shop.yaml": cluster(3)}) as cycles:
        cycles.at(0)
        (cycles.folder / "shop.yaml").write_text(cluster(0))
        cycles.ctx.options = type(cycles.ctx.options)(source="unused", max_deletes="1")
        for seconds in (10, 20):
            report = cycles.report(seconds)
            assert report.outcome is CycleOutcome.FAILED and "more than --max-deletes 1" in report.message
        assert len(cycles.web()) == 3
        refused = cycles.ws.store().recent_audit("shop", [AuditAction.REJECTED])
        assert len(refused) == 1 and "deletes or replaces 3 servers" in refused[0].record.error
        assert [e for e, _, _ in _alerts(cycles)] == ["apply-failed"]


def test_providers_leased_by_another_replica_are_left_to_it(tmp_path: Path) -> None:
    with in_process_cycles(tmp_path, {"shop.yaml": cluster(2)}) as cycles:
        store = cycles.ws.store()
        other = store.acquire_lease(
            "provider/sim", "replica-b@elsewhere:1", ttl_seconds=600, now=cycles.ws.clock.wall()
        )
        assert other is not None
        report = cycles.report(0)
        assert report.outcome is CycleOutcome.PROGRESSING and report.applied == 0 and report.held == 3
        assert cycles.web() == []
        store.release_lease(other)
        assert cycles.at(10) is CycleOutcome.CONVERGED and len(cycles.web()) == 2
        held = store.current_lease("provider/sim")
        assert held is not None and held.holder == "test-daemon@nowhere:1"
        assert held.expires_at - cycles.ws.clock.wall() > timedelta(seconds=100)  # renewed, still ours


def test_daemon_ledger_writes_are_fenced_by_the_provider_lease(tmp_path: Path) -> None:
    """A replica paused past its lease must not record scale or failover decisions once another took over."""
    with in_process_cycles(tmp_path, {"shop.yaml": cluster(1)}) as cycles:
        assert cycles.at(0) is CycleOutcome.CONVERGED
        ctx, store = cycles.ctx, cycles.ws.store()
        ours = ctx.leases["sim"]
        written: list[str] = []
        assert fenced_write(ctx, store, "sim", lambda: written.append("while ours"))
        assert not fenced_write(ctx, store, "elsewhere", lambda: written.append("never leased"))

        later = ours.expires_at + timedelta(seconds=1)
        other = store.acquire_lease("provider/sim", "replica-b@elsewhere:1", ttl_seconds=600, now=later)
        assert other is not None and other.epoch > ours.epoch
        before = store.recent_audit("shop", list(AuditAction), limit=10_000)

        def write() -> None:
            written.append("after the takeover")
            store.append(
                AuditRecord(deployment="shop", run_id="r", actor="a", commit="c",
                            action=AuditAction.SCALE, outcome=Outcome.INFO, key="shop/web"),
                at=later,
            )

        assert not fenced_write(ctx, store, "sim", write)
        assert store.recent_audit("shop", list(AuditAction), limit=10_000) == before  # nothing landed
        assert written == ["while ours", "after the takeover"]
