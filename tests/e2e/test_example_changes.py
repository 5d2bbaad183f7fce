"""Changing a count, an input and a size in the example gives the expected plan; golden files
pin its text and markdown renderings (UPDATE_GOLDEN=1 rewrites them)."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from tests.e2e.conftest import Cli
from tests.e2e.test_cli import _set_count

GOLDEN = Path(__file__).parent / "golden"


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path.name}"
    path.write_text(text.replace(old, new, 1))


def _check_golden(name: str, text: str, workdir: Path) -> None:
    text = text.replace(str(workdir), "<dir>")
    target = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN"):
        target.parent.mkdir(exist_ok=True)
        target.write_text(text)
    assert text == target.read_text(), f"{name} differs; rerun with UPDATE_GOLDEN=1 if intended"


def test_count_input_and_size_changes_give_the_expected_plan(cli: Cli, workdir: Path) -> None:
    _edit(workdir / "providers.yaml", "max_parallel: 10", "max_parallel: 1")  # deterministic ids
    assert cli("apply", str(workdir), "--yes").code == 0
    _set_count(workdir, "app", 1)  # delete shop/app/1
    _set_count(workdir, "web", 4)  # create shop/web/3
    _edit(
        workdir / "shop.yaml", "server_name: shop.example.com", "server_name: www.example.com"
    )  # replace web
    templates = workdir / "templates.yaml"
    app_size = re.search(r"name: app\n(?:.*\n)*?    cpus: (\d+)", templates.read_text())
    assert app_size is not None
    start, end = app_size.span(1)
    text = templates.read_text()
    templates.write_text(text[:start] + "4" + text[end:])  # update shop/app/0 in place

    plan = cli("plan", str(workdir), "--format", "json")
    assert plan.code == 0, plan.err
    changes = {c["key"]: c["action"] for c in json.loads(plan.out)["changes"]}
    assert changes == {
        "shop/app/0": "update",
        "shop/app/1": "delete",
        "shop/web/0": "replace",
        "shop/web/1": "replace",
        "shop/web/2": "replace",
        "shop/web/3": "create",
    }
    text_plan = cli("plan", str(workdir))
    _check_golden("example-change.txt", text_plan.out, workdir)
    markdown = cli("plan", str(workdir), "--format", "markdown")
    _check_golden("example-change.md", markdown.out, workdir)

    applied = cli("apply", str(workdir), "--yes")
    assert applied.code == 0, applied.out + applied.err
    assert cli("plan", str(workdir), "--detailed-exitcode").code == 0
    servers = {s["key"]: s for s in json.loads(cli("simcloud", "list", "--format", "json").out)}
    assert sorted(servers) == [
        "shop/app/0",
        "shop/db/0",
        "shop/web/0",
        "shop/web/1",
        "shop/web/2",
        "shop/web/3",
    ]
    assert servers["shop/app/0"]["cpus"] == 4
