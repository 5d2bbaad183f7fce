"""Action graph: build order, reversed teardown order, cycles, determinism, DOT and text views."""

from __future__ import annotations

import random

import pytest

from reconciler.core.changes import Change
from reconciler.core.errors import UserError
from reconciler.core.graph import build_graph, levels, order_changes, to_dot, to_text
from reconciler.core.model import DesiredServer, ObservedServer, SourceLocation
from tests.engine.factories import desired, observed, run_diff


def ordered(want: list[DesiredServer], have: list[ObservedServer]) -> tuple[Change, ...]:
    return order_changes(run_diff(want, have).changes, want)


def ids(changes: tuple[Change, ...]) -> list[str]:
    return [c.id for c in changes]


def three_tier() -> list[DesiredServer]:
    """app depends on web, web on both db servers; alphabetically app < db < web."""
    return [
        desired("shop/app/0", depends_on=("shop/web/0",)),
        desired("shop/db/0"),
        desired("shop/db/1"),
        desired("shop/web/0", depends_on=("shop/db/0", "shop/db/1")),
    ]


def test_creates_follow_depends_on_order() -> None:
    changes = ordered(three_tier(), [])
    assert ids(changes) == [
        "create:shop/db/0",
        "create:shop/db/1",
        "create:shop/web/0",
        "create:shop/app/0",
    ]
    by_id = {c.id: c for c in changes}
    assert by_id["create:shop/web/0"].depends_on == ("create:shop/db/0", "create:shop/db/1")
    assert by_id["create:shop/app/0"].depends_on == ("create:shop/web/0",)
    assert by_id["create:shop/db/0"].depends_on == ()


def test_only_changed_dependencies_become_edges() -> None:
    want = three_tier()
    have = [observed(s) for s in want if s.key.startswith("shop/db/")]
    changes = ordered(want, have)
    assert ids(changes) == ["create:shop/web/0", "create:shop/app/0"]
    assert changes[0].depends_on == ()


def test_an_update_of_a_dependency_comes_before_the_dependent_create() -> None:
    want = three_tier()
    have = [observed(want[1], cpus=1), observed(want[2])]
    by_id = {c.id: c for c in ordered(want, have)}
    assert by_id["create:shop/web/0"].depends_on == ("update:shop/db/0",)


def test_deletes_run_in_reverse_dependency_order_using_member_level_dependencies() -> None:
    # web still depends on db at member level; both shrink from 2 to 1
    want = [desired("shop/db/0"), desired("shop/web/0", depends_on=("shop/db/0",))]
    have = [observed(s) for s in want]
    have += [observed(desired("shop/db/1")), observed(desired("shop/web/1"))]
    changes = ordered(want, have)
    assert ids(changes) == ["delete:shop/web/1", "delete:shop/db/1"]
    assert changes[1].depends_on == ("delete:shop/web/1",)


def test_deleting_a_dependency_waits_for_the_dependent_replace() -> None:
    want = [desired("shop/db/0"), desired("shop/web/0", image="debian-13", depends_on=("shop/db/0",))]
    have = [observed(want[0]), observed(desired("shop/web/0")), observed(desired("shop/db/1"))]
    changes = ordered(want, have)
    assert ids(changes) == ["replace:shop/web/0", "delete:shop/db/1"]
    assert changes[1].depends_on == ("replace:shop/web/0",)


def test_unrelated_deletes_have_no_order_between_them() -> None:
    have = [observed(desired("shop/db/1")), observed(desired("shop/web/1"))]
    changes = ordered([], have)
    assert ids(changes) == ["delete:shop/db/1", "delete:shop/web/1"]
    assert all(c.depends_on == () for c in changes)


def test_a_moved_server_is_created_before_the_old_one_is_deleted() -> None:
    want = [desired("shop/web/0")]
    have = [observed(desired("shop/web/0", provider="old-cloud"))]
    changes = ordered(want, have)
    assert ids(changes) == ["create:shop/web/0", "delete:shop/web/0"]
    assert changes[1].depends_on == ("create:shop/web/0",)


def test_a_cycle_is_a_user_error_naming_it() -> None:
    want = [
        desired("c/d/0", depends_on=("a/b/0",)),
        desired("a/b/0", depends_on=("c/d/0",)),
    ]
    with pytest.raises(UserError) as caught:
        ordered(want, [])
    assert "dependency cycle: create:a/b/0 -> create:c/d/0 -> create:a/b/0" in str(caught.value)


def test_a_cycle_error_points_at_the_yaml_when_it_knows_where() -> None:
    here = SourceLocation("clusters/shop.yaml", 12)
    want = [desired("shop/web/0", depends_on=("shop/web/0",), location=here)]
    with pytest.raises(UserError) as caught:
        ordered(want, [])
    (diagnostic,) = caught.value.diagnostics
    assert (diagnostic.file, diagnostic.line) == ("clusters/shop.yaml", 12)
    assert "dependency cycle: create:shop/web/0 -> create:shop/web/0" in diagnostic.message


def test_order_is_deterministic_whatever_the_input_order() -> None:
    want = three_tier() + [desired(f"shop/cache/{i}") for i in range(5)]
    have = [observed(desired(f"shop/old/{i}")) for i in range(5)]
    changes = list(run_diff(want, have).changes)
    expected = order_changes(changes, want)
    rng = random.Random(7)
    for _ in range(5):
        rng.shuffle(changes)
        rng.shuffle(want)
        assert order_changes(changes, want) == expected


def test_build_graph_carries_each_change_on_its_node() -> None:
    want = three_tier()
    changes = run_diff(want, []).changes
    graph = build_graph(changes, want)
    assert set(graph.nodes) == {c.id for c in changes}
    assert graph.nodes["create:shop/db/0"]["change"].key == "shop/db/0"
    assert graph.has_edge("create:shop/db/1", "create:shop/web/0")


def test_levels_and_text_view() -> None:
    changes = ordered(three_tier(), [])
    assert levels(changes) == {
        "create:shop/db/0": 1,
        "create:shop/db/1": 1,
        "create:shop/web/0": 2,
        "create:shop/app/0": 3,
    }
    assert to_text(changes).splitlines() == [
        "1. + create shop/db/0",
        "1. + create shop/db/1",
        "2. + create shop/web/0  (after create:shop/db/0, create:shop/db/1)",
        "3. + create shop/app/0  (after create:shop/web/0)",
    ]
    assert to_text(()) == "No changes.\n"


def test_dot_view_has_every_node_and_edge() -> None:
    changes = ordered(three_tier(), [])
    dot = to_dot(changes)
    assert dot.startswith("digraph plan {") and dot.rstrip().endswith("}")
    assert '"create:shop/db/0" [label="+ create shop/db/0", color=darkgreen];' in dot
    assert '"create:shop/web/0" -> "create:shop/app/0";' in dot
    assert dot.count("->") == 3
