"""Through the real command: plans show backups due and to prune with their cost, apply takes
them, destroy takes a final backup, restore brings a server back with the backup's size.

Set-up and inspection run in-process (the same engine functions) to keep the number of
subprocesses small; every behaviour under test goes through ``python -m reconciler``.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from providers.simcloud.admin import admin_list
from reconciler.cli import render, review
from reconciler.core.clock import isoformat
from reconciler.core.plan import Plan
from reconciler.core.records import AuditAction, Outcome
from reconciler.run.planning import plan_path
from tests.backup.support import (
    EPOCH,
    apply,
    audit,
    cluster_yaml,
    cycle,
    policy_yaml,
    snapshots,
    template_yaml,
    workspace,
)
from tests.e2e.conftest import Cli

NIGHT_1 = EPOCH + timedelta(hours=1)  # 2026-11-02T02:00Z
NIGHT_2 = NIGHT_1 + timedelta(days=1)
NIGHT_3 = NIGHT_2 + timedelta(days=1)


def _plan(desired: Path, state_dir: Path, now: datetime) -> Plan:
    ws = workspace(state_dir, now)
    try:
        return plan_path(desired, ws)
    finally:
        ws.close()


def test_plan_shows_due_and_prunable_backups_with_cost_and_apply_takes_them(
    cli: Cli, desired: Path, state_dir: Path, tmp_path: Path
) -> None:
    assert apply(desired, state_dir, EPOCH).ok
    assert "Backups" not in render.render_text(_plan(desired, state_dir, EPOCH))  # none due: no section
    for night in (NIGHT_1, NIGHT_2):
        assert cycle(desired, state_dir, night).ok
    (desired / "policies.yaml").write_text(policy_yaml(keep_last=1, keep_daily=0, keep_weekly=0))

    plan = cli("plan", str(desired), "--detailed-exitcode", now=isoformat(NIGHT_3))
    assert plan.code == 0, plan.err  # backups are not configuration changes
    assert "No changes." in plan.out
    assert "+ vault/db/0  backup vault-db-0-20261104T0200Z" in plan.out
    assert plan.out.count("  - vault/db/0  prune snap-") == 2  # the new backup will be the one kept
    assert "Backups: 1 to take, 0 final, 2 to prune; storage " in plan.out
    assert "+$" in plan.out and "-$" in plan.out and "/month" in plan.out
    markdown = review.render_markdown(_plan(desired, state_dir, NIGHT_3))
    assert "### Backups" in markdown and "prune snap-" in markdown

    plan_file = tmp_path / "plan.json"
    assert (
        cli("plan", str(desired), "--format", "json", "--out", str(plan_file), now=isoformat(NIGHT_3)).code
        == 0
    )
    assert [b["kind"] for b in json.loads(plan_file.read_text())["backups"]] == ["take", "prune", "prune"]
    applied = cli("apply", "--plan", str(plan_file), now=isoformat(NIGHT_3))
    assert applied.code == 0, applied.out + applied.err
    assert "+ vault/db/0 backup vault-db-0-20261104T0200Z succeeded" in applied.out
    assert applied.out.count(" succeeded") == 3
    assert [s.name for s in snapshots(state_dir, NIGHT_3)] == ["vault-db-0-20261104T0200Z"]
    assert _plan(desired, state_dir, NIGHT_3).backups == ()

    conflict = cli("apply", "--plan", str(plan_file), "--skip-final-backup", now=isoformat(NIGHT_3))
    assert conflict.code == 2 and "not allowed with argument" in conflict.err


def test_destroy_takes_a_final_backup_then_restore_brings_the_server_back(
    cli: Cli, desired: Path, state_dir: Path
) -> None:
    assert apply(desired, state_dir, EPOCH).ok
    [server] = admin_list(state_dir)
    destroyed = cli("destroy", str(desired), "--yes", now=isoformat(EPOCH))
    assert destroyed.code == 0, destroyed.out + destroyed.err
    assert "final backup vault-db-0-final-" in destroyed.out
    assert admin_list(state_dir) == []
    [final] = snapshots(state_dir, EPOCH)
    assert final.name == f"vault-db-0-final-{server['resource_id']}"
    log = audit(state_dir)
    taken = next(
        e for e in log if e.record.action is AuditAction.SNAPSHOT and e.record.outcome is Outcome.SUCCEEDED
    )
    delete = next(
        e for e in log if e.record.action is AuditAction.DELETE and e.record.outcome is Outcome.INTENT
    )
    assert taken.seq < delete.seq  # backed up before the delete began

    # the template grows meanwhile; the restored server has the size of the backed-up one
    (desired / "templates.yaml").write_text(template_yaml(cpus=2, memory_mb=2048))
    restore = ("restore", str(desired), "vault/db/0", "--from", final.snapshot_id)
    refused = cli(*restore, now=isoformat(NIGHT_1))
    assert refused.code == 1 and "--yes" in refused.err and admin_list(state_dir) == []
    restored = cli(*restore, "--yes", now=isoformat(NIGHT_1))
    assert restored.code == 0, restored.out + restored.err
    assert "1 vCPU, 1024 MB, 40 GB" in restored.out and "the next apply will change it" in restored.out
    [back] = admin_list(state_dir)
    assert (back["key"], back["cpus"], back["memory_mb"], back["disk_gb"]) == ("vault/db/0", 1, 1024, 40)
    [update] = _plan(desired, state_dir, NIGHT_1).changes
    assert update.action.value == "update" and "cpus 1 → 2" in update.reason  # in place, not a replace
    creates = [e.record for e in audit(state_dir) if e.record.action is AuditAction.CREATE]
    restored_entries = [r for r in creates if "restore" in r.detail]
    assert [r.outcome for r in restored_entries] == [Outcome.INTENT, Outcome.SUCCEEDED]
    ws = workspace(state_dir, NIGHT_1)
    try:
        assert ws.store().verify().ok
    finally:
        ws.close()


SECRET_TEMPLATE = (
    template_yaml()
    + """\
  inputs:
    db_password:
      type: string
      required: true
      sensitive: true
  scripts:
    boot: |
      #!/bin/sh
      echo {{ db_password }} > /etc/db-password
