"""Through the real command: a reviewed plan file is applied only as it was made.

The example from the safety issue: edit the delete entry of a saved plan to name another
server (the observed basis left alone) — `apply --plan` must refuse it, delete nothing and
record nothing. Also: a plan signed with another key (the CI jobs' shared secret differs).
"""

from __future__ import annotations

import json
import re
import stat
from pathlib import Path

from tests.e2e.conftest import Cli

KEY_A = "a" * 40
KEY_B = "b" * 40


def _servers(cli: Cli) -> dict[str, str]:
    return {s["key"]: s["resource_id"] for s in json.loads(cli("simcloud", "list", "--format", "json").out)}


def _plan_with_one_delete(cli: Cli, workdir: Path, out: Path, env: dict[str, str] | None = None) -> None:
    assert cli("apply", str(workdir), "--yes", env=env).code == 0
    shop = workdir / "shop.yaml"
    text, n = re.subn(r"(\n\s+web:\n(?:\s+.*\n)*?\s+count: )\d+", r"\g<1>2", shop.read_text(), count=1)
    assert n == 1
    shop.write_text(text)
    made = cli("plan", str(workdir), "--format", "json", "--out", str(out), env=env)
    assert made.code == 0, made.err


def test_an_edited_delete_is_refused_and_nothing_is_deleted(cli: Cli, workdir: Path, tmp_path: Path) -> None:
    plan_file = tmp_path / "plan.json"
    _plan_with_one_delete(cli, workdir, plan_file)
    before = _servers(cli)
    data = json.loads(plan_file.read_text())
    [delete] = [c for c in data["changes"] if c["action"] == "delete"]
    assert delete["key"] == "shop/web/2"
    # aim it at the protected database
    delete["key"], delete["before"]["resource_id"] = "shop/db/0", before["shop/db/0"]
    plan_file.write_text(json.dumps(data, indent=2))
    audit_before = cli("audit", "log", "--format", "json").out

    result = cli("apply", "--plan", str(plan_file))
    assert result.code == 1
    assert "edited after it was made; nothing was applied" in result.err and "Traceback" not in result.err
    assert _servers(cli) == before
    assert cli("audit", "log", "--format", "json").out == audit_before


def test_the_key_stays_in_the_state_dir_and_out_of_the_plan(
    cli: Cli, workdir: Path, tmp_path: Path, state_dir: Path
) -> None:
    plan_file = tmp_path / "plan.json"
    _plan_with_one_delete(cli, workdir, plan_file)
    key = (state_dir / "plan.key").read_text().strip()
    assert len(key) == 64 and stat.S_IMODE((state_dir / "plan.key").stat().st_mode) == 0o600
    assert key not in plan_file.read_text()
    applied = cli("apply", "--plan", str(plan_file))
    assert applied.code == 0, applied.err
    assert "shop/web/2" not in _servers(cli)


def test_a_plan_signed_with_another_key_is_refused(cli: Cli, workdir: Path, tmp_path: Path) -> None:
    plan_file = tmp_path / "plan.json"
    _plan_with_one_delete(cli, workdir, plan_file, env={"RECONCILER_PLAN_KEY": KEY_A})
    before = _servers(cli)
    refused = cli("apply", "--plan", str(plan_file), env={"RECONCILER_PLAN_KEY": KEY_B})
    assert refused.code == 1 and "signed with another plan key" in refused.err
    assert KEY_A not in refused.err and KEY_B not in refused.err
    assert _servers(cli) == before
    short = cli("apply", "--plan", str(plan_file), env={"RECONCILER_PLAN_KEY": "short"})
    assert short.code == 1 and "shorter than 32 characters" in short.err
    applied = cli("apply", "--plan", str(plan_file), env={"RECONCILER_PLAN_KEY": KEY_A})
    assert applied.code == 0, applied.err
