"""A USD and an EUR PriceList side by side, through the real command: each server priced in its
list's currency, totals and budgets per currency, nothing summed across them, nothing silently unpriced.

Provider ``us`` (PriceList ``dollars``, USD, by the second) runs cluster ``shop``: two
sim.small web servers at $0.10/h and one sim.large box the list has no rate for; provider
``eu`` (PriceList ``euros``, EUR, whole hours) runs cluster ``cafe``: one sim.small at €0.20/h.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from tests.e2e.conftest import Cli

T0 = "2026-11-01T00:00:00Z"
LATER = "2026-11-01T10:30:00Z"
WINDOW = ("--from", "2026-11-01", "--to", "2026-11-02")

PRICED = """\
apiVersion: reconciler/v1
kind: Provider
metadata: {name: us}
spec: {type: simcloud, price_list: dollars, state_file: us.db}
---
apiVersion: reconciler/v1
kind: Provider
metadata: {name: eu}
spec: {type: simcloud, price_list: euros, state_file: eu.db}
---
apiVersion: reconciler/v1
kind: PriceList
metadata: {name: dollars}
spec:
  currency: USD
  flavors: {sim.small: "0.10"}
---
apiVersion: reconciler/v1
kind: PriceList
metadata: {name: euros}
spec:
  currency: EUR
  granularity: hour
  flavors: {sim.small: "0.20", sim.large: "0.80"}
"""

SERVERS = """\
apiVersion: reconciler/v1
kind: ServerTemplate
metadata: {name: small}
spec:
  image: {simcloud: debian-12}
  size: {cpus: 1, memory_mb: 1024, disk_gb: 10}
  flavor: {simcloud: sim.small}
---
apiVersion: reconciler/v1
kind: ServerTemplate
metadata: {name: large}
spec:
  image: {simcloud: debian-12}
  size: {cpus: 4, memory_mb: 4096, disk_gb: 10}
  flavor: {simcloud: sim.large}
---
apiVersion: reconciler/v1
kind: Cluster
metadata: {name: shop}
spec:
  provider: us
  members:
    web: {template: small, count: 2}
    box: {template: large, count: 1}
---
apiVersion: reconciler/v1
kind: Cluster
metadata: {name: cafe}
spec:
  provider: eu
  members:
    web: {template: small, count: 1}
