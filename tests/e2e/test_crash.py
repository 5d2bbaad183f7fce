"""Crash safety: kill -9 the apply at many points; the next apply converges with no duplicate
server, no unrecorded server and an intact audit chain."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from tests.e2e.conftest import REPO, Cli

EXPECTED_KEYS = {"shop/db/0", "shop/app/0", "shop/app/1", "shop/web/0", "shop/web/1", "shop/web/2"}


def _servers(cli: Cli) -> list[dict[str, object]]:
    result = cli("simcloud", "list", "--format", "json")
    assert result.code == 0, result.err
    rows: list[dict[str, object]] = json.loads(result.out)
    return rows


def _assert_converged(cli: Cli, workdir: Path, expected: set[str]) -> None:
    final = cli("apply", str(workdir), "--yes")
    assert final.code == 0, final.out + final.err
    plan = cli("plan", str(workdir), "--detailed-exitcode")
    assert plan.code == 0, plan.out + plan.err
    servers = _servers(cli)
    keys = Counter(str(s["key"]) for s in servers)
    assert set(keys) == expected
    assert all(n == 1 for n in keys.values()), f"duplicate servers: {keys}"
    verify = cli("audit", "verify")
    assert verify.code == 0, verify.out + verify.err
    # every server is recorded: an open usage interval for each resource id, none for gone ones
    usage = cli(
        "usage",
        "report",
        "--by",
        "server",
        "--format",
        "json",
        "--from",
        "2026-11-01",
        now="2026-11-02T12:00:00Z",
    )
    assert usage.code == 0, usage.err
    report = json.loads(usage.out)
    groups = Counter(row["group"] for row in report["rows"])
    assert set(groups) == expected
    assert report["totals"][0]["instances"] == len(expected)  # one interval per live server
    log = json.loads("[" + ",".join(cli("audit", "log", "--format", "json").out.splitlines()) + "]")
    intents = {e["seq"] for e in log if e["outcome"] == "intent"}
    settled = {e["intent_seq"] for e in log if e.get("intent_seq") is not None}
    assert intents <= settled, f"unresolved intents left: {sorted(intents - settled)}"


@pytest.mark.parametrize("kill_after", [1, 2, 3, 5, 6])
def test_kill_after_nth_mutation_then_converge(cli: Cli, workdir: Path, kill_after: int) -> None:
    crashed = cli("apply", str(workdir), "--yes", env={"RECONCILER_SIMCLOUD_KILL_AFTER": str(kill_after)})
    assert crashed.code == -signal.SIGKILL, crashed.out + crashed.err
    assert len(_servers(cli)) == kill_after  # each committed mutation was one create
    _assert_converged(cli, workdir, EXPECTED_KEYS)


def test_kill_during_replace_then_converge(cli: Cli, workdir: Path) -> None:
    assert cli("apply", str(workdir), "--yes").code == 0
    _bump_image(workdir)  # every server is replaced: create the new one, then delete the old
    crashed = cli(
        "apply", str(workdir), "--yes", "--allow-mass-delete", env={"RECONCILER_SIMCLOUD_KILL_AFTER": "3"}
    )
    assert crashed.code == -signal.SIGKILL, crashed.out + crashed.err
    _assert_converged_mass(cli, workdir)


def _bump_image(workdir: Path) -> None:
    """A new image for every template; the database is unprotected first (a protected member is
    never replaced), so every server is replaced."""
    shop = workdir / "shop.yaml"
    assert "      protect: true\n" in shop.read_text()
    shop.write_text(shop.read_text().replace("      protect: true\n", "      protect: false\n"))
    templates = workdir / "templates.yaml"
    text = templates.read_text()
    assert "simcloud:" in text
    templates.write_text(
        text.replace(
            "simcloud: ",
            "simcloud: v2-",
        )
    )


def _assert_converged_mass(cli: Cli, workdir: Path) -> None:
    final = cli("apply", str(workdir), "--yes", "--allow-mass-delete")
    assert final.code == 0, final.out + final.err
    _assert_converged(cli, workdir, EXPECTED_KEYS)
    for server in _servers(cli):
        assert str(server["image"]).startswith("v2-")


def test_kill_at_random_moments(cli: Cli, workdir: Path, state_dir: Path, tmp_path: Path) -> None:
    """SIGKILL from outside at several moments of a slow apply (latency on every call)."""
    providers = workdir / "providers.yaml"
    providers.write_text(
        providers.read_text().replace("type: simcloud", "type: simcloud\n  latency_ms: 40", 1)
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECONCILER_")}
    env.update(
        {
            "RECONCILER_STATE_DIR": str(state_dir),
            "PYTHONPATH": str(REPO),
            "RECONCILER_NOW": "2026-11-02T10:00:00Z",
        }
    )
    for delay in (0.9, 1.3, 1.7):
        proc = subprocess.Popen(
            [sys.executable, "-m", "reconciler", "apply", str(workdir), "--yes"],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    _assert_converged(cli, workdir, EXPECTED_KEYS)
