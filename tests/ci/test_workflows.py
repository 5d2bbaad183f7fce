"""The example GitHub Actions workflows: fork-safe, pinned, and every reconciler command in them parses.

What is read is the workflow YAML itself (actionlint lints the same files in
scripts/run-tests.sh):

* a job that runs a pull request's code — every job a fork's pull request reaches — holds no
  secret and a token that can only read; no pull_request job can write at all;
* the job that can write comments runs on ``workflow_run``, never checks out or runs the pull
  request's code, and puts no event data into its scripts but through the environment;
* every artifact upload has ``if: always()`` (a failed plan or apply still leaves its files);
* the reconciler is installed pinned to a tag or a commit, never a bare package name;
* the merge job applies the reviewed plan with ``--expect-tree auto``.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml

from reconciler.cli.main import build_parser
from reconciler.cli.review import MARKER_PREFIX

CI = Path(__file__).resolve().parents[2] / "examples" / "ci"
MAIN = CI / "github-actions.yml"
COMMENT = CI / "github-actions-comment.yml"
READ_ONLY = {"read", "none"}
# what would run code from the pull request, or install or build it
RUNNERS = {
    "git", "pip", "pip3", "python", "python3", "reconciler", "node", "npm", "npx", "make", "bash", "sh",
    "source", ".", "docker",
}


def _load(path: Path) -> dict[Any, Any]:
    data: dict[Any, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["on"] = data.pop(True, data.get("on"))  # YAML 1.1 reads a bare `on` as true
    return data


def _steps(job: dict[str, Any]) -> list[dict[str, Any]]:
    steps: list[dict[str, Any]] = job.get("steps", [])
    return steps


def _runs_pull_request_code_of_forks(job: dict[str, Any]) -> bool:
    condition = str(job.get("if", ""))
    if "github.event_name == 'push'" in condition:
        return False
    return "!github.event.pull_request.head.repo.fork" not in condition


def _permissions(workflow: dict[str, Any], job: dict[str, Any]) -> dict[str, str]:
    found = job.get("permissions", workflow.get("permissions", {}))
    assert isinstance(found, dict), "permissions are listed scope by scope, never read-all/write-all"
    return {str(k): str(v) for k, v in found.items()}


def test_the_workflows_have_the_jobs_of_the_pull_request_flow() -> None:
    main, comment = _load(MAIN), _load(COMMENT)
    assert set(main["jobs"]) == {"validate", "plan", "diff", "apply"}
    assert set(main["on"]) == {"pull_request", "push"}
    assert comment["on"] == {"workflow_run": {"workflows": [main["name"]], "types": ["completed"]}}


def test_jobs_running_fork_code_hold_no_secret_and_no_write_token() -> None:
    main = _load(MAIN)
    assert "secrets." not in yaml.safe_dump(main.get("env", {}))  # workflow-wide env reaches every job
    untrusted = [name for name, job in main["jobs"].items() if _runs_pull_request_code_of_forks(job)]
    assert sorted(untrusted) == ["diff", "validate"]
    for name in untrusted:
        job = main["jobs"][name]
        assert "secrets." not in yaml.safe_dump(job), f"job {name} runs a fork's code and names a secret"
        assert set(_permissions(main, job).values()) <= READ_ONLY, f"job {name} can write"
    for name, job in main["jobs"].items():  # the same-repository plan job too: comments come later
        if "pull_request" in str(job.get("if", "")):
            assert set(_permissions(main, job).values()) <= READ_ONLY, f"job {name} can write"
        for step in _steps(job):
            if str(step.get("uses", "")).startswith("actions/checkout@"):
                assert step["with"]["persist-credentials"] is False, f"job {name} keeps the token in .git"


def test_the_comment_job_never_checks_out_or_runs_pull_request_code() -> None:
    comment = _load(COMMENT)
    assert comment["permissions"] == {}
    [(name, job)] = comment["jobs"].items()
    assert _permissions(comment, job) == {"actions": "read", "pull-requests": "write"}
    assert "workflow_run.event == 'pull_request'" in job["if"]
    for step in _steps(job):
        uses = str(step.get("uses", ""))
        assert not uses.startswith("actions/checkout@"), "the comment job checks code out"
        script = str(step.get("run", ""))
        assert "${{" not in script, "event data goes into a script through env only (no injection)"
        for line in script.splitlines():
            first = line.strip().split(" ", 1)[0]
            assert first not in RUNNERS, f"the comment job runs {first!r}: {line.strip()}"
    script = next(str(s["run"]) for s in _steps(job) if "run" in s)
    assert MARKER_PREFIX in script and '"github-actions[bot]"' in script
    assert "RUN_HEAD_SHA" in script  # the PR number from the artifact is checked against the run


def test_every_artifact_upload_runs_always() -> None:
    uploads = [
        (path.name, name, step)
        for path in (MAIN, COMMENT)
        for name, job in _load(path)["jobs"].items()
        for step in _steps(job)
        if str(step.get("uses", "")).startswith("actions/upload-artifact@")
    ]
    assert {name for _, name, _ in uploads} == {"plan", "diff", "apply"}
    for file, name, step in uploads:
        assert "always()" in str(step.get("if", "")), f"{file}: an upload of job {name} is skipped on failure"


def test_the_reconciler_is_installed_pinned() -> None:
    main = _load(MAIN)
    install = main["env"]["RECONCILER_INSTALL"]
    assert re.fullmatch(r"gitops-reconciler @ git\+https://\S+@(v[0-9][0-9A-Za-z.\-]*|[0-9a-f]{40})", install)
    scripts = [str(s.get("run", "")) for job in main["jobs"].values() for s in _steps(job)]
    installs = [line.strip() for script in scripts for line in script.splitlines() if "pip install" in line]
    assert installs and set(installs) == {'pip install "$RECONCILER_INSTALL"'}


def _commands() -> list[list[str]]:
    found: list[list[str]] = []
    for job in _load(MAIN)["jobs"].values():
        for step in _steps(job):
            script = str(step.get("run", "")).replace("\\\n", " ")
            for line in script.splitlines():
                if re.match(r"\s*(if )?reconciler ", line):
                    words = shlex.split(re.split(r"\s(?:2?>|\|)", line, maxsplit=1)[0])
                    found.append(words[words.index("reconciler") + 1 :])
    return found


def test_the_merge_applies_the_reviewed_plan_against_the_merged_tree() -> None:
    main = _load(MAIN)
    apply_script = "\n".join(str(s.get("run", "")) for s in _steps(main["jobs"]["apply"]))
    assert "reconciler-plan-$tree" in apply_script and "git rev-parse HEAD:clusters" in apply_script
    plan_job = main["jobs"]["plan"]
    names = [str(s.get("with", {}).get("name", "")) for s in _steps(plan_job)]
    assert "reconciler-plan-${{ steps.plan.outputs.tree }}" in names
    checkout = _steps(plan_job)[0]
    assert checkout["with"]["ref"] == "${{ github.event.pull_request.head.sha }}"
    commands = _commands()
    applies = [c for c in commands if "apply" in c]
    assert applies and all(c[-4:] == ["--plan", "out/plan.json", "--expect-tree", "auto"] for c in applies)
    assert any(c[:1] == ["show"] and "markdown" in c for c in commands)


@pytest.mark.parametrize("words", _commands(), ids=lambda words: " ".join(words)[:60])
def test_every_reconciler_command_parses(words: list[str]) -> None:
    args = build_parser().parse_args([w.replace("$RECONCILER_STORE", "postgresql://ci@db/r") for w in words])
    assert args.command in {"validate", "plan", "show", "diff", "apply"}
