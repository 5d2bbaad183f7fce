"""The guards that live on the servers, through the real CLI on simcloud.

``protect`` and ``backup_policy`` are written on each server as marks, so what the YAML
says now is never enough to destroy: lowering a count, removing the member or the whole
cluster, ``destroy``, or a removed policy cannot delete a protected server or skip a final
backup. The way out is explicit and reviewable: apply ``protect: false``, then remove it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.e2e.conftest import Cli

WEB = "      template: web\n      count: 3\n"


def _keys(cli: Cli) -> list[str]:
    return sorted(s["key"] for s in json.loads(cli("simcloud", "list", "--format", "json").out))


def _backups(cli: Cli, workdir: Path) -> list[dict[str, object]]:
    listed = cli("backup", "list", str(workdir), "--format", "json")
    assert listed.code == 0, listed.err
    rows: list[dict[str, object]] = json.loads(listed.out)["backups"]
    return rows


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1))


def _count_zero(workdir: Path) -> None:  # and the protect line gone with it
    _edit(workdir / "shop.yaml", "      count: 1\n      protect: true\n", "      count: 0\n")


def _member_removed(workdir: Path) -> None:
    shop = workdir / "shop.yaml"
    text = shop.read_text()
    start = text.index("    db:\n")
    end = text.index("    app:\n")
    shop.write_text(text[:start] + text[end:])
    _edit(shop, "      depends_on: [db]\n", "")


def _cluster_removed(workdir: Path) -> None:
    (workdir / "shop.yaml").unlink()
    inputs = workdir / "inputs.yaml"
    inputs.write_text(inputs.read_text().split("---")[0])  # the Inputs scoped to shop go with it


def _protect_false_then_count_zero(workdir: Path) -> None:
    """Not a way out: the mark on the server still says protect until an apply rewrites it."""
    shop = workdir / "shop.yaml"
    _edit(shop, "      count: 1\n      protect: true\n", "      count: 0\n      protect: false\n")


EDITS: dict[str, Callable[[Path], None]] = {
    "count-zero": _count_zero,
    "member-removed": _member_removed,
    "cluster-removed": _cluster_removed,
    "protect-false-and-count-zero-at-once": _protect_false_then_count_zero,
}


@pytest.mark.parametrize("edit", sorted(EDITS))
def test_a_protected_server_outlives_any_edit_of_the_yaml(cli: Cli, workdir: Path, edit: str) -> None:
    assert cli("apply", str(workdir), "--yes").code == 0
    EDITS[edit](workdir)
    plan = cli("plan", str(workdir), "--format", "json")
    assert plan.code == 0, plan.err
    parsed = json.loads(plan.out)
    assert "shop/db/0" not in [c["key"] for c in parsed["changes"] if c["action"] in ("delete", "replace")]
    assert any("shop/db/0 is protected" in d for d in parsed["diagnostics"])
    applied = cli("apply", str(workdir), "--yes")
    assert applied.code == 0, applied.out + applied.err
    assert "shop/db/0 is protected" in applied.out
    assert "shop/db/0" in _keys(cli)
    destroyed = cli("destroy", str(workdir), "--yes")
    assert destroyed.code == 0, destroyed.out + destroyed.err
    assert _keys(cli) == ["shop/db/0"]


def test_the_way_out_is_protect_false_applied_then_removed(cli: Cli, workdir: Path) -> None:
    assert cli("apply", str(workdir), "--yes").code == 0
    shop = workdir / "shop.yaml"
    _edit(shop, "      protect: true\n", "      protect: false\n")
    plan = cli("plan", str(workdir))
    assert "~ shop/db/0" in plan.out and "protect: true → false" in plan.out, plan.out
    assert cli("apply", str(workdir), "--yes").code == 0  # rewrites the mark, deletes nothing
    assert "shop/db/0" in _keys(cli)
    _edit(shop, "      count: 1\n      protect: false\n", "      count: 0\n")
    applied = cli("apply", str(workdir), "--yes")
    assert applied.code == 0, applied.out + applied.err
    assert "shop/db/0" not in _keys(cli)
    [final] = [b for b in _backups(cli, workdir) if b["key"] == "shop/db/0"]
    assert str(final["name"]).startswith("shop-db-0-final-") and final["policy"] == "nightly"


def test_a_saved_plan_cannot_delete_a_server_protected_since(cli: Cli, workdir: Path, tmp_path: Path) -> None:
    assert cli("apply", str(workdir), "--yes").code == 0
    shop = workdir / "shop.yaml"
    _edit(shop, WEB, "      template: web\n      count: 2\n")  # shop/web/2 to delete
    saved = tmp_path / "p.json"
    assert cli("plan", str(workdir), "--format", "json", "--out", str(saved)).code == 0
    _edit(shop, "      template: web\n      count: 2\n", WEB + "      protect: true\n")
    assert cli("apply", str(workdir), "--yes").code == 0  # the web servers now carry the mark
    refused = cli("apply", "--plan", str(saved))
    assert refused.code == 1 and "Traceback" not in refused.err
    assert "nothing was applied" in refused.err or "stale" in refused.err, refused.err
    assert "shop/web/2" in _keys(cli)


def test_final_backup_before_a_scale_down_and_after_the_policy_left(cli: Cli, workdir: Path) -> None:
    shop = workdir / "shop.yaml"
    _edit(shop, "      count: 3\n", "      count: 3\n      backup_policy: nightly\n")
    assert cli("apply", str(workdir), "--yes").code == 0
    assert [b for b in _backups(cli, workdir) if str(b["key"]).startswith("shop/web/")] == []
    # the member scales down and loses its policy line in the same commit
    _edit(shop, WEB + "      backup_policy: nightly\n", "      template: web\n      count: 2\n")
    plan = cli("plan", str(workdir))
    assert "final backup shop-web-2-final-" in plan.out, plan.out
    applied = cli("apply", str(workdir), "--yes")
    assert applied.code == 0, applied.out + applied.err
    finals = [b for b in _backups(cli, workdir) if str(b["key"]).startswith("shop/web/")]
    assert [(b["key"], b["policy"]) for b in finals] == [("shop/web/2", "nightly")]
    assert "shop/web/2" not in _keys(cli)
    # shop/web/0 and 1 lost their policy mark with the policy line: no final backup for them
    _edit(shop, "      template: web\n      count: 2\n", "      template: web\n      count: 0\n")
    assert cli("apply", str(workdir), "--yes").code == 0
    assert not [k for k in _keys(cli) if k.startswith("shop/web/")]
    assert len([b for b in _backups(cli, workdir) if str(b["key"]).startswith("shop/web/")]) == 1


def test_final_backup_under_a_policy_no_longer_declared(cli: Cli, workdir: Path) -> None:
    assert cli("apply", str(workdir), "--yes").code == 0
    shop = workdir / "shop.yaml"
    _edit(shop, "      protect: true\n", "      protect: false\n")
    assert cli("apply", str(workdir), "--yes").code == 0
    _member_removed(workdir)
    (workdir / "policies.yaml").unlink()  # the BackupPolicy document is gone as well
    applied = cli("apply", str(workdir), "--yes")
    assert applied.code == 0, applied.out + applied.err
    assert "shop/db/0" not in _keys(cli)
    [final] = [b for b in _backups(cli, workdir) if b["key"] == "shop/db/0"]
    assert final["policy"] == "nightly" and str(final["name"]).startswith("shop-db-0-final-")


def test_skip_final_backup_is_explicit(cli: Cli, workdir: Path) -> None:
    shop = workdir / "shop.yaml"
    _edit(shop, "      count: 3\n", "      count: 3\n      backup_policy: nightly\n")
    assert cli("apply", str(workdir), "--yes").code == 0
    _edit(shop, "      count: 3\n      backup_policy: nightly\n", "      count: 1\n")
    applied = cli("apply", str(workdir), "--yes", "--skip-final-backup")
    assert applied.code == 0, applied.out + applied.err
    assert [b for b in _backups(cli, workdir) if str(b["key"]).startswith("shop/web/")] == []
    assert [k for k in _keys(cli) if k.startswith("shop/web/")] == ["shop/web/0"]


def _servers(cli: Cli) -> list[tuple[str, str]]:
    listed = json.loads(cli("simcloud", "list", "--format", "json").out)
    return sorted((s["key"], s["resource_id"]) for s in listed)


def test_restore_never_replaces_a_protected_server(cli: Cli, workdir: Path) -> None:
    assert cli("apply", str(workdir), "--yes", now="2026-11-02T01:00:00Z").code == 0
    assert cli("backup", "run", str(workdir), now="2026-11-02T02:30:00Z").code == 0  # the nightly tick
    [backup] = [b for b in _backups(cli, workdir) if b["key"] == "shop/db/0"]
    restore = ("restore", str(workdir), "shop/db/0", "--from", str(backup["backup_id"]), "--yes")
    before = _servers(cli)

    refused = cli(*restore)  # the member says protect: true, and the server carries the mark
    assert refused.code == 1, refused.out + refused.err
    assert "shop/db/0 is protected" in refused.err and "nothing was restored" in refused.err
    assert "Traceback" not in refused.err and _servers(cli) == before

    shop = workdir / "shop.yaml"
    _edit(shop, "      protect: true\n", "      protect: false\n")
    still = cli(*restore)  # the YAML says false, but the mark on the server still says protect
    assert still.code == 1 and "carries the protect mark" in still.err, still.out + still.err
    assert _servers(cli) == before

    assert cli("apply", str(workdir), "--yes").code == 0  # the way out: the mark is rewritten first
    restored = cli(*restore)
    assert restored.code == 0, restored.out + restored.err
    after = _servers(cli)
    db = [[rid for key, rid in servers if key == "shop/db/0"] for servers in (before, after)]
    assert len(db[1]) == 1 and db[1] != db[0]
    assert len(after) == len(before)
