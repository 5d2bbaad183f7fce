"""Policies on a plan: change and plan rules, monthly_cost, flavors once filled, change windows
(open or not at an instant, heals), the gate before apply, and the plan file carrying it all signed."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from reconciler.cli.render import render_text
from reconciler.cli.review import render_markdown
from reconciler.config.cel import Compiled, compile_rule
from reconciler.core.audit_detail import WindowOverride
from reconciler.core.changes import ChangeCause
from reconciler.core.clock import Clock
from reconciler.core.cost import CostLine, CostSummary
from reconciler.core.errors import PolicyDeniedError, UserError
from reconciler.core.model import DesiredState, PriceList, ServerStatus
from reconciler.core.plan import Plan
from reconciler.core.plan_codec import dump_signed_plan, load_signed_plan
from reconciler.core.plan_signature import PlanSignatureError
from reconciler.core.policy import (
    PlanFacts,
    check_policies,
    holds,
    open_windows,
    plan_variables,
    window_holds,
)
from reconciler.core.policy_model import (
    GLOBAL_SCOPE,
    AllowedField,
    AllowList,
    ChangeWindow,
    Enforcement,
    Policy,
    PolicyRule,
    Quota,
    QuotaResource,
    ViolationKind,
    Where,
)
from reconciler.run.gate import check_policy
from reconciler.run.planning import make_plan
from tests.engine.factories import OWNER, desired, observed, provider_config

KEY = b"p" * 32
MONDAY = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)
SATURDAY = datetime(2026, 11, 7, 10, 0, tzinfo=UTC)
WEEKEND = "0 18 * * 5"  # Friday 18:00 for 62 hours: until Monday 08:00


def rule(name: str, expr: str, message: str = "", line: int = 20) -> PolicyRule:
    compiled = compile_rule(expr)
    assert isinstance(compiled, Compiled), compiled
    return PolicyRule(
        name=name,
        expr=expr,
        message=message or f"{name} is false",
        subject=compiled.subject,
        where=Where("policy.yaml", line),
        uses_plan=compiled.uses_plan,
        program=compiled.program,
    )


def window(
    *, allow_heal: bool = True, enforcement: Enforcement = Enforcement.DENY, scope: str = "shop"
) -> ChangeWindow:
    return ChangeWindow(
        policy="limits",
        scope=scope,
        enforcement=enforcement,
        deny=WEEKEND,
        duration_hours=62,
        message="no changes over the weekend",
        allow_heal=allow_heal,
        where=Where("policy.yaml", 30),
    )


def policy(enforcement: Enforcement = Enforcement.DENY, scope: str = "shop", **parts: object) -> Policy:
    return Policy(name="limits", scope=scope, enforcement=enforcement, where=Where("policy.yaml", 1), **parts)  # type: ignore[arg-type]


PRICES = PriceList(name="standard", flavor_hourly={"sim.small": Decimal("1"), "sim.large": Decimal("4")})


def plan_for(policies: tuple[Policy, ...], *, want=None, have=None, now: datetime = MONDAY) -> Plan:  # type: ignore[no-untyped-def]
    if want is None:
        want = [desired("shop/web/0", flavor="sim.small"), desired("shop/web/1", flavor="sim.small")]
    state = DesiredState(
        deployment=OWNER,
        source_path="clusters",
        providers=(dataclasses.replace(provider_config(), price_list="standard"),),
        servers=tuple(want),
        price_lists={"standard": PRICES},
        policies=policies,
    )
    return make_plan(state, have or [], {}, clock=Clock(fixed=now), last_generation=lambda key: None)


# --- change and plan rules ---------------------------------------------------------------------
def test_a_change_rule_sees_the_change_and_its_server() -> None:
    prod = desired("shop/db/0", image="debian-13", tags=(("env", "prod"),))
    old = observed(desired("shop/db/0", image="debian-12", tags=(("env", "prod"),)))
    dev = desired("shop/web/0", image="debian-13")
    dev_old = observed(desired("shop/web/0", image="debian-12"))
    guard = rule(
        "no-prod-replace",
        "!(change.action == 'replace' && has(server.tags.env) && server.tags.env == 'prod')",
        "production servers are never replaced by a plan",
    )
    plan = plan_for((policy(rules=(guard,)),), want=[prod, dev], have=[old, dev_old])
    assert {c.key: c.action.value for c in plan.changes} == {"shop/db/0": "replace", "shop/web/0": "replace"}
    (violation,) = plan.violations
    found = (violation.rule, violation.kind, violation.keys)
    assert found == ("no-prod-replace", ViolationKind.RULE, ("shop/db/0",))
    assert plan.denied == (violation,)


def test_a_delete_is_judged_on_the_server_it_removes() -> None:
    gone = observed(desired("shop/db/0", tags=(("env", "prod"),)))
    guard = rule("keep-prod", "!(change.action == 'delete' && server.tags.env == 'prod')")
    plan = plan_for((policy(rules=(guard,)),), want=[], have=[gone])
    assert [(v.rule, v.keys) for v in plan.violations] == [("keep-prod", ("shop/db/0",))]


def test_a_change_rule_that_cannot_be_evaluated_is_a_violation_of_its_own() -> None:
    guard = rule("env", "change.action == 'create' && server.tags.env == 'prod'")
    (violation,) = plan_for((policy(rules=(guard,)),)).violations
    assert violation.kind is ViolationKind.EVALUATION
    assert violation.message == "could not be evaluated: no such member in mapping: 'env'"
    assert violation.keys == ("shop/web/0", "shop/web/1")


def test_plan_rules_see_counts_and_cost_of_the_scope() -> None:
    rules = (
        rule("few-creates", "plan.counts.create <= 1", "at most one new server per plan"),
        rule("cheap", "plan.cost.after <= 1000.0 && plan.cost.delta < 2000.0", "keep it cheap"),
        rule("fine", "plan.changes == 2 && plan.cost.currency == 'USD' && plan.counts.unchanged == 0"),
    )
    plan = plan_for((policy(rules=rules),))
    assert [(v.rule, v.message, v.keys) for v in plan.violations] == [
        ("few-creates", "at most one new server per plan", ("shop/web/0", "shop/web/1")),
        ("cheap", "keep it cheap", ("shop/web/0", "shop/web/1")),  # 2 × $1/h × 720 = $1440 a month
    ]


def test_monthly_cost_is_a_quota_on_the_plan() -> None:
    quota = Quota(QuotaResource.MONTHLY_COST, Decimal("1000.00"), Where("policy.yaml", 9))
    (violation,) = plan_for((policy(quotas=(quota,)),)).violations
    assert violation.rule == "quotas.monthly_cost" and violation.where.line == 9
    assert violation.message == (
        "the plan's cost after is 1440.00 USD per 30-day month in cluster shop, over the quota of 1000.00 USD"
    )
    under = Quota(QuotaResource.MONTHLY_COST, Decimal("1440"), Where("policy.yaml", 9))
    assert plan_for((policy(quotas=(under,)),)).violations == ()


def test_flavors_are_checked_once_the_plan_knows_them() -> None:
    allow = AllowList(AllowedField.FLAVORS, ("sim.small",), Where("policy.yaml", 8))
    want = [desired("shop/web/0", flavor="sim.large"), desired("shop/web/1")]  # the second: none given
    plan = plan_for((policy(allowed=(allow,)),), want=want)
    assert [(v.message, v.keys) for v in plan.violations] == [
        ("no flavor is given, and one is needed (allowed: sim.small)", ("shop/web/1",)),
        ("flavor 'sim.large' is not allowed (allowed: sim.small)", ("shop/web/0",)),
    ]


def test_a_warn_policy_never_denies_and_other_scopes_are_left_alone() -> None:
    noisy = policy(Enforcement.WARN, rules=(rule("never", "false"),))
    tiny = policy(rules=(rule("tiny", "server.size.cpus < 1"),))
    elsewhere = dataclasses.replace(tiny, name="other", scope="ops")
    plan = plan_for((noisy, elsewhere))
    assert [(v.policy, v.enforcement) for v in plan.violations] == [("limits", Enforcement.WARN)]
    assert plan.denied == ()
    check_policy(plan, MONDAY)  # passes


# --- change windows ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("now", "is_open"),
    [
        (datetime(2026, 11, 6, 17, 59, 59, tzinfo=UTC), False),
        (datetime(2026, 11, 6, 18, 0, tzinfo=UTC), True),
        (SATURDAY, True),
        (datetime(2026, 11, 9, 7, 59, 59, tzinfo=UTC), True),
        (datetime(2026, 11, 9, 8, 0, tzinfo=UTC), False),
        (MONDAY, False),
    ],
)
def test_a_window_is_open_from_its_tick_for_its_duration(now: datetime, is_open: bool) -> None:
    assert bool(open_windows([window()], now)) is is_open


def test_a_heal_passes_a_window_that_allows_it() -> None:
    failed = observed(desired("shop/web/0", flavor="sim.small"), status=ServerStatus.ERROR)
    fine = observed(desired("shop/web/1", flavor="sim.small"))
    want = [desired("shop/web/0", flavor="sim.small"), desired("shop/web/1", flavor="sim.large")]
    plan = plan_for((policy(windows=(window(),)),), want=want, have=[failed, fine])
    causes = {c.key: c.cause for c in plan.changes}
    assert causes == {"shop/web/0": ChangeCause.FAILED, "shop/web/1": ChangeCause.SIZE_CHANGED}
    (hold,) = window_holds(plan.windows, plan.changes, SATURDAY)
    assert hold.keys == ("shop/web/1",)
    strict = plan_for((policy(windows=(window(allow_heal=False),)),), want=want, have=[failed, fine])
    assert window_holds(strict.windows, strict.changes, SATURDAY)[0].keys == ("shop/web/0", "shop/web/1")
    other = window(scope="ops")
    assert not any(holds(other, c) for c in plan.changes)
    assert all(holds(window(scope=GLOBAL_SCOPE, allow_heal=False), c) for c in plan.changes)


def test_the_gate_refuses_inside_a_window_and_lets_an_override_through() -> None:
    plan = plan_for((policy(windows=(window(),)),), now=MONDAY)  # planned outside the window
    assert check_policy(plan, MONDAY).overridden == ()
    with pytest.raises(UserError) as caught:
        check_policy(plan, SATURDAY)  # applied inside it: the apply's clock decides
    assert [str(d) for d in caught.value.diagnostics] == [
        "policy.yaml:30: policy limits: no changes over the weekend (open 2026-11-06 18:00 → "
        "2026-11-09 08:00 UTC) holds back shop/web/0, shop/web/1; nothing was applied — apply after "
        "2026-11-09 08:00 UTC, or pass --override-window REASON"
    ]
    gate = check_policy(plan, SATURDAY, "incident 4711")
    assert [h.keys for h in gate.overridden] == [("shop/web/0", "shop/web/1")]
    assert gate.notes() == [
        "Window overridden (incident 4711): policy.yaml:30: policy limits: no changes over the weekend (open "
        "2026-11-06 18:00 → 2026-11-09 08:00 UTC) — holds shop/web/0, shop/web/1"
    ]
    with pytest.raises(UserError, match="give the reason"):
        check_policy(plan, SATURDAY, "  ")


def test_a_warn_policys_window_is_shown_and_never_blocks() -> None:
    plan = plan_for((policy(Enforcement.WARN, windows=(window(enforcement=Enforcement.WARN),)),))
    gate = check_policy(plan, SATURDAY)
    assert gate.overridden == () and len(gate.warned) == 1
    assert gate.notes()[0].startswith("Warning: inside a warn policy's change window: policy.yaml:30:")


def test_the_gate_refuses_a_denied_plan_whatever_the_override() -> None:
    plan = plan_for((policy(rules=(rule("small", "server.size.cpus <= 1", "one vCPU at most"),)),))
    with pytest.raises(PolicyDeniedError) as caught:
        check_policy(plan, MONDAY, "urgent")
    assert [str(d) for d in caught.value.diagnostics] == [
        "policy.yaml:20: policy limits, rule small: one vCPU at most — shop/web/0, shop/web/1; the plan is "
        "denied, nothing was applied"
    ]


# --- rendering and the plan file ---------------------------------------------------------------
def _mixed() -> Plan:
    return plan_for(
        (
            policy(rules=(rule("small", "server.size.cpus <= 1", "one vCPU at most"),), windows=(window(),)),
            dataclasses.replace(
                policy(Enforcement.WARN, rules=(rule("tagged", "size(server.tags) > 0"),)), name="tags"
            ),
        ),
        now=SATURDAY,
    )


def test_violations_and_open_windows_are_listed_first() -> None:
    text = render_text(_mixed())
    assert text.splitlines()[:5] == [
        "Policy: this plan is denied (1 deny violation, 1 warning); apply refuses it.",
        "  deny: policy.yaml:20: policy limits, rule small: one vCPU at most — shop/web/0, shop/web/1",
        "  warn: policy.yaml:20: policy tags, rule tagged: tagged is false — shop/web/0, shop/web/1",
        "Window: policy.yaml:30: policy limits: no changes over the weekend (open 2026-11-06 18:00 → "
        "2026-11-09 08:00 UTC) — holds shop/web/0, shop/web/1; apply is refused until it closes, "
        "unless given --override-window REASON",
        "",
    ]
    markdown = render_markdown(_mixed())
    head = markdown.split("### Changes")[0]
    assert "> **Policy: this plan is denied (1 deny violation, 1 warning); apply refuses it.**" in head
    deny = "- **deny**: policy.yaml:20: policy limits, rule small: one vCPU at most — shop/web/0, shop/web/1"
    assert deny in head
    assert "- **warn**: policy.yaml:20: policy tags, rule tagged" in head
    assert "> Window: policy.yaml:30: policy limits: no changes over the weekend" in head


def test_the_plan_file_carries_violations_and_windows_signed() -> None:
    plan = _mixed()
    text = dump_signed_plan(plan, KEY)
    data = json.loads(text)
    names = list(data)
    at = names.index("summary")
    assert names[at : at + 3] == ["summary", "violations", "windows"]
    assert data["violations"][0] == {
        "policy": "limits",
        "rule": "small",
        "kind": "rule",
        "enforcement": "deny",
        "message": "one vCPU at most",
        "file": "policy.yaml",
        "line": 20,
        "keys": ["shop/web/0", "shop/web/1"],
    }
    back = load_signed_plan(text, KEY, source="plan.json")
    assert back.violations == plan.violations and back.windows == plan.windows
    for edit in (
        lambda d: d["violations"].pop(0),  # drop the deny violation
        lambda d: d["violations"][0].update(enforcement="warn"),
        lambda d: d["windows"].clear(),
        lambda d: d["windows"][0].update(allow_heal=False),
    ):
        edited = json.loads(text)
        edit(edited)
        with pytest.raises(PlanSignatureError):
            load_signed_plan(json.dumps(edited), KEY, source="plan.json")


@pytest.mark.parametrize(
    ("field", "value"),
    [("deny", "every friday"), ("duration_hours", 0), ("duration_hours", 745), ("allow_heal", "yes")],
)
def test_a_plan_file_with_a_broken_window_is_not_a_plan(field: str, value: object) -> None:
    data = json.loads(dump_signed_plan(_mixed(), KEY))
    data["windows"][0][field] = value
    from reconciler.core.plan_signature import sign

    with pytest.raises(UserError, match="not a valid plan file"):
        load_signed_plan(json.dumps(sign(data, KEY)), KEY, source="plan.json")


def test_an_override_is_a_typed_audit_detail() -> None:
    detail = WindowOverride("incident 4711", ("policy.yaml:30: policy limits: weekend",), ("shop/web/0",))
    assert WindowOverride.decode(detail.encode()) == detail
    assert json.loads(detail.encode()) == {
        "keys": ["shop/web/0"],
        "reason": "incident 4711",
        "windows": ["policy.yaml:30: policy limits: weekend"],
    }
    assert detail.encode().startswith('{"keys": ')  # sorted keys, as the ledger writes them


def _two_currencies() -> PlanFacts:
    return PlanFacts(changes=(), cost=CostSummary(by_cluster=(
        CostLine("shop", "EUR", Decimal("0"), Decimal("1")),
        CostLine("shop", "USD", Decimal("0"), Decimal("2")),
        CostLine("lab", "USD", Decimal("0"), Decimal("3")),
    )))


def test_plan_costs_are_per_currency_never_summed() -> None:
    shop = plan_variables(_two_currencies(), policy(), [])
    assert shop["cost"] == {"currency": "", "before": 0.0, "after": 0.0, "delta": 0.0}
    assert shop["costs"] == {
        "EUR": {"currency": "EUR", "before": 0.0, "after": 720.0, "delta": 720.0},
        "USD": {"currency": "USD", "before": 0.0, "after": 1440.0, "delta": 1440.0},
    }
    lab = plan_variables(_two_currencies(), policy(scope="lab"), [])
    assert lab["cost"] == {"currency": "USD", "before": 0.0, "after": 2160.0, "delta": 2160.0}


def test_a_monthly_cost_quota_is_never_compared_across_currencies() -> None:
    quota = Quota(QuotaResource.MONTHLY_COST, Decimal("2000"), Where("policy.yaml", 9))
    (mixed,) = check_policies((policy(quotas=(quota,)),), [], _two_currencies())
    assert mixed.message.startswith("the plan's cost in cluster shop is in EUR and USD")
    (over,) = check_policies((policy(scope="lab", quotas=(quota,)),), [], _two_currencies())
    assert over.message == (
        "the plan's cost after is 2160.00 USD per 30-day month in cluster lab, over the quota of 2000.00 USD"
    )
