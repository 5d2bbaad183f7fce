"""An edited plan file with a wrong value anywhere — a bad number (decimal.InvalidOperation), NaN or
infinite money, a list where text belongs, an object where a list belongs — is one UserError naming
the file, from ``plan_from_dict`` itself, never an exception from a renderer later."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from reconciler.core.changes import Change, ChangeCause, FieldChange
from reconciler.core.cost import BudgetCheck, CostLine, CostSummary
from reconciler.core.errors import UserError
from reconciler.core.model import Action, ProviderConfig
from reconciler.core.plan import Plan
from reconciler.core.plan_codec import dump_plan, plan_from_dict, plan_to_dict
from tests.engine.factories import OWNER, desired, observed

T0 = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)


def _plan() -> Plan:
    web = desired("shop/web/0")
    old = observed(desired("shop/web/1"))
    return Plan(
        deployment=OWNER, created_at=T0, providers=(ProviderConfig(name="sim", type="simcloud"),),
        changes=(
            Change(id="create:shop/web/0", action=Action.CREATE, key=web.key, provider="sim",
                   cause=ChangeCause.NOT_PRESENT, reason="not present", after=web, token="t" * 32),
            Change(id="delete:shop/web/1", action=Action.DELETE, key=old.key, provider="sim",
                   cause=ChangeCause.NO_LONGER_DECLARED, reason="gone", before=old,
                   fields=(FieldChange("cpus", "2", "4"),)),
        ),
        basis=(old,),
        cost=CostSummary(
            by_cluster=(CostLine("shop", "USD", Decimal("0.01"), Decimal("0.02")),),
            budgets=(BudgetCheck("cap", "shop", "USD", Decimal("100"), Decimal("7.2"), Decimal("14.4")),),
        ),
    )


def _leaves(node: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _leaves(value, (*path, key))
    elif isinstance(node, list):
        for index, value in enumerate(node[:2]):
            yield from _leaves(value, (*path, index))
    if path:
        yield path


GARBAGE = ["NaN", "sNaN", "-Infinity", "1e999999", "abc", "", [], {}, None, -1, 10**30, True, 1.5]
DATA = plan_to_dict(_plan())
PATHS = sorted({p for p in _leaves(DATA) if p[0] != "basis"}, key=repr)


@pytest.mark.parametrize("garbage", GARBAGE, ids=repr)
def test_any_wrong_value_anywhere_is_a_plan_file_error_or_a_plan_that_renders(garbage: Any) -> None:
    from reconciler.cli import render, review

    for path in PATHS:
        data = copy.deepcopy(DATA)
        node = data
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = garbage
        try:
            plan = plan_from_dict(data, source="plan.json")
        except UserError as exc:
            assert str(exc).startswith("reconciler: plan.json: "), (path, str(exc))
            continue
        # Accepted: then everything a plan is used for works on it.
        render.render_text(plan)
        review.render_markdown(plan)
        dump_plan(plan)
        assert isinstance(plan.has_changes, bool) and isinstance(plan.breaks_budget, bool)


@pytest.mark.parametrize(
    ("path", "value", "said"),
    [
        (("cost", "before_hourly"), "lots", "InvalidOperation"),
        (("cost", "before_hourly"), "NaN", "not a finite amount"),
        (("cost", "by_cluster", 0, "after_hourly"), "Infinity", "not a finite amount"),
        (("cost", "totals", 0, "after_hourly"), "0.03", "the cost totals in USD are not the sums"),
        (("cost", "by_cluster", 0, "currency"), 7, "expected text"),
        (("cost", "budgets", 0, "limit_monthly"), "1e999999", "not a finite amount"),
        (("cost",), "NaN", "expected an object"),
        (("changes", 1, "fields", 0, "after"), 4, "expected text"),
        (("changes", 0, "id"), ["x"], "expected text"),
        (("changes",), {"a": 1}, "expected a list"),
        (("created_at",), [], "expected text"),
        (("changes", 0, "generation"), "2", "expected a whole number"),
        (("changes", 0, "after", "size", "cpus"), 10**30, "cpus must be an integer from 1 to 1024"),
        (("changes", 0, "after", "size", "cpus"), "2", "size cpus must be a whole number"),
    ],
)
def test_the_error_says_what_was_wrong(path: tuple[Any, ...], value: Any, said: str) -> None:
    data = copy.deepcopy(DATA)
    node = data
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    with pytest.raises(UserError, match="plan.json: not a valid plan file") as caught:
        plan_from_dict(data, source="plan.json")
    assert said in str(caught.value)


def test_the_plan_round_trips() -> None:
    assert plan_to_dict(plan_from_dict(copy.deepcopy(DATA))) == DATA
