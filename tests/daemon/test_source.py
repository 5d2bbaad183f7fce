"""Desired state from git: the daemon's clone and checkouts, ``plan``/``apply --source``, and ``diff``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reconciler.config import load_desired_state
from reconciler.core.errors import UserError
from reconciler.daemon.source import GitSource, redact_url, repo_name, temporary_checkout
from tests.daemon.conftest import TEMPLATES, GitRepo, cluster
from tests.e2e.conftest import Cli


@pytest.mark.parametrize(
    ("url", "name"),
    [
        ("file:///srv/infra.git", "infra"),
        ("https://github.com/acme/Shop_Infra", "shop-infra"),
        ("git@github.com:acme/infra.git", "infra"),
        ("/home/me/work/infra/", "infra"),
        ("ssh://git@host:2222/x/y/platform.git", "platform"),
    ],
)
def test_repo_name_is_the_folder_every_checkout_lands_in(url: str, name: str) -> None:
    assert repo_name(url) == name


def test_tokens_in_urls_are_hidden() -> None:
    assert (
        redact_url("https://bot:ghp_secret@github.com/acme/infra") == "https://bot:***@github.com/acme/infra"
    )
    assert redact_url("file:///srv/infra.git") == "file:///srv/infra.git"


def test_clone_fetch_checkout_and_prune(repo: GitRepo, tmp_path: Path) -> None:
    source = GitSource(repo.url, tmp_path / "home", branch="main", path="clusters/")
    first = source.fetch()
    assert first.sha == repo.git("rev-parse", "HEAD")
    assert first.author == "Ada Lovelace <ada@example.com>" and first.message == "shop with two web"
    folder = source.checkout(first)
    assert folder == tmp_path / "home" / "checkouts" / first.sha / "infra" / "clusters"
    assert len(load_desired_state(folder).servers) == 3
    assert load_desired_state(folder).deployment == "clusters"

    second_sha = repo.commit({"shop.yaml": cluster(4)}, "four web")
    second = source.fetch()  # the same clone, fetched again
    assert second.sha == second_sha
    assert len(load_desired_state(source.checkout(second)).servers) == 5
    assert len(load_desired_state(source.checkout(first)).servers) == 3  # a commit's tree never changes
    source.prune({second.sha})
    assert sorted(p.name for p in (tmp_path / "home" / "checkouts").iterdir()) == [second.sha]
    assert source.has(first.sha) and not source.has("0" * 40)


def test_source_problems_are_user_errors(repo: GitRepo, tmp_path: Path) -> None:
    with pytest.raises(UserError, match="cannot clone"):
        GitSource(str(tmp_path / "nowhere"), tmp_path / "a").fetch()
    with pytest.raises(UserError, match="cannot fetch branch 'release'"):
        GitSource(repo.url, tmp_path / "b", branch="release").fetch()
    source = GitSource(repo.url, tmp_path / "c", path="elsewhere")
    with pytest.raises(UserError, match="has no folder 'elsewhere'; check --path"):
        source.checkout(source.fetch())
    with pytest.raises(UserError, match="must be a folder inside the repository"):
        GitSource(repo.url, tmp_path / "d", path="../etc")
    with pytest.raises(UserError, match="is not a branch, tag or commit"):
        GitSource(repo.url, tmp_path / "e").resolve("no-such-rev")


def test_temporary_checkout_names_files_relative_to_the_repository(repo: GitRepo) -> None:
    bad = repo.commit({"shop.yaml": cluster("many")}, "bad count")
    with pytest.raises(UserError) as caught:
        with temporary_checkout(repo.url, branch="main", rev=bad, path="clusters") as (folder, commit, _, _):
            assert commit.sha == bad
            load_desired_state(folder)
    assert [str(d) for d in caught.value.diagnostics] == [
        "clusters/shop.yaml:16: spec.members.web.count must be an integer, got the string 'many'"
    ]


def test_plan_and_apply_a_commit_of_a_repository(repo: GitRepo, cli: Cli, tmp_path: Path) -> None:
    first = repo.git("rev-parse", "HEAD")
    repo.commit({"shop.yaml": cluster(5)}, "five web", author="Bob Builder <bob@example.com>")
    result = cli("plan", "--source", repo.url, "--rev", first, "clusters", "--format", "json")
    assert result.code == 0, result.err
    plan = json.loads(result.out)
    assert plan["commit"] == first and len(plan["changes"]) == 3

    result = cli("plan", "--source", repo.url, "clusters", "--format", "markdown", "--detailed-exitcode")
    assert result.code == 2 and "<code>shop/web</code> (ordinals 0–4)" in result.out  # the tip: five web

    source = ("--source", str(repo.path), "--branch", "main", "clusters")
    result = cli("--actor", "ci-bot", "apply", *source, "--yes")
    assert result.code == 0, result.err
    log = [json.loads(line) for line in cli("audit", "log", "--format", "json").out.splitlines()]
    created = [e for e in log if e["action"] == "create" and e["outcome"] == "succeeded"]
    assert len(created) == 6 and {e["author"] for e in created} == {"Bob Builder <bob@example.com>"}
    assert {e["actor"] for e in created} == {"ci-bot"}  # the operator, not the commit's author
    assert {e["commit"] for e in created} == {repo.git("rev-parse", "HEAD")}

    assert cli("plan", "--rev", first, "clusters").code == 1  # --rev alone names no repository
    result = cli("apply", "--source", repo.url, "--plan", str(tmp_path / "x.json"))
    assert result.code == 1 and "--source needs PATH" in result.err


def test_diff_compares_two_commits_without_any_cloud(repo: GitRepo, cli: Cli, state_dir: Path) -> None:
    base = repo.git("rev-parse", "HEAD")
    bigger = TEMPLATES.replace("cpus: 1", "cpus: 2")
    head = repo.commit({"shop.yaml": cluster(3), "templates.yaml": bigger}, "three web, two cpus")
    folder = repo.path / "clusters"

    result = cli("diff", "--base", base, "--head", head, str(folder), "--format", "json")
    assert result.code == 0, result.err
    data = json.loads(result.out)
    assert data["summary"] == {"added": 1, "changed": 3, "removed": 0, "unchanged": 0}
    changed = {s["key"]: s for s in data["servers"]}
    assert changed["shop/web/2"]["change"] == "added"
    assert changed["shop/db/0"]["fields"] == [{"name": "cpus", "before": "1", "after": "2"}]
    assert (data["cost"]["before_hourly"], data["cost"]["after_hourly"]) == ("0.0300", "0.0400")
    assert not state_dir.exists()  # no store, no simcloud: nothing was touched

    result = cli("diff", "--base", base, str(folder), "--format", "markdown", "--detailed-exitcode")
    assert result.code == 2
    assert "**1 added, 3 changed, 0 removed, 0 unchanged**" in result.out
    assert "| `+` | `shop/web/2` | sim | added |" in result.out
    assert "(+$0.01/h, +$7.20 per 30-day month)" in result.out

    text = cli("diff", "--base", "HEAD", str(folder)).out
    assert "No servers added, changed or removed." in text and "Servers: 0 added" in text

    repo.commit({"shop.yaml": cluster("lots")}, "broken")
    result = cli("diff", "--base", "HEAD", "--head", base, str(folder))
    assert result.code == 1
    assert "Error: HEAD:clusters/shop.yaml:16: spec.members.web.count must be an integer" in result.err
