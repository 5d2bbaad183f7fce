"""Plan rendering: golden text and markdown, colour, money, the markdown size cap, secrets.

Golden files live in ``golden/``; after an intended change to the output, rewrite them with
``UPDATE_GOLDEN=1 pytest tests/engine`` and review the diff.
"""

from __future__ import annotations

import dataclasses
import os
import re
from decimal import Decimal
from pathlib import Path

import pytest

from reconciler.cli.render import (
    NO_CHANGES,
    backup_summary,
    cost_line,
    format_hourly,
    format_money,
    render_json,
    render_text,
)
from reconciler.cli.review import render_markdown
from reconciler.core.backups import BackupAction, BackupKind
from reconciler.core.cost import CostLine, CostSummary
from reconciler.core.graph import order_changes
from reconciler.core.model import DriftMode, ResolvedInput, SecretRef
from reconciler.core.plan import Plan
from reconciler.core.plan_codec import load_signed_plan
from tests.engine.factories import NOW, OWNER, desired, observed, provider_config, run_diff

GOLDEN = Path(__file__).parent / "golden"
SECRET = "hunter2-correct-horse"
KEY = b"k" * 32  # the plan-signing key of these tests
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def check_golden(name: str, actual: str) -> None:
    path = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN") == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(actual, encoding="utf-8")
        return
    assert path.exists(), f"golden file {name} is missing; run UPDATE_GOLDEN=1 pytest tests/engine"
    expected = path.read_text(encoding="utf-8")
    assert actual == expected, f"{name} differs; if the change is intended, rerun with UPDATE_GOLDEN=1"


def representative_plan() -> Plan:
    """Creates (one with a sensitive input), an update, a replace, a delete, no-ops, cost, warnings."""
    inputs = (
        ResolvedInput("db_password", SECRET, "Inputs for shop (inputs.yaml:7)", sensitive=True),
        ResolvedInput("api_key", SecretRef("env", "API_KEY"), "Inputs global (inputs.yaml:3)"),
        ResolvedInput("port", 5432, "template default"),
    )
    want = [
        desired("shop/cache/0", cpus=4, drift=DriftMode.WARN),
        desired("shop/db/0", protect=True),
        desired("shop/db/1", protect=True, inputs=inputs, cpus=4, memory_mb=8192, disk_gb=100),
        desired("shop/web/0", cpus=4, memory_mb=4096, depends_on=("shop/db/0",)),
        desired("shop/web/1", image="ubuntu-24.10", depends_on=("shop/db/0",)),
        desired("shop/web/2", tags=(("env", "prod"),), depends_on=("shop/db/1",)),
        desired("ops/monitor/0"),
    ]
    by_key = {s.key: s for s in want}
    have = [
        observed(by_key["shop/cache/0"], cpus=2),
        observed(by_key["shop/db/0"]),
        observed(by_key["shop/web/0"], cpus=2, memory_mb=2048, generation=1),
        observed(desired("shop/web/1"), resource_id="i-web-1-old"),
        observed(by_key["ops/monitor/0"]),
        observed(desired("shop/db/2"), resource_id="i-db-2"),
        observed(desired("ops/legacy/0"), resource_id="i-legacy"),
    ]
    result = run_diff(want, have, last={"shop/web/1": 2})
    cost = CostSummary(
        by_cluster=(
            CostLine("ops", "USD", Decimal("0.3"), Decimal("0.2")),
            CostLine("shop", "USD", Decimal("0.93"), Decimal("1.30")),
        ),
        unpriced=("ops/monitor/0",),
    )
    return Plan(
        deployment=OWNER,
        created_at=NOW,
        changes=order_changes(result.changes, want),
        providers=(provider_config(),),
        basis=tuple(have),
        noop_count=result.noop_count,
        cost=cost,
        diagnostics=result.diagnostics,
        source_path="clusters",
        commit="abc1234",
    )


def empty_plan(**overrides: object) -> Plan:
    fields: dict[str, object] = {
        "deployment": OWNER, "created_at": NOW, "changes": (), "providers": (), "basis": (), "noop_count": 4,
    }
    fields.update(overrides)
    return Plan(**fields)  # type: ignore[arg-type]


