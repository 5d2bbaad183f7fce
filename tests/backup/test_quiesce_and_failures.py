"""quiesce: shutdown stops and restarts the server around the snapshot; failed snapshots are
retried, then reported (and recorded) without costing an older backup."""

from __future__ import annotations

import signal
from datetime import timedelta
from pathlib import Path

import pytest

from providers.simcloud.admin import admin_inject_faults, admin_list, admin_stop
from providers.simcloud.provider import KILL_AFTER_ENV
from reconciler.core.audit_detail import RestartedAfterBackup
from reconciler.core.backups import BackupKind
from reconciler.core.clock import isoformat
from reconciler.core.model import ServerStatus
from reconciler.core.records import AuditAction, AuditEntry, Outcome
from reconciler.run.backups import BackupStatus
from tests.backup.support import EPOCH, apply, audit, cycle, policy_yaml, snapshots, write_desired
from tests.e2e.conftest import Cli

FIRST = EPOCH + timedelta(hours=1)


def _steps(entries: list[AuditEntry], since: int = 0) -> list[tuple[str, str]]:
    return [(e.record.action.value, e.record.outcome.value) for e in entries if e.seq > since]


def test_quiesce_shutdown_stops_snapshots_and_starts_again(tmp_path: Path) -> None:
    desired = write_desired(tmp_path, policy=policy_yaml(quiesce="shutdown"))
    state = tmp_path / "state"
    assert apply(desired, state, EPOCH).ok
    before = audit(state)[-1].seq
    report = cycle(desired, state, FIRST)
    assert report.ok and report.count(BackupKind.TAKE) == 1
    assert _steps(audit(state), before) == [
        ("stop", "intent"),
        ("stop", "succeeded"),
        ("snapshot", "intent"),
        ("snapshot", "succeeded"),
        ("start", "intent"),
        ("start", "succeeded"),
    ]
    [server] = admin_list(state)
    assert server["status"] == "running"


def test_quiesce_leaves_a_stopped_server_stopped(tmp_path: Path) -> None:
    desired = write_desired(tmp_path, policy=policy_yaml(quiesce="shutdown"))
    state = tmp_path / "state"
    assert apply(desired, state, EPOCH).ok
    admin_stop(state, "vault/db/0")
    before = audit(state)[-1].seq
    assert cycle(desired, state, FIRST).ok
    assert _steps(audit(state), before) == [("snapshot", "intent"), ("snapshot", "succeeded")]
    assert admin_list(state)[0]["status"] == ServerStatus.STOPPED.value


def test_transient_snapshot_faults_are_retried(desired: Path, state_dir: Path) -> None:
    assert apply(desired, state_dir, EPOCH).ok
    admin_inject_faults(state_dir, operation="create_snapshot", kind="transient", count=2)
    report = cycle(desired, state_dir, FIRST)
    assert report.ok and report.count(BackupKind.TAKE) == 1
    assert len(snapshots(state_dir, FIRST)) == 1


def test_a_failed_snapshot_is_reported_and_older_backups_survive(tmp_path: Path) -> None:
    desired = write_desired(tmp_path, policy=policy_yaml(keep_last=1, keep_daily=0, keep_weekly=0))
    state = tmp_path / "state"
    assert apply(desired, state, EPOCH).ok
    assert cycle(desired, state, FIRST).ok
    [older] = snapshots(state, FIRST)

    # as many transient faults as tries (6): retried, then reported, never raised
    admin_inject_faults(state, operation="create_snapshot", kind="transient", count=6)
    night = FIRST + timedelta(days=1, hours=3)  # 27 h after the last backup: max_age_hours 26 passed
    before = audit(state)[-1].seq
    report = cycle(desired, state, night)
    [failed] = report.failures
    assert failed.action.kind is BackupKind.TAKE and "injected transient fault" in failed.message
    assert not report.ok
    assert [s.key for s in report.overdue] == ["vault/db/0"]  # for the daemon to alert on
    assert snapshots(state, night) == [older]  # keep_last 1, yet the older backup was not pruned
    steps = _steps(audit(state), before)
    assert steps.count(("snapshot", "intent")) == 1 and ("snapshot", "failed") in steps
    assert ("delete-snapshot", "skipped") in steps and ("delete-snapshot", "succeeded") not in steps
    skipped = next(e for e in audit(state) if e.record.outcome is Outcome.SKIPPED)
    assert skipped.record.resource_id == older.snapshot_id and "new backup" in skipped.record.error

    # the next run catches up: the new backup is taken, then the older one is pruned
    later = cycle(desired, state, night + timedelta(minutes=10))
    assert later.ok and later.count(BackupKind.TAKE) == 1 and later.count(BackupKind.PRUNE) == 1
    assert later.overdue == ()
    [newest] = snapshots(state, night)
    assert newest.snapshot_id != older.snapshot_id


