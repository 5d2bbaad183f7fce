"""A ``restore`` killed at any point: the next run sees what it left, settles its intents and
converges, with no second copy of the server left running (and billed) unseen.

A restore over a live server under a policy makes three mutations: the restore itself
(``create_from_snapshot``), the final backup of the old server, its delete. The run is
killed right after each of the first two, then followed by the next command a user runs:
``plan``, ``apply`` or the same ``restore`` again.
"""

from __future__ import annotations

import signal
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest

from providers.simcloud.admin import admin_list
from providers.simcloud.provider import KILL_AFTER_ENV
from reconciler.core.clock import isoformat
from reconciler.core.records import AuditAction, Outcome
from reconciler.store import open_store
from tests.backup.support import EPOCH, apply, audit, cycle, snapshots
from tests.e2e.conftest import Cli

NIGHT_1 = EPOCH + timedelta(hours=1)
LATER = NIGHT_1 + timedelta(hours=3)


def _keys(state_dir: Path) -> Counter[str]:
    return Counter(s["key"] for s in admin_list(state_dir))


def _restore(cli: Cli, desired: Path, backup: str, **kw: object) -> tuple[int, str]:
    done = cli("restore", str(desired), "vault/db/0", "--from", backup, "--yes", **kw)  # type: ignore[arg-type]
    return done.code, done.out + done.err


def _killed_restore(cli: Cli, desired: Path, state_dir: Path, kill_after: int) -> tuple[str, str]:
    """Apply, back up, then a restore killed after ``kill_after`` mutations; returns (old id, backup id)."""
    assert apply(desired, state_dir, EPOCH).ok
    assert cycle(desired, state_dir, NIGHT_1).ok
    [old] = admin_list(state_dir)
    [nightly] = snapshots(state_dir, NIGHT_1)
    code, out = _restore(cli, desired, nightly.snapshot_id, env={KILL_AFTER_ENV: str(kill_after)},
                         now=isoformat(LATER))
    assert code == -signal.SIGKILL, out
    assert _keys(state_dir)["vault/db/0"] == 2  # the restored server and the old one, both running
    return str(old["resource_id"]), nightly.snapshot_id


def _open_intervals(state_dir: Path) -> list[str]:
    store = open_store(state_dir)
    try:
        return sorted(i.resource_id for i in store.open_intervals("vault"))
    finally:
        store.close()


def _settled_restore(state_dir: Path) -> None:
    """The restore's create intent was settled by its token: recovered, never abandoned."""
    creates = [e.record for e in audit(state_dir) if e.record.action is AuditAction.CREATE]
    restore = [r for r in creates if "restore_from" in r.detail]
    assert restore and restore[0].outcome is Outcome.INTENT
    settled = [r.outcome for r in creates if r.token == restore[0].token][-1]
    assert settled in (Outcome.RECOVERED, Outcome.SUCCEEDED)
    assert not any(r.outcome is Outcome.ABANDONED for r in creates)


@pytest.mark.parametrize("kill_after", [1, 2])  # after the restore; after it and the final backup
def test_the_next_plan_shows_the_second_copy_and_apply_converges(
    cli: Cli, desired: Path, state_dir: Path, kill_after: int
) -> None:
    old, _ = _killed_restore(cli, desired, state_dir, kill_after)
    plan = cli("plan", str(desired), "--detailed-exitcode", now=isoformat(LATER))
    assert plan.code == 2, plan.out + plan.err  # never "No changes." while two copies run
    assert "- vault/db/0" in plan.out and old in plan.out
    applied = cli("apply", str(desired), "--yes", now=isoformat(LATER))
    assert applied.code == 0, applied.out + applied.err
    [left] = admin_list(state_dir)
    assert left["resource_id"] != old  # the restored server is the one kept
    assert _open_intervals(state_dir) == [left["resource_id"]]  # the old one is no longer billed
    _settled_restore(state_dir)
    finals = [s.name for s in snapshots(state_dir, LATER) if "final" in s.name]
    assert finals == [f"vault-db-0-final-{old}"]  # exactly one final backup, whoever took it
    again = cli("plan", str(desired), "--detailed-exitcode", now=isoformat(LATER))
    assert again.code == 0, again.out + again.err


@pytest.mark.parametrize("kill_after", [1, 2])
def test_the_same_restore_again_finishes_the_job_without_a_third_copy(
    cli: Cli, desired: Path, state_dir: Path, kill_after: int
) -> None:
    old, backup = _killed_restore(cli, desired, state_dir, kill_after)
    restored = [s["resource_id"] for s in admin_list(state_dir) if s["resource_id"] != old]
    code, out = _restore(cli, desired, backup, now=isoformat(LATER))
    assert code == 0, out
    assert "already restored" in out
    assert [s["resource_id"] for s in admin_list(state_dir)] == restored
    assert _open_intervals(state_dir) == restored  # billed from its creation, not from the next apply
    _settled_restore(state_dir)
    finals = [s.name for s in snapshots(state_dir, LATER) if "final" in s.name]
    assert finals == [f"vault-db-0-final-{old}"]
    plan = cli("plan", str(desired), "--detailed-exitcode", now=isoformat(LATER))
    assert plan.code == 0, plan.out + plan.err


def test_a_restore_killed_after_everything_leaves_one_server(
    cli: Cli, desired: Path, state_dir: Path
) -> None:
    assert apply(desired, state_dir, EPOCH).ok
    assert cycle(desired, state_dir, NIGHT_1).ok
    [nightly] = snapshots(state_dir, NIGHT_1)
    code, out = _restore(cli, desired, nightly.snapshot_id, env={KILL_AFTER_ENV: "3"}, now=isoformat(LATER))
    assert code == -signal.SIGKILL, out
    [left] = admin_list(state_dir)
    plan = cli("plan", str(desired), "--detailed-exitcode", now=isoformat(LATER))
    assert plan.code == 0, plan.out + plan.err
    applied = cli("apply", str(desired), "--yes", now=isoformat(LATER))
    assert applied.code == 0, applied.out + applied.err
    assert [s["resource_id"] for s in admin_list(state_dir)] == [left["resource_id"]]
    assert _open_intervals(state_dir) == [left["resource_id"]]
    deletes = [e.record for e in audit(state_dir) if e.record.action is AuditAction.DELETE]
    assert deletes[-1].outcome is Outcome.RECOVERED  # settled by observation: it took effect