"""


def _budget(name: str, scope: str, monthly: str, currency: str | None = None) -> str:
    money = f"\n  currency: {currency}" if currency else ""
    return (f"apiVersion: reconciler/v1\nkind: Budget\nmetadata: {{name: {name}}}\n"
            f"spec:\n  scope: {scope}\n  monthly: \"{monthly}\"{money}\n")


def _infra(tmp_path: Path, *budgets: str) -> Path:
    folder = tmp_path / "infra"
    folder.mkdir(exist_ok=True)
    (folder / "prices.yaml").write_text(PRICED)
    (folder / "servers.yaml").write_text(SERVERS)
    (folder / "budgets.yaml").write_text("---\n".join(budgets))
    return folder


def test_plan_prices_each_server_in_its_currency_in_text_json_and_markdown(cli: Cli, tmp_path: Path) -> None:
    infra = _infra(tmp_path)
    text = cli("plan", str(infra), "--detailed-exitcode", now=T0)
    assert text.code == 2, text.out + text.err
    lines = text.out.splitlines()
    start = lines.index("Plan: 4 to create, 0 to update, 0 to replace, 0 to delete, 0 unchanged.")
    assert lines[start + 1:] == [
        "Cost in EUR: €0.00/h → €0.20/h (+€0.20/h, +€144.00 per 30-day month)",
        "  cafe: €0.00/h → €0.20/h (+€0.20/h, +€144.00 per 30-day month)",
        "Cost in USD: $0.00/h → $0.20/h (+$0.20/h, +$144.00 per 30-day month)",
        "  shop: $0.00/h → $0.20/h (+$0.20/h, +$144.00 per 30-day month)",
        "Not priced (no PriceList covers them): shop/box/0",  # the dollars list has no sim.large
    ]

    cost = json.loads(cli("plan", str(infra), "--format", "json", now=T0).out)["cost"]
    assert "currency" not in cost and "after_hourly" not in cost  # two currencies: no single total
    totals = [(t["currency"], t["before_hourly"], t["after_hourly"], t["after_monthly"])
              for t in cost["totals"]]
    assert totals == [
        ("EUR", "0", "0.20", "144.00"), ("USD", "0", "0.20", "144.00"),
    ]
    assert [(c["scope"], c["currency"], c["after_hourly"]) for c in cost["by_cluster"]] == [
        ("cafe", "EUR", "0.20"), ("shop", "USD", "0.20"),
    ]
    assert cost["unpriced"] == ["shop/box/0"]

    markdown = cli("plan", str(infra), "--format", "markdown", now=T0).out
    assert markdown.split("\n", 1)[1].startswith(  # after the marker line
        "**Plan: 4 to create, 0 to update, 0 to replace, 0 to delete, 0 unchanged.** Cost: +€144.00 per "
        "30-day month (€0.00 → €144.00); +$144.00 per 30-day month ($0.00 → $144.00).\n"
    )
    assert "| **total EUR** | **€0.00** | **€144.00** | **+€0.20** | **+€144.00** |" in markdown
    assert "| **total USD** | **$0.00** | **$144.00** | **+$0.20** | **+$144.00** |" in markdown
    assert "Not priced (no PriceList covers them): shop/box/0" in markdown


@pytest.mark.parametrize(
    ("budgets", "code", "broken"),
    [
        # €144 a month in cafe over a €100 ceiling; shop's $144 within $500
        ((_budget("cafe-cap", "cafe", "100"), _budget("shop-cap", "shop", "500", "USD")), 3, "cafe-cap"),
        # and the other way round
        ((_budget("cafe-cap", "cafe", "500", "EUR"), _budget("shop-cap", "shop", "100")), 3, "shop-cap"),
        # global budgets, one per currency: each counts its own currency only
        ((_budget("all-eur", "global", "100", "EUR"), _budget("all-usd", "global", "200", "USD")), 3,
         "all-eur"),
        ((_budget("all-eur", "global", "200", "EUR"), _budget("all-usd", "global", "100", "USD")), 3,
         "all-usd"),
        ((_budget("all-eur", "global", "200", "EUR"), _budget("all-usd", "global", "200", "USD")), 2, ""),
    ],
    ids=["eur-broken", "usd-broken", "global-eur-broken", "global-usd-broken", "both-within"],
)
def test_a_budget_is_held_in_its_own_currency_and_any_broken_one_exits_3(
    cli: Cli, tmp_path: Path, budgets: tuple[str, ...], code: int, broken: str
) -> None:
    result = cli("plan", str(_infra(tmp_path, *budgets)), "--detailed-exitcode", now=T0)
    assert result.code == code, result.out + result.err
    exceeded = [line for line in result.out.splitlines() if "EXCEEDED" in line]
    assert [line.split()[1] for line in exceeded] == ([broken] if broken else [])
    if broken.startswith("all-"):
        currency, other = ("EUR", "USD") if broken == "all-eur" else ("USD", "EUR")
        assert f"(all clusters, {currency} only; {other} not counted)" in exceeded[0]
    if broken == "cafe-cap":
        assert exceeded == ["Budget cafe-cap (cluster cafe): €0.00 → €144.00 per 30-day month, ceiling "
                            "€100.00: EXCEEDED by €44.00; this plan breaks the budget"]
        assert "  + cafe/web/0  (create: not present) [over budget: cafe-cap]" in result.out
        assert "  + shop/web/0  (create: not present)\n" in result.out


def test_budgets_that_cannot_be_compared_are_refused_where_written(cli: Cli, tmp_path: Path) -> None:
    infra = _infra(tmp_path, _budget("all", "global", "100"), _budget("cafe-usd", "cafe", "100", "USD"))
    result = cli("plan", str(infra), now=T0)
    assert result.code == 1
    budgets = infra / "budgets.yaml"
    assert result.err.splitlines() == [
        f"Error: {budgets}:6: Budget 'all' names no currency, and all clusters are priced in EUR and USD "
        "(dollars in USD, euros in EUR): amounts in two currencies are never added; write currency: EUR (or "
        "another of them) in it, one Budget per currency",
        f"Error: {budgets}:14: Budget 'cafe-usd' is in USD, but cluster 'cafe' is priced in EUR (euros in "
        "EUR): it could never be exceeded; write currency: EUR, or price its servers in USD",
    ]


def test_a_provider_naming_no_price_list_among_several_is_refused(cli: Cli, tmp_path: Path) -> None:
    infra = _infra(tmp_path)
    (infra / "prices.yaml").write_text(PRICED.replace("price_list: euros, ", ""))
    result = cli("validate", str(infra), now=T0)
    assert result.code == 1
    assert result.err == (
        f"Error: {infra / 'prices.yaml'}:9: provider 'eu' names no price_list, and 2 PriceLists are declared "
        "(dollars in USD, euros in EUR): which one prices its servers is ambiguous; add price_list: NAME to "
        "its spec\n"
    )


def test_usage_report_export_and_html_keep_each_currency_apart(cli: Cli, tmp_path: Path) -> None:
    infra = _infra(tmp_path)
    saved = tmp_path / "plan.json"
    assert cli("plan", str(infra), "--format", "json", "--out", str(saved), now=T0).code == 0
    applied = cli("apply", "--plan", str(saved), now=T0)  # a saved plan keeps both currencies
    assert applied.code == 0, applied.out + applied.err
    data = json.loads(cli("usage", "report", *WINDOW, "--format", "json", now=LATER).out)
    assert [(r["group"], r["currency"], r["cost"], r["billed_hours"]) for r in data["rows"]] == [
        ("cafe", "EUR", "2.20", "11.0000"),  # whole hours: 10.5 h bills 11
        ("shop", "", None, "10.5000"),  # shop/box/0: nothing prices sim.large in USD
        ("shop", "USD", "2.10", "21.0000"),
    ]
    assert [(t["currency"], t["cost"], t["instances"]) for t in data["totals"]] == [
        ("", None, 1), ("EUR", "2.20", 1), ("USD", "2.10", 2),
    ]
    assert json.loads(cli("usage", "report", *WINDOW, "--format", "json", "--prices", str(infra),
                          now=LATER).out)["totals"] == data["totals"]  # the same as the lists bill today

    table = cli("usage", "report", *WINDOW, "--by", "server", now=LATER).out
    rows = [line.split() for line in table.splitlines()]
    assert ["shop/box/0", "sim.large", "unpriced", "instance-hours", "1", "10.50", "unpriced",
            "2026-11-01", "00:00", "2026-11-01", "10:30"] in rows
    assert [r[:5] for r in rows if r[:1] == ["total"]] == [
        ["total", "1", "10.50", "unpriced", "2026-11-01"], ["total", "1", "11.00", "2.20", "EUR"],
        ["total", "2", "21.00", "2.10", "USD"],
    ]
    assert "unpriced: no price was recorded for these servers" in table

    export = list(csv.DictReader(io.StringIO(cli("usage", "export", *WINDOW, now=LATER).out)))
    assert {(r["server"], r["currency"], r["cost"]) for r in export} == {
        ("cafe/web/0", "EUR", "2.200000"), ("shop/box/0", "", ""),
        ("shop/web/0", "USD", "1.050000"), ("shop/web/1", "USD", "1.050000"),
    }

    page = tmp_path / "usage.html"
    assert cli("usage", "report", *WINDOW, "--format", "html", "--out", str(page), now=LATER).code == 0
    html = page.read_text()
    assert "total (EUR)" in html and "total (USD)" in html and "total (unpriced)" in html
    assert "2.20 EUR" in html and "2.10 USD" in html
    # charts per currency, never one scale for two: EUR (the larger total) first
    assert html.index("<h2>Cost over time (EUR)</h2>") < html.index("<h2>Cost over time (USD)</h2>")
    assert "Cluster cafe: daily cost (EUR)" in html and "Cluster shop: daily cost (USD)" in html
    assert "Cluster cafe: daily cost (USD)" not in html and "Cluster shop: daily cost (EUR)" not in html
    assert "Cost by cluster (EUR)" in html and "Cost by cluster (USD)" in html
