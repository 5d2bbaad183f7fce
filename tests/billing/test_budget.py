"""Budgets: a plan that would push a cluster (or everything) over its monthly ceiling is marked,
and ``plan --detailed-exitcode`` exits 3 so CI can block it."""

from __future__ import annotations

import dataclasses
import json
from decimal import Decimal
from pathlib import Path

from reconciler.cli.common import EXIT_BUDGET, EXIT_CHANGES
from reconciler.core.budgets import check_budgets
from reconciler.core.changes import Change, ChangeCause
from reconciler.core.cost import CostLine, CostSummary
from reconciler.core.model import Action, Budget, DesiredServer, PriceList, Size
from reconciler.core.plan_codec import load_plan
from tests.billing.conftest import Cli, InProcess, write_state

T0 = "2026-11-01T00:00:00Z"
BUDGETS = """\
apiVersion: reconciler/v1
kind: Budget
metadata:
  name: shop-cap
spec:
  scope: shop
  monthly: "150.00"
---
apiVersion: reconciler/v1
kind: Budget
metadata:
  name: everything
spec:
  scope: global
  monthly: 1000
  currency: USD
"""


def test_plans_against_budgets(tmp_path: Path) -> None:
    cli = InProcess(tmp_path / "state")
    infra = write_state(tmp_path / "infra", count=2, budgets=BUDGETS)
    within = cli("plan", str(infra), "--detailed-exitcode", now=T0)  # 2 × 0.10/h × 720 h = $144
    assert within.code == EXIT_CHANGES, within.out + within.err
    assert ("Budget shop-cap (cluster shop): $0.00 → $144.00 per 30-day month, ceiling $150.00: "
            "within") in within.out
    assert "over budget" not in within.out

    write_state(infra, count=2, large=True, budgets=BUDGETS)  # 2 × 0.40/h = $576 a month
    over = cli("plan", str(infra), "--detailed-exitcode", now=T0)
    assert over.code == EXIT_BUDGET, over.out + over.err
    assert ("Budget shop-cap (cluster shop): $0.00 → $576.00 per 30-day month, ceiling $150.00: "
            "EXCEEDED by $426.00; this plan breaks the budget") in over.out
    assert ("Budget everything (all clusters): $0.00 → $576.00 per 30-day month, ceiling $1,000.00: "
            "within") in over.out
    assert "  + shop/web/0  (create: not present) [over budget: shop-cap]" in over.out
    assert "  + shop/web/1  (create: not present) [over budget: shop-cap]" in over.out
    assert "  shop: $0.00/h → $0.80/h (+$0.80/h, +$576.00 per 30-day month)" in over.out

    plan = json.loads(cli("plan", str(infra), "--format", "json", now=T0).out)
    (shop, everything) = sorted(plan["cost"]["budgets"], key=lambda b: b["name"] != "shop-cap")
    assert (shop["broken"], shop["limit_monthly"]) == (True, "150.00")
    assert shop["keys"] == ["shop/web/0", "shop/web/1"]
    assert everything["broken"] is False
    markdown = cli("plan", str(infra), "--format", "markdown", now=T0).out
    assert "> **Budget shop-cap (cluster shop)" in markdown
    assert "<b>[over budget: shop-cap]</b>" in markdown
    assert "| change /hour |" in markdown

    # a saved plan keeps its budget checks
    saved = tmp_path / "plan.json"
    assert cli("plan", str(infra), "--format", "json", "--out", str(saved), now=T0).code == 0
    assert load_plan(saved.read_text()).breaks_budget


def test_only_the_changes_that_raise_cost_are_marked(tmp_path: Path) -> None:
    cli = InProcess(tmp_path / "state")
    infra = write_state(tmp_path / "infra", count=2, budgets=BUDGETS)
    assert cli("apply", str(infra), "--yes", now=T0).code == 0
    write_state(infra, count=3, budgets=BUDGETS)  # $216 a month: the third server breaks it
    more = cli("plan", str(infra), "--detailed-exitcode", now=T0)
    assert more.code == EXIT_BUDGET
    assert "  + shop/web/2  (create: not present) [over budget: shop-cap]" in more.out
    assert "$144.00 → $216.00" in more.out

    write_state(infra, count=2, large=True, budgets=BUDGETS)
    assert cli("apply", str(infra), "--yes", now=T0).code == 0  # apply does not refuse; plan reports
    write_state(infra, count=1, large=True, budgets=BUDGETS)  # $576 → $288: still over, but cheaper
    fewer = cli("plan", str(infra), "--detailed-exitcode", now=T0)
    assert fewer.code == EXIT_CHANGES, fewer.out
    assert "over by $138.00, but this plan does not raise it" in fewer.out
    assert "[over budget" not in fewer.out


def test_budget_in_a_currency_its_scope_is_not_priced_in_is_refused_where_written(tmp_path: Path) -> None:
    cli = InProcess(tmp_path / "state")
    euros = BUDGETS.replace("currency: USD", "currency: EUR")
    infra = write_state(tmp_path / "infra", count=2, large=True, budgets=euros)
    result = cli("plan", str(infra), "--detailed-exitcode", now=T0)
    assert result.code == 1, result.out + result.err
    assert result.err == (
        f"Error: {infra / 'budgets.yaml'}:16: Budget 'everything' is in EUR, but all clusters are priced in "
        "USD (prices in USD): it could never be exceeded; write currency: USD, or price its servers in EUR\n"
    )


