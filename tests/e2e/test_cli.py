"""End to end through the real command: the quickstart, changes, drift, guards, stale plans."""

from __future__ import annotations

import json
import re
from pathlib import Path

from tests.e2e.conftest import Cli


def _set_count(workdir: Path, member: str, count: int) -> None:
    shop = workdir / "shop.yaml"
    text = shop.read_text()
    pattern = re.compile(rf"(\n\s+{member}:\n(?:\s+.*\n)*?\s+count: )\d+")
    new, n = pattern.subn(rf"\g<1>{count}", text, count=1)
    assert n == 1, f"no count for member {member} in shop.yaml"
    shop.write_text(new)


def test_quickstart_converges_and_second_plan_is_empty(cli: Cli, workdir: Path) -> None:
    first = cli("plan", str(workdir), "--detailed-exitcode")
    assert first.code == 2, first.out + first.err
    assert "6 to create" in first.out
    applied = cli("apply", str(workdir), "--yes")
    assert applied.code == 0, applied.out + applied.err
    assert "6 succeeded, 0 failed, 0 skipped" in applied.out
    second = cli("plan", str(workdir), "--detailed-exitcode")
    assert second.code == 0, second.out + second.err
    assert "No changes" in second.out
    verify = cli("audit", "verify")
    assert verify.code == 0 and "intact" in verify.out
    report = cli(
        "usage",
        "report",
        "--by",
        "cluster",
        "--format",
        "json",
        "--from",
        "2026-11-01",
        "--to",
        "2026-11-03",
        now="2026-11-02T12:00:00Z",
    )
    assert report.code == 0, report.err
    rows = json.loads(report.out)["rows"]
    assert [r["group"] for r in rows] == ["shop"]
    assert rows[0]["instances"] == 6
    assert float(rows[0]["hours"]) == 12.0  # 6 servers x 2 h (10:00 -> 12:00)


def test_apply_refuses_without_yes_when_not_interactive(cli: Cli, workdir: Path) -> None:
    result = cli("apply", str(workdir))
    assert result.code == 1
    assert "--yes" in result.err
    assert json.loads(cli("simcloud", "list", "--format", "json").out) == []


def test_count_change_creates_and_deletes(cli: Cli, workdir: Path) -> None:
    assert cli("apply", str(workdir), "--yes").code == 0
    _set_count(workdir, "web", 5)
    plan = cli("plan", str(workdir), "--detailed-exitcode")
    assert plan.code == 2
    assert "+ shop/web/3" in plan.out and "+ shop/web/4" in plan.out
    assert "2 to create" in plan.out
    assert cli("apply", str(workdir), "--yes").code == 0
    _set_count(workdir, "web", 1)
    plan = cli("plan", str(workdir))
    assert "- shop/web/4" in plan.out and "- shop/web/1" in plan.out
    assert "4 to destroy" in plan.out or "4 to delete" in plan.out
    assert cli("apply", str(workdir), "--yes").code == 0
    assert cli("plan", str(workdir), "--detailed-exitcode").code == 0


def test_drift_is_planned_and_healed(cli: Cli, workdir: Path) -> None:
    assert cli("apply", str(workdir), "--yes").code == 0
    assert cli("simcloud", "edit", "shop/web/1", "--cpus", "16").code == 0
    assert cli("simcloud", "delete", "shop/web/2").code == 0
    plan = cli("plan", str(workdir), "--detailed-exitcode")
    assert plan.code == 2
    assert "~ shop/web/1" in plan.out
    assert "+ shop/web/2" in plan.out
    assert cli("apply", str(workdir), "--yes").code == 0
    assert cli("plan", str(workdir), "--detailed-exitcode").code == 0
    log = cli("audit", "log", "--format", "json").out
    assert "observe.gone" in log


def test_failed_server_is_replaced(cli: Cli, workdir: Path) -> None:
    assert cli("apply", str(workdir), "--yes").code == 0
    assert cli("simcloud", "fail", "shop/app/0").code == 0
    plan = cli("plan", str(workdir))
    assert "-/+ shop/app/0" in plan.out
    assert cli("apply", str(workdir), "--yes").code == 0
    servers = json.loads(cli("simcloud", "list", "--format", "json").out)
    assert sorted(s["status"] for s in servers if s["key"] == "shop/app/0") == ["running"]


