"""The shipped example desired state loads cleanly and expands as the quickstart promises."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from reconciler.config import (
    check_secrets,
    explain_inputs,
    load_desired_state,
    render_user_data,
    resolve_secret,
)

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "clusters"


def test_examples_load_and_expand_to_the_expected_servers() -> None:
    state = load_desired_state(EXAMPLES)
    assert state.deployment == "clusters"
    assert sorted(s.key for s in state.servers) == [
        "shop/app/0",
        "shop/app/1",
        "shop/db/0",
        "shop/web/0",
        "shop/web/1",
        "shop/web/2",
    ]
    by_key = {s.key: s for s in state.servers}
    assert by_key["shop/db/0"].protect and by_key["shop/db/0"].backup_policy == "nightly"
    assert by_key["shop/app/1"].depends_on == ("shop/db/0",)
    assert by_key["shop/web/2"].depends_on == ("shop/app/0", "shop/app/1")
    assert {s.provider_type for s in state.servers} == {"simcloud"}
    assert [p.name for p in state.providers] == ["sim"]
    prices = state.price_list_for("sim")
    assert prices is not None and prices.flavor_hourly["sim.medium"] == Decimal("0.0416")
    assert {s.flavor for s in state.servers} <= set(prices.flavor_hourly)
    policy = state.backup_policies["nightly"]
    assert (
        policy.schedule,
        policy.retention.keep_last,
        policy.retention.keep_daily,
        policy.retention.keep_weekly,
    ) == ("0 2 * * *", 3, 7, 4)


def test_examples_need_no_setup_for_secrets() -> None:
    state = load_desired_state(EXAMPLES)
    check_secrets(state.servers)
    app = next(s for s in state.servers if s.key == "shop/app/0")
    planned = render_user_data(app, None)
    applied = render_user_data(app, resolve_secret)
    assert "DB_PASSWORD='(sensitive)'" in planned and "shop-example-password" not in planned
    assert "DB_PASSWORD=shop-example-password" in applied


def test_example_inputs_come_from_every_level() -> None:
    sources = {i.name: i.source.split(" (")[0] for i in explain_inputs(EXAMPLES, "shop/app")}
    assert sources == {
        "db_host": "Inputs shop",
        "db_name": "Inputs shop",
        "db_password": "Inputs shop",
        "environment": "Inputs global",
        "log_level": "Inputs global",
        "release": "Inputs shop",
        "workers": "member shop/app",
    }
    db = {i.name: i.source.split(" (")[0] for i in explain_inputs(EXAMPLES, "shop/db")}
    assert db["pg_version"] == "template postgres default"
