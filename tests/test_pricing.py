"""pricing: hourly rates by flavor and by unit rates, a plan's cost summary, an interval's cost."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from reconciler.cli.render import cost_notes, render_text
from reconciler.cli.review import render_markdown
from reconciler.core.cost import CostLine
from reconciler.core.cost_codec import cost_from_dict, cost_to_dict
from reconciler.core.model import (
    BillingMode,
    DesiredServer,
    Granularity,
    ObservedServer,
    PriceList,
    ServerStatus,
    Size,
)
from reconciler.core.plan import Plan
from reconciler.core.plan_codec import dump_plan, load_plan
from reconciler.core.pricing import (
    billed_seconds,
    hourly_rate,
    interval_cost,
    interval_terms,
    overlap_seconds,
    plan_cost,
    usage_interval,
)
from reconciler.core.records import UsageInterval
from tests.engine.factories import run_diff

T0 = datetime(2026, 11, 1, tzinfo=UTC)
H = timedelta(hours=1)

EUR = PriceList(
    name="sim-prices",
    currency="EUR",
    flavor_hourly={"small": Decimal("0.0416"), "large": Decimal("0.2")},
    vcpu_hour=Decimal("0.02"),
    ram_gb_hour=Decimal("0.005"),
    disk_gb_month=Decimal("0.10"),
)
USD = PriceList(name="us", currency="USD", flavor_hourly={"small": Decimal("0.05")})


MEDIUM = Size(2, 4096, 36)


def desired(key: str, provider: str = "sim", size: Size = MEDIUM, flavor: str | None = None) -> DesiredServer:
    cluster, member, ordinal = key.split("/")
    return DesiredServer(
        key=key, name=key.replace("/", "-"), cluster=cluster, member=member, ordinal=int(ordinal),
        provider=provider, provider_type="simcloud", template="t", image="debian-12", size=size,
        flavor=flavor,
    )


def observed(
    key: str, provider: str = "sim", size: Size = MEDIUM, flavor: str | None = None
) -> ObservedServer:
    return ObservedServer(
        provider=provider, resource_id=f"id-{key}", key=key, name=key.replace("/", "-"), owner="prod",
        status=ServerStatus.RUNNING, size=size, image="debian-12", spec_hash="h", flavor=flavor,
    )


def test_flavor_rate_wins() -> None:
    rate = hourly_rate(EUR, Size(64, 1, 1), "small")
    assert rate == Decimal("0.0416") and isinstance(rate, Decimal)


@pytest.mark.parametrize(
    ("size", "flavor", "expected"),
    [
        # 0.02 × 2 + 0.005 × 4 GB + 0.10 × 36 GB / 720 h = 0.04 + 0.02 + 0.005
        (Size(2, 4096, 36), None, Decimal("0.065")),
        (Size(2, 4096, 36), "not-listed", Decimal("0.065")),
        # 0.02 + 0.005 × 0.5 GB + 0 = 0.0225
        (Size(1, 512, 0), None, Decimal("0.0225")),
        # 0.08 + 0.04 + 0.10 × 72 / 720 = 0.13
        (Size(4, 8192, 72), None, Decimal("0.13")),
    ],
)
def test_unit_rates(size: Size, flavor: str | None, expected: Decimal) -> None:
    rate = hourly_rate(EUR, size, flavor)
    assert isinstance(rate, Decimal)
    assert rate == expected


def test_prices_knows_what_a_list_covers() -> None:
    assert EUR.prices(None) and EUR.prices("whatever")
    assert USD.prices("small")
    assert not USD.prices("large") and not USD.prices(None)


def test_plan_cost_before_after_by_cluster_and_unpriced() -> None:
    lists = {"sim": EUR, "us": USD}
    want = [
        desired("shop/web/0", flavor="small"),
        desired("shop/web/1", flavor="small"),
        desired("shop/db/0", size=Size(4, 8192, 72)),
        desired("ci/runner/0", provider="bare"),
        desired("ci/runner/1", provider="us", flavor="small"),  # priced in USD, beside the EUR ones
        desired("lab/box/0", provider="us", flavor="large"),  # USD list does not list it
    ]
    have = [
        observed("shop/web/0", flavor="small"),
        observed("shop/old/0"),
        observed("ci/runner/0", provider="bare"),
        observed("ops/mon/0", flavor="large"),
    ]
    summary = plan_cost(want, have, lists.get)
    assert summary.currencies == ("EUR", "USD")
    # EUR after: 0.0416 × 2 + 0.13 ; before: 0.0416 + 0.065 (shop) and 0.2 (ops)
    eur = summary.total("EUR")
    assert eur.after_hourly == Decimal("0.2132")
    assert eur.before_hourly == Decimal("0.3066")
    assert eur.delta_hourly == Decimal("-0.0934")
    assert eur.after_monthly == Decimal("153.504")
    usd = summary.total("USD")
    assert (usd.before_hourly, usd.after_hourly) == (Decimal(0), Decimal("0.05"))
    lines = [(ln.currency, ln.scope, ln.before_hourly, ln.after_hourly) for ln in summary.by_cluster]
    assert lines == [
        ("EUR", "ops", Decimal("0.2"), Decimal(0)),
        ("EUR", "shop", Decimal("0.1066"), Decimal("0.2132")),
        ("USD", "ci", Decimal(0), Decimal("0.05")),
    ]
    assert summary.unpriced == ("ci/runner/0", "lab/box/0")  # no list; a flavor the list does not price


def test_plan_cost_nothing_priced() -> None:
    summary = plan_cost([desired("a/b/0")], [], lambda provider: None)
    assert summary.totals == () and summary.currencies == ()
    assert summary.total("USD").after_hourly == Decimal(0)
    assert summary.by_cluster == () and summary.unpriced == ("a/b/0",)


def test_plan_cost_prices_each_server_in_its_lists_currency_and_never_adds_two() -> None:
    want = [desired("x/y/0", provider="us", flavor="small"), desired("x/y/1", flavor="small")]
    summary = plan_cost(want, [], {"sim": EUR, "us": USD}.get)
    assert summary.currencies == ("EUR", "USD")
    assert summary.total("USD").after_hourly == Decimal("0.05")
    assert summary.total("EUR").after_hourly == Decimal("0.0416")
    assert summary.unpriced == ()
    # one cluster priced in two currencies: a line in each
    assert [(line.scope, line.currency) for line in summary.by_cluster] == [("x", "EUR"), ("x", "USD")]


def _interval(start: datetime, end: datetime | None, rate: Decimal | None = Decimal("0.04")) -> UsageInterval:
    return UsageInterval(deployment="prod", provider="sim", resource_id="i-1", key="shop/web/0",
                         flavor="small", size=MEDIUM, start=start, end=end, hourly_rate=rate, currency="EUR")


def test_interval_cost_clips_to_the_window() -> None:
    interval = _interval(T0, T0 + timedelta(minutes=90))
    assert interval_cost(interval, T0 + timedelta(minutes=30), T0 + 24 * H, None) == Decimal("0.04")
    assert interval_cost(interval, T0 - H, T0 + 24 * H, None) == Decimal("0.06")
    assert interval_cost(interval, T0 + 2 * H, T0 + 3 * H, None) == Decimal(0)


def test_interval_cost_counts_whole_seconds() -> None:
    interval = _interval(T0, T0 + timedelta(seconds=45, microseconds=999_999), rate=Decimal("3.6"))
    assert overlap_seconds(interval, T0, T0 + H) == 45
    assert interval_cost(interval, T0, T0 + H, None) == Decimal("0.045")  # 45 s × 3.6 / 3600


def test_interval_cost_open_interval_runs_to_end_and_reprices() -> None:
    interval = _interval(T0, None)
    assert interval_cost(interval, T0 - H, T0 + 2 * H, None) == Decimal("0.08")
    assert interval_cost(interval, T0, T0 + 2 * H, EUR) == Decimal("0.0832")  # small at 0.0416
    assert interval_cost(_interval(T0, None, rate=None), T0, T0 + H, None) == Decimal(0)


def test_servers_billed_by_measured_use_are_named_and_the_plan_says_its_figure_is_an_estimate() -> None:
    measured = dataclasses.replace(EUR, billing=BillingMode.MEASURED)
    want = [desired("a/web/0", flavor="small"), desired("a/web/1"), desired("b/db/0", provider="us")]
    summary = plan_cost(want, [], {"sim": measured, "us": USD}.get)
    assert summary.measured == ("a/web/0", "a/web/1")  # the USD list bills instance-hours
    assert summary.total("EUR").after_hourly == Decimal("0.0416") + Decimal("0.02") * 2 + Decimal(
        "0.005"
    ) * 4 + Decimal("0.10") * 36 / 720  # the flavor rate; unit rates as if fully busy
    [note] = cost_notes(summary)[-1:]
    assert note.startswith("Estimated (billed by measured use): a/web/0, a/web/1 — priced at the flavor's")
    assert "a ceiling for CPU and RAM" in note

    changes = run_diff(want, []).changes
    plan = Plan(deployment="a", created_at=T0, changes=tuple(changes), providers=(), basis=(), cost=summary)
    assert load_plan(dump_plan(plan)).cost.measured == summary.measured
    assert note in render_text(plan) and "Estimated (billed by measured use)" in render_markdown(plan)
    assert cost_notes(plan_cost(want, [], {"sim": EUR, "us": USD}.get)) == [
        "Not priced (no PriceList covers them): b/db/0"  # the USD list has no rate for its flavor
    ]


def test_a_plan_cost_written_before_currencies_were_kept_apart_reads_in_its_one_currency() -> None:
    old = {
        "currency": "EUR", "before_hourly": "0.1", "after_hourly": "0.3",
        "by_cluster": [{"scope": "shop", "before_hourly": "0.1", "after_hourly": "0.3"}],
        "budgets": [{"name": "cap", "scope": "shop", "limit_monthly": "100", "before_monthly": "72",
                     "after_monthly": "216", "keys": ["shop/web/1"]}],
    }
    cost = cost_from_dict(old)
    assert cost.by_cluster == (CostLine("shop", "EUR", Decimal("0.1"), Decimal("0.3")),)
    assert [(b.currency, b.broken) for b in cost.budgets] == [("EUR", True)]
    assert cost_from_dict(cost_to_dict(cost)) == cost
    with pytest.raises(ValueError, match="the cost totals in EUR are not the sums of its lines"):
        cost_from_dict(old | {"after_hourly": "0"})


def test_a_plan_cost_in_two_currencies_states_a_total_for_each_and_none_across() -> None:
    cost = plan_cost([desired("x/y/0", provider="us", flavor="small"), desired("x/y/1", flavor="small")], [],
                     {"sim": EUR, "us": USD}.get)
    data = cost_to_dict(cost)
    assert "currency" not in data and "before_hourly" not in data
    totals = [(t["currency"], t["after_hourly"]) for t in data["totals"]]
    assert totals == [("EUR", "0.0416"), ("USD", "0.05")]
    assert cost_from_dict(data) == cost
    data["totals"][1]["after_hourly"] = "0.01"
    with pytest.raises(ValueError, match="in USD"):
        cost_from_dict(data)


@pytest.mark.parametrize(
    ("granularity", "minutes", "billed"),
    [
        (Granularity.SECOND, 30, 1800), (Granularity.SECOND, 61, 3660),
        (Granularity.MINUTE, 30, 1800), (Granularity.MINUTE, 61, 3660), (Granularity.MINUTE, 30.5, 1860),
        (Granularity.HOUR, 30, 3600), (Granularity.HOUR, 61, 7200), (Granularity.HOUR, 30.5, 3600),
    ],
)
def test_each_started_unit_is_billed_and_the_pieces_of_an_interval_add_up(
    granularity: Granularity, minutes: float, billed: int
) -> None:
    end = T0 + timedelta(minutes=minutes)
    assert billed_seconds(T0, T0, end, granularity) == billed
    cuts = [T0 + timedelta(seconds=s) for s in (0, 59, 61, 1799, 1801, 3599)] + [end]
    cuts = sorted({c for c in cuts if c <= end})
    assert sum(billed_seconds(T0, a, b, granularity) for a, b in zip(cuts, cuts[1:], strict=False)) == billed
    interval = dataclasses.replace(_interval(T0, end, rate=Decimal("3.6")), granularity=granularity)
    assert interval_cost(interval, T0, T0 + 2 * H, None) == Decimal("3.6") * billed / 3600


def test_an_interval_records_the_terms_of_its_price_list_and_is_billed_by_them() -> None:
    hourly = dataclasses.replace(EUR, granularity=Granularity.HOUR, billing=BillingMode.MEASURED)
    server = observed("shop/web/0", flavor="small")
    opened = usage_interval("prod", server, hourly, start=T0)
    assert (opened.hourly_rate, opened.currency) == (Decimal("0.0416"), "EUR")
    assert opened.price_list == "sim-prices"
    assert (opened.granularity, opened.billing, opened.terms_recorded) == (
        Granularity.HOUR, BillingMode.MEASURED, True
    )
    assert interval_terms(opened, None) == (Decimal("0.0416"), "EUR", Granularity.HOUR)
    assert interval_terms(opened, EUR) == (Decimal("0.0416"), "EUR", Granularity.SECOND)  # repriced: today's
    old = dataclasses.replace(opened, granularity=None, billing=None)  # written before terms were recorded
    assert not old.terms_recorded and interval_terms(old, None)[2] is Granularity.SECOND
    # a server its list does not price is recorded unpriced, never at a rate of 0
    lonely = usage_interval("prod", observed("lab/box/0", provider="us", flavor="large"), USD, start=T0)
    assert (lonely.hourly_rate, lonely.currency, lonely.granularity) == (None, "", None)
    assert lonely.terms_recorded  # nothing priced it: no terms to miss
    # repriced by a list that does not price it: unpriced too
    assert interval_terms(dataclasses.replace(opened, flavor="large"), USD) == (None, "", Granularity.SECOND)
