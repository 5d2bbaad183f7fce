"""Sixty simulated nights of backups under `0 2 * * *`, keep_last 3 / keep_daily 7 / keep_weekly 4.

The first 57 nights run the backup cycle in-process (the function `reconciler backup run`
and the daemon call), the last three run the real command; what is left must be exactly the
set a separately written retention rule keeps of all sixty nights.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

from reconciler.backup.cycle import inspect_backups
from reconciler.config import load_desired_state
from reconciler.core.backups import BackupKind
from reconciler.core.clock import isoformat
from reconciler.core.model import Retention
from reconciler.core.records import AuditAction, Outcome
from reconciler.run.backups import BackupStatus
from tests.backup.support import EPOCH, apply, audit, cycle, snapshots, workspace
from tests.backup.test_rules import expected_kept
from tests.e2e.conftest import Cli

NIGHTS = 60
FIRST = EPOCH + timedelta(hours=1)  # 2026-11-02T02:00Z, the first tick after the server exists


def test_sixty_nights_leave_exactly_the_retained_backups(cli: Cli, desired: Path, state_dir: Path) -> None:
    assert apply(desired, state_dir, EPOCH).ok
    nights = [FIRST + timedelta(days=n) for n in range(NIGHTS)]
    for number, night in enumerate(nights[:-3]):
        report = cycle(desired, state_dir, night)
        assert report.ok and report.count(BackupKind.TAKE) == 1, report
        if number % 10 == 0:  # later the same night nothing more is due
            assert cycle(desired, state_dir, night + timedelta(minutes=30)).results == ()
    for night in nights[-3:]:
        result = cli("backup", "run", str(desired), now=isoformat(night))
        assert result.code == 0, result.out + result.err
        assert "1 taken" in result.out and "0 failed" in result.out
    left = snapshots(state_dir, nights[-1])
    assert [s.created_at for s in left] == sorted(expected_kept(nights, Retention(3, 7, 4)))
    assert len(left) == 9
    assert all(s.policy == "nightly" and s.key == "vault/db/0" for s in left)

    # the audit ledger: a snapshot per night, a prune per backup gone, every intent settled
    entries = audit(state_dir)

    def done(action: AuditAction) -> int:
        return sum(1 for e in entries if e.record.action is action and e.record.outcome is Outcome.SUCCEEDED)

    assert done(AuditAction.SNAPSHOT) == NIGHTS and done(AuditAction.DELETE_SNAPSHOT) == NIGHTS - 9
    intents = {e.seq for e in entries if e.record.outcome is Outcome.INTENT}
    assert intents <= {e.record.intent_seq for e in entries}

    later = isoformat(nights[-1] + timedelta(hours=1))
    data = json.loads(cli("backup", "list", str(desired), "--format", "json", now=later).out)
    assert [b["backup_id"] for b in data["backups"]] == [s.snapshot_id for s in left]
    assert all(b["retention"] == "keep" for b in data["backups"])
    [status] = data["keys"]
    assert status["backups"] == 9 and not status["overdue"] and not status["due"]
    assert status["next_due"] == isoformat(nights[-1] + timedelta(days=1))

    # backup storage: each backup for as long as it was kept, priced at 0.05 USD per GB-month
    window = ("--from", isoformat(FIRST), "--to", isoformat(nights[-1]))
    usage = cli("backup", "usage", *window, "--format", "json", now=isoformat(nights[-1]))
    [row] = json.loads(usage.out)["rows"]
    assert row["group"] == "vault/db/0" and row["currency"] == "USD"
    assert row["instances"] == NIGHTS - 1  # the last night's backup is taken at the window's end


def test_missed_nights_are_caught_up_with_one_backup_and_overdue_is_reported(
    desired: Path, state_dir: Path
) -> None:
    assert apply(desired, state_dir, EPOCH).ok
    assert cycle(desired, state_dir, FIRST).count(BackupKind.TAKE) == 1
    late = FIRST + timedelta(days=3, hours=4)  # three ticks missed: one backup, named after the latest
    [result] = cycle(desired, state_dir, late).results
    assert result.status is BackupStatus.SUCCEEDED
    assert result.action.name == "vault-db-0-20261105T0200Z"
    ws = workspace(state_dir, late + timedelta(hours=48))
    try:
        listing = inspect_backups(load_desired_state(desired), ws)
    finally:
        ws.close()
    [status] = listing.statuses
    assert status.overdue and status.due and status.age_hours == 48.0 and status.max_age_hours == 26