# --- golden files ---------------------------------------------------------------------------
def test_representative_plan_has_every_kind_of_change() -> None:
    plan = representative_plan()
    assert plan.summary() == {"create": 2, "update": 1, "replace": 1, "delete": 1, "adopt": 0, "no-op": 3}
    assert len(plan.diagnostics) == 2


def test_text_rendering_matches_golden() -> None:
    check_golden("plan.txt", render_text(representative_plan()))


def test_markdown_rendering_matches_golden() -> None:
    check_golden("plan.md", render_markdown(representative_plan()))


def test_text_rendering_reads_like_terraform() -> None:
    text = render_text(representative_plan())
    assert "  + shop/db/1  (create: not present)\n" in text
    assert "      cpus: 2 → 4\n" in text
    assert "  -/+ shop/web/1  (replace: spec changed: image)\n" in text
    assert "Plan: 2 to create, 1 to update, 1 to replace, 1 to delete, 3 unchanged.\n" in text
    assert "Cost: $1.23/h → $1.50/h (+$0.27/h, +$194.40 per 30-day month)\n" in text
    assert text.rstrip().splitlines()[-1].startswith("Warning: ")
    assert "\x1b[" not in text


def test_colour_only_when_asked_and_otherwise_identical() -> None:
    plan = representative_plan()
    coloured = render_text(plan, color=True)
    assert "\x1b[32m+\x1b[0m shop/db/1" in coloured
    assert "\x1b[33m~\x1b[0m shop/web/0" in coloured
    assert "\x1b[35m-/+\x1b[0m shop/web/1" in coloured
    assert "\x1b[31m-\x1b[0m ops/legacy/0" in coloured
    assert ANSI.sub("", coloured) == render_text(plan)


def test_no_changes() -> None:
    assert render_text(empty_plan()) == NO_CHANGES + "\n"
    warned = render_text(empty_plan(diagnostics=("drift on a/b/0: cpus 1 → 2 (drift: warn)",)))
    assert warned == f"{NO_CHANGES}\n\nWarning: drift on a/b/0: cpus 1 → 2 (drift: warn)\n"
    markdown = render_markdown(empty_plan())
    summary = "**Plan: 0 to create, 0 to update, 0 to replace, 0 to delete, 4 unchanged.**"
    assert markdown.splitlines()[:2] == ["<!-- reconciler-plan: acme -->", summary]
    assert NO_CHANGES in markdown and "<details>" not in markdown


def test_markdown_opens_with_counts_and_monthly_cost_delta() -> None:
    first = render_markdown(representative_plan()).splitlines()[1]
    assert first.startswith("**Plan: 2 to create, 1 to update, 1 to replace, 1 to delete, 3 unchanged.**")
    assert "+$194.40 per 30-day month ($885.60 → $1,080.00)" in first


# --- secrets --------------------------------------------------------------------------------
def test_a_sensitive_value_never_appears_in_any_rendering() -> None:
    plan = representative_plan()
    outputs = {
        "text": render_text(plan),
        "color": render_text(plan, color=True),
        "markdown": render_markdown(plan),
        "json": render_json(plan, KEY),
    }
    for name, output in outputs.items():
        assert SECRET not in output, name
    assert "input.db_password: (sensitive)" in outputs["text"]
    assert "input.api_key: (sensitive)" in outputs["text"]
    assert "input.port: 5432" in outputs["text"]
    assert "input.db_password |  | <code>(sensitive)</code>" in outputs["markdown"]


def test_a_leaked_secret_in_a_diagnostic_is_still_scrubbed() -> None:
    plan = representative_plan()
    leaky = dataclasses.replace(plan, diagnostics=(f"something printed {SECRET} by mistake",))
    assert SECRET not in render_text(leaky)
    assert SECRET not in render_markdown(leaky)
    assert "something printed (sensitive) by mistake" in render_text(leaky)


def test_json_round_trips_without_the_secret() -> None:
    plan = representative_plan()
    loaded = load_signed_plan(render_json(plan, KEY), KEY, source="plan.json")
    assert [c.id for c in loaded.changes] == [c.id for c in plan.changes]
    assert [c.depends_on for c in loaded.changes] == [c.depends_on for c in plan.changes]
    created = next(c for c in loaded.changes if c.key == "shop/db/1")
    assert created.after is not None
    password = next(i for i in created.after.inputs if i.name == "db_password")
    assert password.value is None and password.sensitive