def test_a_permanent_snapshot_fault_is_not_retried(desired: Path, state_dir: Path) -> None:
    assert apply(desired, state_dir, EPOCH).ok
    admin_inject_faults(state_dir, operation="create_snapshot", kind="permanent", count=2)
    report = cycle(desired, state_dir, FIRST)
    [failed] = report.failures
    assert failed.status is BackupStatus.FAILED and "permanent" in failed.message
    # one fault consumed (not retried): the second one still waits for the next call
    assert cycle(desired, state_dir, FIRST + timedelta(minutes=5)).failures
    assert cycle(desired, state_dir, FIRST + timedelta(minutes=10)).ok


def test_a_failed_final_backup_stops_the_delete(desired: Path, state_dir: Path) -> None:
    assert apply(desired, state_dir, EPOCH).ok
    admin_inject_faults(state_dir, operation="create_snapshot", kind="permanent", count=1)
    report = apply(desired, state_dir, EPOCH + timedelta(minutes=10), destroy=True)
    assert not report.ok
    [result] = report.results
    assert result.status.value == "failed" and "final backup" in result.message
    assert [s["key"] for s in admin_list(state_dir)] == ["vault/db/0"]  # not deleted
    deletes = [e for e in audit(state_dir) if e.record.action is AuditAction.DELETE]
    assert deletes == []  # not even an intent: the backup comes first


@pytest.mark.parametrize("kill_after", [1, 2])  # after the stop; after the stop and the snapshot
@pytest.mark.parametrize("next_command", ["backup run", "apply"])
def test_a_backup_killed_while_its_server_is_stopped_is_started_by_the_next_run(
    cli: Cli, state_dir: Path, tmp_path: Path, kill_after: int, next_command: str
) -> None:
    desired = write_desired(tmp_path, policy=policy_yaml(quiesce="shutdown"))
    assert apply(desired, state_dir, EPOCH).ok
    crashed = cli("backup", "run", str(desired), env={KILL_AFTER_ENV: str(kill_after)}, now=isoformat(FIRST))
    assert crashed.code == -signal.SIGKILL, crashed.out + crashed.err
    assert admin_list(state_dir)[0]["status"] == ServerStatus.STOPPED.value
    before = audit(state_dir)[-1].seq

    args = ["backup", "run", str(desired)] if next_command == "backup run" else ["apply", str(desired)]
    args += [] if next_command == "backup run" else ["--yes"]
    later = cli(*args, now=isoformat(FIRST + timedelta(minutes=5)))
    assert later.code == 0, later.out + later.err
    assert admin_list(state_dir)[0]["status"] == ServerStatus.RUNNING.value
    entries = [e.record for e in audit(state_dir) if e.seq > before]
    if kill_after == 1:  # killed between the stop and its outcome: the intent is settled by observation
        stop = next(r for r in entries if r.action is AuditAction.STOP)
        assert stop.outcome is Outcome.RECOVERED and "it took effect: observed stopped" in stop.detail
    start = next(r for r in entries if r.action is AuditAction.START)
    if next_command == "backup run":  # started again before anything else
        assert (start.outcome, start.detail) == (Outcome.INTENT, RestartedAfterBackup.TEXT)
    else:  # the plan itself starts a stopped server (drift: heal), so it is left to the plan
        assert "~ vault/db/0" in later.out and "server is stopped" in later.out


def test_a_server_stopped_by_hand_after_a_backup_is_not_started_by_backups(tmp_path: Path) -> None:
    desired = write_desired(tmp_path, policy=policy_yaml(quiesce="shutdown"))
    state = tmp_path / "state"
    assert apply(desired, state, EPOCH).ok
    assert cycle(desired, state, FIRST).ok  # stop, snapshot, start: all recorded
    admin_stop(state, "vault/db/0")  # by hand, outside the reconciler
    assert cycle(desired, state, FIRST + timedelta(minutes=5)).ok
    assert admin_list(state)[0]["status"] == ServerStatus.STOPPED.value
