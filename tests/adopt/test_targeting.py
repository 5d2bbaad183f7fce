"""``--target``: selectors, the changes they keep (dependencies that must change first come
along, dependents stay), the cost after only those changes, the signed plan saying so, and
``graph --target`` drawing that same plan."""

from __future__ import annotations

import pytest

from reconciler.cli.main import main
from reconciler.cli.render import plan_summary
from reconciler.core.errors import UserError
from reconciler.core.graph import to_text
from reconciler.core.model import Action
from reconciler.core.plan_codec import dump_signed_plan, load_signed_plan
from reconciler.core.targeting import Selector, parse_selector, parse_selectors
from reconciler.run.apply import apply_plan
from reconciler.run.audit import new_run
from reconciler.run.planning import plan_path
from reconciler.run.workspace import Workspace
from tests.adopt.conftest import Write

SHOP = """\
apiVersion: reconciler/v1
kind: Cluster
metadata: {name: shop}
spec:
  provider: sim
  members:
    db: {template: db, count: 1}
    app: {template: web, count: 2, depends_on: [db]}
    web: {template: web, count: 1, depends_on: [app]}
---
apiVersion: reconciler/v1
kind: Cluster
metadata: {name: blog}
spec:
  provider: sim
  members:
    web: {template: web, count: 1}
"""


@pytest.mark.parametrize(
    ("text", "selector"),
    [
        ("shop", Selector("shop")),
        ("shop/web", Selector("shop", "web")),
        ("shop/web/2", Selector("shop", "web", 2)),
    ],
)
def test_selectors(text: str, selector: Selector) -> None:
    assert parse_selector(text) == selector and str(selector) == text


@pytest.mark.parametrize("text", ["", "Shop", "shop/web/02", "shop/web/x", "a/b/0/1", "shop//0"])
def test_bad_selectors(text: str) -> None:
    with pytest.raises(UserError, match="is not a selector"):
        parse_selector(text)


def test_a_member_brings_what_it_depends_on_and_leaves_its_dependents(folder: Write, ws: Workspace) -> None:
    plan = plan_path(folder(SHOP), ws, targets=["shop/app"])
    assert [(c.action, c.key) for c in plan.changes] == [
        (Action.CREATE, "shop/db/0"), (Action.CREATE, "shop/app/0"), (Action.CREATE, "shop/app/1"),
    ]
    assert plan.targets == ("shop/app",)
    assert "Targeted: shop/app (other keys were not planned)" in plan_summary(plan)


def test_the_cost_of_a_targeted_plan_is_after_its_changes_only(folder: Write, ws: Workspace) -> None:
    path = folder(SHOP)
    everything = plan_path(path, ws)
    one = plan_path(path, ws, targets=["blog/web/0"])
    assert [c.key for c in one.changes] == ["blog/web/0"]
    [one_total], [all_total] = one.cost.totals, everything.cost.totals  # one currency
    assert one_total.before_hourly == all_total.before_hourly == 0
    lines = {line.scope: line for line in one.cost.by_cluster}
    assert lines["blog"].after_hourly > 0 and "shop" not in lines  # shop runs nothing now, and will not
    assert one_total.after_hourly < all_total.after_hourly


def test_targets_are_signed_with_the_plan(folder: Write, ws: Workspace) -> None:
    plan = plan_path(folder(SHOP), ws, targets=["blog", "shop/db/0"])
    key = b"k" * 32
    text = dump_signed_plan(plan, key)
    assert load_signed_plan(text, key, source="plan.json").targets == ("blog", "shop/db/0")
    with pytest.raises(UserError, match="signature"):
        load_signed_plan(text.replace('"shop/db/0"', '"shop"', 1), key, source="plan.json")


def test_destroy_of_a_dependency_deletes_what_must_go_first(folder: Write, ws: Workspace) -> None:
    path = folder(SHOP)
    assert apply_plan(plan_path(path, ws), ws, new_run("t", None)).ok
    plan = plan_path(path, ws, destroy=True, targets=["shop/app"])
    assert sorted(c.key for c in plan.changes) == ["shop/app/0", "shop/app/1", "shop/web/0"]
    assert all(c.action is Action.DELETE for c in plan.changes)
    report = apply_plan(plan, ws, new_run("t", None))
    assert report.ok
    after = plan_path(path, ws)
    assert sorted(c.key for c in after.changes) == ["shop/app/0", "shop/app/1", "shop/web/0"]


def test_a_selector_that_matches_nothing_is_refused(folder: Write, ws: Workspace) -> None:
    with pytest.raises(UserError, match="shop/wbe matches no server"):
        plan_path(folder(SHOP), ws, targets=["shop/wbe"])
    assert parse_selectors(["shop", "shop"]) == (Selector("shop"),)


def test_graph_takes_the_targets_plan_takes(
    folder: Write, ws: Workspace, capsys: pytest.CaptureFixture[str]
) -> None:
    path = folder(SHOP)
    argv = ["--state-dir", str(ws.state_dir), "graph", str(path), "--target", "shop/app"]
    assert main(argv) == 0
    shown = capsys.readouterr()
    planned = plan_path(path, ws, targets=["shop/app"])
    assert shown.out == to_text(planned.changes)  # the very plan `plan --target shop/app` makes
    assert shown.out.splitlines() == [
        "1. + create shop/db/0",
        "2. + create shop/app/0  (after create:shop/db/0)",
        "2. + create shop/app/1  (after create:shop/db/0)",
    ]
    assert "Targeted: shop/app (other keys were not planned)." in shown.err
    assert main([*argv, "--target", "blog", "--format", "dot"]) == 0
    dot = capsys.readouterr().out
    assert '"create:blog/web/0"' in dot and '"create:shop/web/0"' not in dot
    assert main(["--state-dir", str(ws.state_dir), "graph", str(path), "--target", "shop/wbe"]) == 1
    assert "shop/wbe matches no server" in capsys.readouterr().err