# --- markdown size cap ----------------------------------------------------------------------
def big_plan(count: int) -> Plan:
    want = [desired(f"big/web/{i}", inputs=(ResolvedInput("role", "frontend", "member inputs"),))
            for i in range(count)]
    result = run_diff(want, [])
    return Plan(deployment=OWNER, created_at=NOW, changes=order_changes(result.changes, want),
                providers=(provider_config(),), basis=(), diagnostics=("a warning",) * 3)


@pytest.mark.parametrize("limit", [60_000, 10_000, 2_000])
def test_markdown_of_2000_creates_is_one_group_under_the_limit(limit: int) -> None:
    plan = big_plan(2000)
    markdown = render_markdown(plan, limit=limit)
    assert len(markdown) <= limit
    assert markdown.count("<details>") == markdown.count("</details>") == 1  # one folded example
    assert "**2000 ×** <code>big/web</code> (ordinals 0–1999)" in markdown
    assert markdown.splitlines()[1].startswith("**Plan: 2000 to create")
    assert "not shown" not in markdown


def test_markdown_cap_holds_even_when_the_head_alone_is_too_long() -> None:
    plan = empty_plan(diagnostics=tuple(f"warning number {i}" for i in range(500)))
    for limit in (0, 1, 80, 500, 3000):
        assert len(render_markdown(plan, limit=limit)) <= limit
    markdown = render_markdown(plan, limit=3000)
    assert "more warnings not shown (the full plan: the plan.json of this run" in markdown
    assert markdown.splitlines()[3].startswith("> Not everything fits in this comment: left out are ")


def test_markdown_that_fits_has_no_truncation_note() -> None:
    markdown = render_markdown(big_plan(20))
    assert markdown.count("<details>") == 1
    assert "not shown" not in markdown and "fits" not in markdown


# --- money ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("amount", "currency", "signed", "expected"),
    [
        ("1080.4", "USD", False, "$1,080.40"),
        ("0.27", "EUR", True, "+€0.27"),
        ("-0.27", "GBP", True, "-£0.27"),
        ("3.1", "CHF", False, "CHF 3.10"),
        ("-0.001", "USD", True, "+$0.00"),
        ("0", "USD", True, "+$0.00"),
    ],
)
def test_format_money(amount: str, currency: str, signed: bool, expected: str) -> None:
    assert format_money(Decimal(amount), currency, signed=signed) == expected


@pytest.mark.parametrize(
    ("amount", "expected"),
    [("1.23", "$1.23"), ("0.0416", "$0.0416"), ("0.125", "$0.125"), ("0.00004", "$0.00"), ("2", "$2.00")],
)
def test_format_hourly_keeps_small_rates_visible(amount: str, expected: str) -> None:
    assert format_hourly(Decimal(amount), "USD") == expected


def test_cost_line_is_absent_without_prices() -> None:
    assert cost_line(CostSummary()) is None
    line = cost_line(CostSummary(by_cluster=(CostLine("shop", "EUR", Decimal("2"), Decimal("1.5")),)))
    assert line == "Cost: €2.00/h → €1.50/h (-€0.50/h, -€360.00 per 30-day month)"


def test_backup_storage_costs_are_summed_per_currency_never_across() -> None:
    def action(kind: BackupKind, key: str, cost: str, currency: str) -> BackupAction:
        return BackupAction(kind=kind, key=key, provider="sim", policy="nightly", reason="due",
                            monthly_cost=Decimal(cost), currency=currency)

    actions = [action(BackupKind.TAKE, "a/web/0", "1.50", "EUR"),
               action(BackupKind.TAKE, "b/web/0", "0.70", "USD"),
               action(BackupKind.PRUNE, "a/web/0", "-0.50", "EUR")]
    assert backup_summary(actions) == (
        "Backups: 2 to take, 0 final, 1 to prune; storage +€1.00 and +$0.70 per 30-day month."
    )
