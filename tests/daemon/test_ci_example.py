"""The example CI workflow is valid YAML and every reconciler command in it parses with our CLI."""

from __future__ import annotations

import shlex
from pathlib import Path

import yaml

from reconciler.cli.main import build_parser

WORKFLOW = Path(__file__).resolve().parents[2] / "examples" / "ci" / "github-actions.yml"


def _commands() -> list[list[str]]:
    found: list[list[str]] = []
    jobs = yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))["jobs"]
    for job in jobs.values():
        for step in job["steps"]:
            script = step.get("run", "").replace("\\\n", " ")
            for line in script.splitlines():
                words = shlex.split(line.split(">", 1)[0])
                if words[:1] == ["reconciler"]:
                    found.append(
                        [w.replace("$RECONCILER_STORE", "postgresql://ci@db/reconciler") for w in words[1:]]
                    )
    return found


def test_workflow_runs_validate_plan_diff_and_apply() -> None:
    data = yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))
    assert set(data["jobs"]) == {"validate", "plan", "diff", "apply"}
    commands = _commands()
    names = [next(w for w in c if not w.startswith("-") and "://" not in w) for c in commands]
    assert {"validate", "plan", "diff", "apply"} <= set(names)
    assert any("--detailed-exitcode" in c and "markdown" in c for c in commands)
    assert any(c[-2:] == ["--plan", "plan.json"] for c in commands)


def test_every_command_parses() -> None:
    parser = build_parser()
    for words in _commands():
        args = parser.parse_args(words)
        assert args.command in {"validate", "plan", "diff", "apply"}