def test_exit_code_3_through_the_command(cli: Cli, tmp_path: Path) -> None:
    infra = write_state(tmp_path / "infra", count=2, large=True, budgets=BUDGETS)
    result = cli("plan", str(infra), "--detailed-exitcode")
    assert result.code == 3, result.out + result.err
    assert result.err == ""


def _server(key: str, flavor: str) -> DesiredServer:
    cluster, member, ordinal = key.split("/")
    return DesiredServer(key=key, name=key.replace("/", "-"), cluster=cluster, member=member,
                         ordinal=int(ordinal), provider="sim", provider_type="simcloud", template="t",
                         image="i", size=Size(1, 1024, 10), flavor=flavor)


def test_check_budgets_by_hand() -> None:
    prices = PriceList(name="p", currency="USD", flavor_hourly={"s": Decimal("0.10"), "l": Decimal("0.40")})
    cost = CostSummary(by_cluster=(CostLine("a", "USD", Decimal("0.10"), Decimal("0.40")),
                                   CostLine("b", "USD", Decimal("0.20"), Decimal("0.10"))))
    changes = (
        Change(id="a/x/0", action=Action.CREATE, key="a/x/0", provider="sim",
               cause=ChangeCause.NOT_PRESENT, reason="",
               after=_server("a/x/0", "l")),
        Change(id="b/x/1", action=Action.DELETE, key="b/x/1", provider="sim",
               cause=ChangeCause.NO_LONGER_DECLARED, reason=""),
    )
    budgets = {
        "a": Budget(name="a", scope="a", monthly=Decimal(200)),
        "b": Budget(name="b", scope="b", monthly=Decimal(50)),
        "all": Budget(name="all", scope="global", monthly=Decimal(360)),
        "none": Budget(name="none", scope="c", monthly=Decimal(0)),
    }
    checks, notes = check_budgets(budgets, cost, changes, lambda provider: prices)
    assert notes == ()
    found = {c.name: (c.before_monthly, c.after_monthly, c.broken, c.over, c.keys) for c in checks}
    assert found == {
        "a": (Decimal("72.00"), Decimal("288.00"), True, True, ("a/x/0",)),
        "b": (Decimal("144.00"), Decimal("72.00"), False, True, ()),
        "all": (Decimal("216.00"), Decimal("360.00"), False, False, ("a/x/0",)),  # exactly at the ceiling
        "none": (Decimal(0), Decimal(0), False, False, ()),
    }
    assert {c.currency for c in checks} == {"USD"}  # no currency written: the one its scope is priced in


def test_check_budgets_compares_each_in_its_own_currency_and_says_which_it_cannot() -> None:
    usd = PriceList(name="us", currency="USD", flavor_hourly={"s": Decimal("0.10")})
    eur = PriceList(name="eu", currency="EUR", flavor_hourly={"s": Decimal("0.20")})
    cost = CostSummary(by_cluster=(CostLine("a", "EUR", Decimal(0), Decimal("0.40")),
                                   CostLine("a", "USD", Decimal("0.10"), Decimal(0)),
                                   CostLine("b", "USD", Decimal(0), Decimal("0.10"))))
    budgets = {
        "a-eur": Budget(name="a-eur", scope="a", monthly=Decimal(100), currency="EUR"),
        "a-usd": Budget(name="a-usd", scope="a", monthly=Decimal(100), currency="USD"),
        "b-eur": Budget(name="b-eur", scope="b", monthly=Decimal(1), currency="EUR"),
        "a-any": Budget(name="a-any", scope="a", monthly=Decimal(1)),
        "all-usd": Budget(name="all-usd", scope="global", monthly=Decimal(50), currency="USD"),
    }
    changes = (Change(id="a/x/0", action=Action.CREATE, key="a/x/0", provider="eu",
                      cause=ChangeCause.NOT_PRESENT, reason="",
                      after=dataclasses.replace(_server("a/x/0", "s"), provider="eu")),)
    lists = {"eu": eur, "us": usd}
    checks, notes = check_budgets(budgets, cost, changes, lambda provider: lists.get(provider))
    found = {c.name: (c.currency, c.before_monthly, c.after_monthly, c.broken, c.keys) for c in checks}
    assert found == {
        "a-eur": ("EUR", Decimal(0), Decimal("288.00"), True, ("a/x/0",)),  # raises the EUR cost only
        "a-usd": ("USD", Decimal("72.00"), Decimal(0), False, ()),
        "all-usd": ("USD", Decimal("72.00"), Decimal("72.00"), False, ()),
    }
    assert notes == (
        "Budget 'a-any' names no currency, and cluster a is priced in EUR and USD; it was not checked — "
        "write currency: in it (one Budget per currency)",
        "Budget 'b-eur' is in EUR but cluster b is priced in USD; it was not checked — "
        "write the ceiling in USD",
    )
