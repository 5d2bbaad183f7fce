"""The reviewed plan is the one applied: a plan is tied to the git tree of its folder.

`plan` records, signed, the tree of the desired-state folder at the commit it planned
(`git rev-parse HEAD:clusters`). The merge job applies the saved plan with
`apply --plan plan.json --expect-tree auto`: a merged commit whose folder differs from the
reviewed one is refused — nothing applied, nothing recorded — and one whose folder is the same
(whatever else the merge changed) is applied.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

from tests.e2e.conftest import Cli

GIT = ["git", "-c", "user.name=Ada", "-c", "user.email=ada@example.com", "-c", "commit.gpgsign=false"]


def _git(repo: Path, *args: str) -> str:
    done = subprocess.run([*GIT, "-C", str(repo), *args], check=True, capture_output=True, text=True)
    return done.stdout.strip()


def _repo(tmp_path: Path) -> Path:
    """tmp_path as a repository with the example in clusters/ (the cli runs there)."""
    _git(tmp_path, "init", "-q", "-b", "main")
    (tmp_path / ".gitignore").write_text("state/\n*.json\n*.md\n")
    _git(tmp_path, "add", "-A")
    _git(tmp_path, "commit", "-qm", "the shop")
    return tmp_path


def _servers(cli: Cli) -> list[str]:
    return [s["key"] for s in json.loads(cli("simcloud", "list", "--format", "json").out)]


def _plan(cli: Cli, workdir: Path, out: Path) -> dict[str, object]:
    made = cli("plan", str(workdir), "--format", "json", "--out", str(out))
    assert made.code == 0, made.err
    data: dict[str, object] = json.loads(out.read_text())
    return data


def test_the_plan_records_the_tree_of_its_folder(cli: Cli, workdir: Path, tmp_path: Path) -> None:
    repo = _repo(tmp_path)
    data = _plan(cli, workdir, tmp_path / "plan.json")
    assert data["tree"] == _git(repo, "rev-parse", "HEAD:clusters")
    assert data["tree_path"] == "clusters" and data["commit"] == _git(repo, "rev-parse", "HEAD")


def test_a_merged_commit_whose_tree_differs_is_not_applied_from_the_stale_plan(
    cli: Cli, workdir: Path, tmp_path: Path
) -> None:
    repo = _repo(tmp_path)
    plan_file = tmp_path / "plan.json"
    reviewed = _plan(cli, workdir, plan_file)["tree"]
    shop = workdir / "shop.yaml"  # the merge brings a change nobody reviewed in this plan
    text, n = re.subn(r"(\n\s+web:\n(?:\s+.*\n)*?\s+count: )\d+", r"\g<1>5", shop.read_text(), count=1)
    assert n == 1
    shop.write_text(text)
    _git(repo, "commit", "-qam", "five web servers")
    merged = _git(repo, "rev-parse", "HEAD:clusters")
    assert merged != reviewed

    result = cli("apply", "--plan", str(plan_file), "--expect-tree", "auto")
    assert result.code == 1 and "Traceback" not in result.err
    assert f"the plan was made from tree {str(reviewed)[:12]} of clusters" in result.err
    assert f"at HEAD ({_git(repo, 'rev-parse', 'HEAD')[:12]}) is {merged[:12]}" in result.err
    assert "is not the one reviewed; nothing was applied" in result.err
    assert _servers(cli) == []
    assert cli("audit", "log", "--format", "json").out == ""

    given = cli("apply", "--plan", str(plan_file), "--expect-tree", merged)
    assert given.code == 1 and "but the tree given is" in given.err
    assert _servers(cli) == []


def test_a_merge_that_leaves_the_folder_as_reviewed_applies_the_plan(
    cli: Cli, workdir: Path, tmp_path: Path
) -> None:
    repo = _repo(tmp_path)
    plan_file = tmp_path / "plan.json"
    tree = _plan(cli, workdir, plan_file)["tree"]
    (repo / "README.txt").write_text("docs change beside the desired state\n")
    _git(repo, "add", "README.txt")
    _git(repo, "commit", "-qm", "docs")
    result = cli("apply", "--plan", str(plan_file), "--expect-tree", "auto")
    assert result.code == 0, result.err
    assert len(_servers(cli)) == 6
    again = _plan(cli, workdir, tmp_path / "again.json")
    assert again["tree"] == tree and again["changes"] == []


def test_a_folder_with_uncommitted_changes_records_no_tree_and_cannot_be_expected(
    cli: Cli, workdir: Path, tmp_path: Path
) -> None:
    _repo(tmp_path)
    (workdir / "extra.yaml").write_text("# not committed\n")
    plan_file = tmp_path / "plan.json"
    made = cli("plan", str(workdir), "--format", "json", "--out", str(plan_file))
    assert made.code == 0
    assert "Warning: the plan records no git tree: clusters has changes not in commit" in made.err
    assert json.loads(plan_file.read_text())["tree"] is None
    result = cli("apply", "--plan", str(plan_file), "--expect-tree", "auto")
    assert result.code == 1 and "the plan records no desired-state tree" in result.err
    assert _servers(cli) == []


def test_the_tree_is_signed_and_the_option_is_checked(cli: Cli, workdir: Path, tmp_path: Path) -> None:
    repo = _repo(tmp_path)
    plan_file = tmp_path / "plan.json"
    _plan(cli, workdir, plan_file)
    data = json.loads(plan_file.read_text())
    data["tree"] = _git(repo, "rev-parse", "HEAD^{tree}")  # claim another tree
    plan_file.write_text(json.dumps(data))
    edited = cli("apply", "--plan", str(plan_file), "--expect-tree", "auto")
    assert edited.code == 1 and "edited after it was made" in edited.err
    bad = cli("apply", "--plan", str(plan_file), "--expect-tree", "main")
    assert bad.code == 1 and "give auto or a full git tree sha" in bad.err
    alone = cli("apply", str(workdir), "--yes", "--expect-tree", "auto")
    assert alone.code == 1 and "--expect-tree checks a saved plan" in alone.err


def test_plan_from_a_source_repository_records_the_tree(cli: Cli, workdir: Path, tmp_path: Path) -> None:
    repo = _repo(tmp_path)
    out = tmp_path / "source.json"
    made = cli(
        "plan", "--source", str(repo), "--rev", "main", "clusters", "--format", "json", "--out", str(out)
    )
    assert made.code == 0, made.err
    data = json.loads(out.read_text())
    assert (data["tree"], data["tree_path"]) == (_git(repo, "rev-parse", "HEAD:clusters"), "clusters")


def test_show_renders_the_saved_plan_the_comment_is_made_of(cli: Cli, workdir: Path, tmp_path: Path) -> None:
    plan_file, comment = tmp_path / "plan.json", tmp_path / "comment.md"
    _plan(cli, workdir, plan_file)
    shown = cli("show", str(plan_file), "--format", "markdown", "--out", str(comment), "--full-plan", "run 7")
    assert shown.code == 0 and shown.out == ""
    text = comment.read_text()
    assert text.startswith("<!-- reconciler-plan: clusters -->\n**Plan: 6 to create")
    assert cli("show", str(plan_file)).out.startswith("The reconciler will perform the following actions:")
    data = json.loads(plan_file.read_text())
    data["changes"] = data["changes"][1:]
    plan_file.write_text(json.dumps(data))
    edited = cli("show", str(plan_file))
    assert edited.code == 1 and "edited after it was made" in edited.err
