"""Taking over a fleet that already runs, through the real command on simcloud: servers made by
hand → generate → validate → plan (three adopts, nothing else) → apply → no changes; forget;
status; and a kill -9 in the middle of the adoption that the next apply converges."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest

from tests.e2e.conftest import Cli

PROVIDER = """\
apiVersion: reconciler/v1
kind: Provider
metadata: {name: sim}
spec: {type: simcloud}
"""
FLEET = [
    ("web-a", "debian-12", "1", "1024", "10"),
    ("web-b", "debian-12", "1", "1024", "10"),
    ("db-1", "debian-12-postgres", "2", "4096", "40"),
]


def _servers(cli: Cli) -> dict[str, dict[str, object]]:
    result = cli("simcloud", "list", "--format", "json")
    assert result.code == 0, result.err
    return {str(row["name"]): row for row in json.loads(result.out)}


@pytest.fixture
def fleet(cli: Cli, tmp_path: Path) -> Path:
    """Three servers nobody owns, and a folder that declares only their provider."""
    for name, image, cpus, memory, disk in FLEET:
        made = cli("simcloud", "create", name, "--image", image, "--cpus", cpus, "--memory-mb", memory,
                   "--disk-gb", disk)
        assert made.code == 0, made.err
        assert "owned by nobody" in made.out
    folder = tmp_path / "fleet"
    folder.mkdir()
    (folder / "providers.yaml").write_text(PROVIDER, encoding="utf-8")
    return folder


def _generate(cli: Cli, folder: Path) -> str:
    made = cli("generate", str(folder), "--provider", "sim", "--out", str(folder / "adopted.yaml"))
    assert made.code == 0, made.err
    assert "3 server(s) in 2 member(s) of cluster sim, 2 template(s)" in made.err
    return (folder / "adopted.yaml").read_text(encoding="utf-8")


def test_generate_adopt_forget_round_trip(cli: Cli, fleet: Path) -> None:
    before = _servers(cli)
    text = _generate(cli, fleet)
    assert "web:\n      template: sim-web\n      count: 2\n      adopt:" in text
    assert "TODO inputs and scripts" in text
    assert cli("validate", str(fleet)).code == 0

    plan = cli("plan", str(fleet), "--format", "json", "--out", str(fleet.parent / "plan.json"))
    assert plan.code == 0, plan.err
    summary = json.loads((fleet.parent / "plan.json").read_text(encoding="utf-8"))["summary"]
    assert summary["adopt"] == 3
    assert {k: v for k, v in summary.items() if k not in ("adopt", "no-op")} == dict.fromkeys(
        ("create", "update", "replace", "delete"), 0
    )

    applied = cli("apply", "--plan", str(fleet.parent / "plan.json"))
    assert applied.code == 0, applied.out + applied.err
    after = _servers(cli)
    assert {n: r["resource_id"] for n, r in after.items()} == {n: r["resource_id"] for n, r in before.items()}
    assert {str(r["key"]) for r in after.values()} == {"sim/web/0", "sim/web/1", "sim/db/0"}
    assert all(r["created_at"] == before[n]["created_at"] for n, r in after.items())

    again = cli("plan", str(fleet), "--detailed-exitcode")
    assert again.code == 0, again.out + again.err
    assert again.out.count("can be removed") == 3
    validated = cli("validate", str(fleet))
    assert validated.err.count("its adopt: entry is a no-op now and can be removed") == 3

    shown = cli("status", str(fleet), "--format", "json")
    assert shown.code == 0, shown.err
    report = json.loads(shown.out)
    assert [(s["key"], s["power"], s["sync"]) for s in report["servers"]] == [
        ("sim/db/0", "running", "synced"),
        ("sim/web/0", "running", "synced"),
        ("sim/web/1", "running", "synced"),
    ]
    assert all(s["last_change"]["action"] == "adopt" for s in report["servers"])
    assert report["clusters"][0]["servers"] == 3

    forgot = cli("forget", str(fleet), "sim/web/1")
    assert forgot.code == 0, forgot.err
    assert "keeps running, no longer managed" in forgot.out and "still declared" in forgot.err
    rows = _servers(cli)
    assert rows["web-b"]["key"] == "" and rows["web-b"]["status"] == "running"
    log = json.loads("[" + ",".join(cli("audit", "log", "--format", "json").out.splitlines()) + "]")
    assert [e["outcome"] for e in log if e["action"] == "forget"] == ["intent", "succeeded"]
    text_status = cli("status", str(fleet), "--target", "sim/web").out
    assert "pending adopt" in text_status and "sim/db/0" not in text_status
    assert cli("audit", "verify").code == 0


@pytest.mark.parametrize("kill_after", [1, 2])
def test_kill_during_adoption_converges(cli: Cli, fleet: Path, kill_after: int) -> None:
    _generate(cli, fleet)
    crashed = cli("apply", str(fleet), "--yes", env={"RECONCILER_SIMCLOUD_KILL_AFTER": str(kill_after)})
    assert crashed.code == -signal.SIGKILL, crashed.out + crashed.err
    adopted = [r for r in _servers(cli).values() if r["key"]]
    assert len(adopted) == kill_after  # each committed mutation was one adoption
    final = cli("apply", str(fleet), "--yes")
    assert final.code == 0, final.out + final.err
    assert "Recovered:" in final.out
    assert cli("plan", str(fleet), "--detailed-exitcode").code == 0
    rows = _servers(cli)
    assert len(rows) == 3 and all(r["key"] for r in rows.values())  # nothing created, all adopted
    log = json.loads("[" + ",".join(cli("audit", "log", "--format", "json").out.splitlines()) + "]")
    intents = {e["seq"] for e in log if e["outcome"] == "intent"}
    assert intents <= {e["intent_seq"] for e in log if e.get("intent_seq") is not None}
    usage = cli("usage", "report", "--by", "server", "--format", "json", "--from", "2026-11-01",
                now="2026-11-02T12:00:00Z")
    assert usage.code == 0, usage.err
    assert json.loads(usage.out)["totals"][0]["instances"] == 3  # one interval per adopted server
    assert cli("audit", "verify").code == 0