def test_stale_plan_is_refused(cli: Cli, workdir: Path, tmp_path: Path) -> None:
    assert cli("apply", str(workdir), "--yes").code == 0
    _set_count(workdir, "web", 4)
    plan_file = tmp_path / "plan.json"
    assert cli("plan", str(workdir), "--format", "json", "--out", str(plan_file)).code == 0
    assert cli("simcloud", "edit", "shop/web/0", "--cpus", "8").code == 0
    result = cli("apply", "--plan", str(plan_file))
    assert result.code == 1
    assert "stale" in result.err and "shop/web/0" in result.err
    fresh = tmp_path / "fresh.json"
    assert cli("plan", str(workdir), "--format", "json", "--out", str(fresh)).code == 0
    applied = cli("apply", "--plan", str(fresh))
    assert applied.code == 0, applied.out + applied.err
    assert cli("plan", str(workdir), "--detailed-exitcode").code == 0


def test_mass_delete_guard_and_protect(cli: Cli, workdir: Path) -> None:
    assert cli("apply", str(workdir), "--yes").code == 0
    result = cli("destroy", str(workdir), "--yes", "--max-deletes", "2")
    assert result.code == 1 and "--max-deletes" in result.err
    assert len(json.loads(cli("simcloud", "list", "--format", "json").out)) == 6
    destroyed = cli("destroy", str(workdir), "--yes")
    assert destroyed.code == 0, destroyed.out + destroyed.err
    remaining = json.loads(cli("simcloud", "list", "--format", "json").out)
    assert [s["key"] for s in remaining] == ["shop/db/0"]  # protect: true
    assert "protect" in destroyed.out


def test_flaky_cloud_still_converges(cli: Cli, workdir: Path) -> None:
    providers = workdir / "providers.yaml"
    providers.write_text(
        providers.read_text().replace("type: simcloud", "type: simcloud\n  error_rate: 0.3\n  seed: 7", 1)
    )
    result = cli("apply", str(workdir), "--yes")
    assert result.code == 0, result.out + result.err
    assert cli("plan", str(workdir), "--detailed-exitcode").code == 0


def test_markdown_plan_and_out_file(cli: Cli, workdir: Path, tmp_path: Path) -> None:
    out = tmp_path / "plan.md"
    result = cli("plan", str(workdir), "--format", "markdown", "--out", str(out), "--detailed-exitcode")
    assert result.code == 2
    text = out.read_text()
    assert result.out == ""  # --out: the file instead of stdout
    assert text.startswith("<!-- reconciler-plan: clusters -->\n") and "<details>" in text
    secret = (workdir / "secrets").glob("*")
    for path in secret:
        assert path.read_text().strip() not in text


def test_inputs_explain_and_graph(cli: Cli, workdir: Path) -> None:
    result = cli("inputs", "explain", str(workdir), "shop/app")
    assert result.code == 0, result.err
    assert "(sensitive)" in result.out
    graph = cli("graph", str(workdir), "--format", "dot")
    assert graph.code == 0 and "digraph" in graph.out
    validated = cli("validate", str(workdir))
    assert validated.code == 0 and validated.out.endswith("valid — 6 servers in 1 cluster on 1 provider\n")


def test_unset_secret_at_apply_time_is_a_located_error(cli: Cli, workdir: Path) -> None:
    inputs = workdir / "inputs.yaml"
    text = inputs.read_text()
    assert "file:secrets/db-password.txt" in text
    inputs.write_text(text.replace("file:secrets/db-password.txt", "env:SHOP_DB_PASSWORD_FOR_TEST"))
    line = next(i for i, row in enumerate(inputs.read_text().splitlines(), 1) if "SHOP_DB_PASSWORD" in row)
    plan = cli("plan", str(workdir))
    assert plan.code == 0  # planning never reads secret values
    result = cli("apply", str(workdir), "--yes")
    assert result.code == 1
    assert "Traceback" not in result.err
    assert f"inputs.yaml:{line}" in result.err and "SHOP_DB_PASSWORD_FOR_TEST" in result.err
    assert json.loads(cli("simcloud", "list", "--format", "json").out) == []
    applied = cli("apply", str(workdir), "--yes", env={"SHOP_DB_PASSWORD_FOR_TEST": "s3cret-value-xyz"})
    assert applied.code == 0, applied.out + applied.err
    for command in (("audit", "log", "--format", "json"), ("plan", str(workdir), "--format", "json")):
        assert "s3cret-value-xyz" not in cli(*command).out
