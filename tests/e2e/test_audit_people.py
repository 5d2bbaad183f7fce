"""Through the real command: who ran it and who wrote the change are two fields, and `audit log`
filters by them and fits the terminal.

A CLI apply records its operator — `--actor`, else the CI job ($GITHUB_ACTOR with its run),
else the OS user — and the commit's author and committer apart; `apply --plan` records the
author of the commit the plan was made from, whoever applies it.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from tests.e2e.conftest import Cli

ADA = "Ada Lovelace <ada@example.com>"
GIT = ["git", "-c", "user.name=Ada Lovelace", "-c", "user.email=ada@example.com", "-c", "commit.gpgsign=no"]
GITHUB = {"GITHUB_ACTOR": "octocat", "GITHUB_REPOSITORY": "acme/infra", "GITHUB_WORKFLOW": "infrastructure",
          "GITHUB_RUN_ID": "4711"}


def _repo(tmp_path: Path) -> None:
    for args in (["init", "-q", "-b", "main"], ["add", "clusters"], ["commit", "-qm", "the shop"]):
        subprocess.run([*GIT, "-C", str(tmp_path), *args], check=True, capture_output=True)


def _log(cli: Cli, *filters: str) -> list[dict[str, object]]:
    out = cli("audit", "log", "--format", "json", *filters).out
    return [json.loads(line) for line in out.splitlines()]


def test_a_ci_apply_records_the_job_as_operator_and_the_commit_author_apart(
    cli: Cli, workdir: Path, tmp_path: Path
) -> None:
    _repo(tmp_path)
    assert cli("apply", str(workdir), "--yes", env=GITHUB).code == 0
    created = _log(cli, "--action", "create")
    assert len(created) == 12  # an intent and an outcome per server
    operator = "octocat via GitHub Actions (acme/infra, workflow infrastructure, run 4711)"
    assert {(e["actor"], e["author"], e["committer"]) for e in created} == {(operator, ADA, ADA)}
    head = subprocess.run(["git", "-C", str(tmp_path), "rev-parse", "HEAD"], capture_output=True, text=True)
    assert {e["commit"] for e in created} == {head.stdout.strip()}
    assert cli("audit", "verify").code == 0


def test_apply_plan_records_the_author_of_the_planned_commit(cli: Cli, workdir: Path, tmp_path: Path) -> None:
    _repo(tmp_path)
    plan_file = tmp_path / "plan.json"
    assert cli("plan", str(workdir), "--format", "json", "--out", str(plan_file)).code == 0
    assert json.loads(plan_file.read_text())["author"] == ADA
    assert cli("--actor", "release-bot", "apply", "--plan", str(plan_file)).code == 0
    entries = _log(cli, "--key", "shop/db/0")
    assert entries and {(e["actor"], e["author"]) for e in entries} == {("release-bot", ADA)}


def test_audit_log_filters_and_fits_the_terminal(cli: Cli, workdir: Path, tmp_path: Path) -> None:
    assert cli("--actor", "first", "apply", str(workdir), "--yes").code == 0
    assert cli("simcloud", "delete", "shop/web/1").code == 0
    assert cli("--actor", "second", "apply", str(workdir), "--yes", now="2026-11-03T10:00:00Z").code == 0
    everything = _log(cli)
    assert {e["author"] for e in everything} == {""}  # no git here: no commit, no author
    web = _log(cli, "--key", "shop/web", "--action", "create")
    assert {str(e["key"]).rsplit("/", 1)[0] for e in web} == {"shop/web"} and len(web) == 8
    assert {e["actor"] for e in _log(cli, "--actor", "SECOND")} == {"second"}
    later = _log(cli, "--since", "2026-11-03")
    assert later and all(str(e["at"]) >= "2026-11-03" for e in later)
    assert all(str(e["at"]) < "2026-11-03" for e in _log(cli, "--until", "2026-11-02"))
    newest = _log(cli, "--limit", "3")
    assert [e["seq"] for e in newest] == [e["seq"] for e in everything[-3:]]
    bad = cli("audit", "log", "--since", "last tuesday")
    assert bad.code == 1 and "give an ISO 8601 time" in bad.err

    for columns in (80, 120):
        table = cli("audit", "log", env={"COLUMNS": str(columns)}).out
        assert max(len(line) for line in table.splitlines()) <= columns
        head = table.splitlines()[:2]
        assert "operator" in head[0] and "author" in head[1]
        assert "first" in table and "create succeeded" in table