"""
)


def test_restore_over_a_live_server_replaces_it_after_its_final_backup(
    cli: Cli, desired: Path, state_dir: Path
) -> None:
    # a relative file: secret in the inputs: the restored server's marks must still match the plan's
    (desired / "templates.yaml").write_text(SECRET_TEMPLATE)
    (desired / "db-password.txt").write_text("s3cret-restore-pw\n")
    cluster = (desired / "cluster.yaml").read_text()
    (desired / "cluster.yaml").write_text(
        cluster + '      inputs:\n        db_password: {secret: "file:db-password.txt"}\n'
    )
    (desired / "policies.yaml").write_text(policy_yaml(method="image"))
    assert apply(desired, state_dir, EPOCH).ok
    assert cycle(desired, state_dir, NIGHT_1).ok
    [old] = admin_list(state_dir)
    [nightly] = snapshots(state_dir, NIGHT_1)
    result = cli(
        "restore", str(desired), "vault/db/0", "--from", nightly.snapshot_id, "--yes", now=isoformat(NIGHT_2)
    )
    assert result.code == 0, result.out + result.err
    assert f"Deleted the replaced server {old['resource_id']}" in result.out
    [new] = admin_list(state_dir)
    assert new["resource_id"] != old["resource_id"] and new["key"] == "vault/db/0"
    names = [s.name for s in snapshots(state_dir, NIGHT_2)]
    assert names == ["vault-db-0-20261102T0200Z", f"vault-db-0-final-{old['resource_id']}"]
    taken = [json.loads(e.record.detail) for e in audit(state_dir)
             if e.record.action is AuditAction.SNAPSHOT and e.record.outcome is Outcome.INTENT]
    assert [(t["backup"], t["method"]) for t in taken] == [("take", "image"), ("final", "image")]
    assert not _plan(desired, state_dir, NIGHT_2).has_changes
    assert "s3cret-restore-pw" not in result.out + result.err

    wrong = cli("restore", str(desired), "vault/db/0", "--from", "snap-nope", "--yes", now=isoformat(NIGHT_2))
    assert wrong.code == 1 and "no backup snap-nope of deployment vault" in wrong.err


def test_destroy_with_skip_final_backup_takes_none(cli: Cli, desired: Path, state_dir: Path) -> None:
    assert apply(desired, state_dir, EPOCH).ok
    destroyed = cli("destroy", str(desired), "--yes", "--skip-final-backup", now=isoformat(EPOCH))
    assert destroyed.code == 0, destroyed.out + destroyed.err
    assert "no final backup before its delete (--skip-final-backup)" in destroyed.out
    assert admin_list(state_dir) == [] and snapshots(state_dir, EPOCH) == []


def test_backup_list_without_path_reads_the_ledger(cli: Cli, desired: Path, state_dir: Path) -> None:
    assert apply(desired, state_dir, EPOCH).ok
    assert cycle(desired, state_dir, NIGHT_1).ok
    later = datetime(2026, 11, 2, 3, 0, tzinfo=UTC)
    listed = cli("backup", "list", "--format", "json", now=isoformat(later))
    assert listed.code == 0, listed.err
    [row] = json.loads(listed.out)["backups"]
    assert row["key"] == "vault/db/0" and row["policy"] == "nightly" and row["since"] == isoformat(NIGHT_1)


def test_backups_of_a_removed_server_are_unmanaged_until_deleted_by_hand(
    cli: Cli, desired: Path, state_dir: Path
) -> None:
    assert apply(desired, state_dir, EPOCH).ok
    assert cycle(desired, state_dir, NIGHT_1).ok
    (desired / "cluster.yaml").write_text(cluster_yaml(count=0))  # the server is removed from the YAML
    removed = cli("apply", str(desired), "--yes", now=isoformat(NIGHT_1))
    assert removed.code == 0, removed.out + removed.err
    assert admin_list(state_dir) == []
    nightly, final = snapshots(state_dir, NIGHT_1)
    assert final.name.startswith("vault-db-0-final-")  # its final backup, and the nightly one, stay

    listed = cli("backup", "list", str(desired), "--format", "json", now=isoformat(NIGHT_2))
    assert listed.code == 0, listed.err
    assert {b["backup_id"]: b["retention"] for b in json.loads(listed.out)["backups"]} == {
        nightly.snapshot_id: "unmanaged",
        final.snapshot_id: "unmanaged",
    }
    assert "backup delete PATH BACKUP_ID" in cli("backup", "list", str(desired), now=isoformat(NIGHT_2)).out

    delete = ("backup", "delete", str(desired), nightly.snapshot_id)
    refused = cli(*delete, now=isoformat(NIGHT_2))
    assert refused.code == 1 and "--yes" in refused.err and len(snapshots(state_dir, NIGHT_2)) == 2
    unknown = cli("backup", "delete", str(desired), "snap-nope", "--yes", now=isoformat(NIGHT_2))
    assert unknown.code == 1 and "no backup snap-nope" in unknown.err and "Traceback" not in unknown.err

    deleted = cli(*delete, "--yes", now=isoformat(NIGHT_2))
    assert deleted.code == 0, deleted.out + deleted.err
    assert f"- vault/db/0 prune {nightly.snapshot_id} ({nightly.name}) succeeded" in deleted.out
    assert [s.snapshot_id for s in snapshots(state_dir, NIGHT_2)] == [final.snapshot_id]
    entries = [e.record for e in audit(state_dir) if e.record.action is AuditAction.DELETE_SNAPSHOT]
    assert [(r.resource_id, r.outcome) for r in entries] == [
        (nightly.snapshot_id, Outcome.INTENT),
        (nightly.snapshot_id, Outcome.SUCCEEDED),
    ]
    ws = workspace(state_dir, NIGHT_2)
    try:
        store = ws.store()
        closed = [i for i in store.backup_intervals(start=EPOCH, deployment="vault") if i.end is not None]
        assert [(i.snapshot_id, i.end) for i in closed] == [(nightly.snapshot_id, NIGHT_2)]
        assert store.verify().ok
    finally:
        ws.close()


def test_a_replace_for_a_spec_change_takes_a_final_backup_first(
    cli: Cli, desired: Path, state_dir: Path
) -> None:
    assert apply(desired, state_dir, EPOCH).ok
    [old] = admin_list(state_dir)
    (desired / "templates.yaml").write_text(template_yaml(image="debian-13"))  # a new image: replace
    plan = cli("plan", str(desired), now=isoformat(EPOCH))
    assert "final backup vault-db-0-final-" in plan.out, plan.out
    applied = cli("apply", str(desired), "--yes", now=isoformat(EPOCH))
    assert applied.code == 0, applied.out + applied.err
    [new] = admin_list(state_dir)
    assert new["resource_id"] != old["resource_id"]
    assert [s.name for s in snapshots(state_dir, EPOCH)] == [f"vault-db-0-final-{old['resource_id']}"]
    entries = [e.record for e in audit(state_dir) if e.record.outcome is Outcome.SUCCEEDED]
    order = [r.action for r in entries if r.action in (AuditAction.SNAPSHOT, AuditAction.DELETE)]
    assert order == [AuditAction.SNAPSHOT, AuditAction.DELETE]  # backed up before it was deleted
