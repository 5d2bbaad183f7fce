"""usage: reports grouped by cluster, provider, server and flavor, with hand-computed hours and money."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from reconciler.billing.usage import (
    GROUPINGS,
    UsageReport,
    build_report,
    format_csv,
    format_json,
    format_table,
)
from reconciler.core.errors import UserError
from reconciler.core.model import Granularity, PriceList, Size
from reconciler.core.records import UsageInterval

START = datetime(2026, 11, 1, tzinfo=UTC)
END = datetime(2026, 12, 1, tzinfo=UTC)
NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def interval(
    provider: str, resource_id: str, key: str, flavor: str | None, rate: str | None, start: str,
    end: str | None, size: Size = Size(2, 4096, 20),  # noqa: B008 - a frozen value
) -> UsageInterval:
    return UsageInterval(
        deployment="prod", provider=provider, resource_id=resource_id, key=key, flavor=flavor, size=size,
        start=at(start), end=None if end is None else at(end),
        hourly_rate=None if rate is None else Decimal(rate),
        currency="" if rate is None else "EUR", price_list="" if rate is None else "prices",
        granularity=None if rate is None else Granularity.SECOND,
    )


# Hand-computed use of November 2026 (window [11-01, 12-01), now = 11-21 12:00):
LEDGER = [
    # A: started in October; 24 h inside the window at 0.05 -> 1.20
    interval("sim", "i-a", "shop/web/0", "small", "0.05", "2026-10-31T00:00", "2026-11-02T00:00"),
    # A resized: 24 h at 0.20 -> 4.80
    interval("sim", "i-a", "shop/web/0", "large", "0.20", "2026-11-02T00:00", "2026-11-03T00:00"),
    # B: 12 h 30 min 45.9 s -> 45045 whole seconds = 12.5125 h at 0.05 -> 0.625625
    interval("sim", "i-b", "shop/web/1", "small", "0.05", "2026-11-10T06:00", "2026-11-10T18:30:45.900"),
    # C: still running: 11-20 00:00 -> now 11-21 12:00 = 36 h at 0.20 -> 7.20
    interval("aws", "i-c", "shop/db/0", "large", "0.20", "2026-11-20T00:00", None),
    # D: runs past the window end: 1 h inside at 0.0333 -> 0.0333
    interval("sim", "i-d", "ci/runner/0", None, "0.0333", "2026-11-30T23:00", "2026-12-01T05:00"),
    # E: no price recorded: 30 min, unpriced
    interval("sim", "i-e", "ci/runner/1", None, None, "2026-11-05T00:00", "2026-11-05T00:30",
             size=Size(1, 1024, 10)),
    # F: before the window: not counted
    interval("sim", "i-f", "old/x/0", "small", "0.05", "2026-10-01T00:00", "2026-10-31T12:00"),
]


def rows(report: UsageReport) -> list[tuple[str, str, int, int, Decimal]]:
    return [(r.group, r.currency, r.instances, r.seconds, r.cost) for r in report.rows]


def test_by_cluster() -> None:
    report = build_report(LEDGER, start=START, end=END, by="cluster", now=NOW)
    assert rows(report) == [
        ("ci", "", 1, 1800, Decimal(0)),
        ("ci", "EUR", 1, 3600, Decimal("0.0333")),
        ("shop", "EUR", 3, 86400 + 86400 + 45045 + 129600, Decimal("13.825625")),
    ]
    shop = report.rows[2]
    assert shop.hours == Decimal("96.5125")
    assert shop.first_start == START  # A clipped to the window
    assert shop.last_end == NOW  # C still running
    ci = report.rows[1]
    assert (ci.first_start, ci.last_end) == (at("2026-11-30T23:00"), END)
    assert report.running == 1
    assert [(t.currency, t.instances, t.seconds, t.cost) for t in report.totals] == [
        ("", 1, 1800, Decimal(0)),
        ("EUR", 4, 351045, Decimal("13.858925")),
    ]


def test_by_provider() -> None:
    report = build_report(LEDGER, start=START, end=END, by="provider", now=NOW)
    assert rows(report) == [
        ("aws", "EUR", 1, 129600, Decimal("7.20")),
        ("sim", "", 1, 1800, Decimal(0)),
        ("sim", "EUR", 3, 86400 * 2 + 45045 + 3600, Decimal("6.658925")),
    ]


def test_by_server() -> None:
    report = build_report(LEDGER, start=START, end=END, by="server", now=NOW)
    assert rows(report) == [
        ("ci/runner/0", "EUR", 1, 3600, Decimal("0.0333")),
        ("ci/runner/1", "", 1, 1800, Decimal(0)),
        ("shop/db/0", "EUR", 1, 129600, Decimal("7.20")),
        ("shop/web/0", "EUR", 1, 172800, Decimal("6.00")),  # one server, two sizes
        ("shop/web/1", "EUR", 1, 45045, Decimal("0.625625")),
    ]
    assert report.rows[3].rate == Decimal("0.125")  # 6.00 over 48 h


def test_by_flavor() -> None:
    report = build_report(LEDGER, start=START, end=END, by="flavor", now=NOW)
    assert rows(report) == [
        ("(1 vCPU, 1024 MB, 10 GB)", "", 1, 1800, Decimal(0)),
        ("(2 vCPU, 4096 MB, 20 GB)", "EUR", 1, 3600, Decimal("0.0333")),
        ("large", "EUR", 2, 86400 + 129600, Decimal("12.00")),
        ("small", "EUR", 2, 86400 + 45045, Decimal("1.825625")),
    ]
    # i-a appears under two flavors but is one instance in the total.
    assert report.totals[1].instances == 4


@pytest.mark.parametrize("by", GROUPINGS)
def test_totals_are_the_sum_of_rows(by: str) -> None:
    report = build_report(LEDGER, start=START, end=END, by=by, now=NOW)
    for total in report.totals:
        mine = [r for r in report.rows if r.currency == total.currency]
        assert total.cost == sum((r.cost for r in mine), Decimal(0))
        assert total.seconds == sum(r.seconds for r in mine)
        assert total.hours == sum((r.hours for r in mine), Decimal(0))
    assert report.total_seconds == 351045 + 1800


def test_open_interval_is_capped_at_end_and_ignored_before_start() -> None:
    running = [interval("aws", "i-c", "shop/db/0", "large", "0.20", "2026-11-30T00:00", None)]
    later = build_report(running, start=START, end=END, by="cluster", now=datetime(2027, 1, 1, tzinfo=UTC))
    assert rows(later) == [("shop", "EUR", 1, 86400, Decimal("4.80"))]
    assert later.rows[0].last_end == END
    earlier = build_report(running, start=START, end=END, by="cluster", now=at("2026-11-15T00:00"))
    assert earlier.rows == () and earlier.totals == () and earlier.running == 0


def test_reprice_uses_todays_price_list() -> None:
    sim = PriceList(name="new", currency="EUR", flavor_hourly={"small": Decimal("0.10")},
                    vcpu_hour=Decimal("0.01"), ram_gb_hour=Decimal("0.005"), disk_gb_month=Decimal("0.072"))
    def lookup(provider: str) -> PriceList | None:
        return {"sim": sim}[provider]  # KeyError for aws, as DesiredState.price_list_for does

    report = build_report(LEDGER, start=START, end=END, by="server", now=NOW, reprice=lookup)
    costs = {r.group: (r.currency, r.cost) for r in report.rows}
    # small: 0.10 × 24 h; large is not listed, so by units: (0.02 + 0.02 + 0.072 × 20 / 720) × 24 h
    assert costs["shop/web/0"] == ("EUR", Decimal("2.40") + Decimal("1.008"))
    assert costs["ci/runner/1"] == ("EUR", Decimal("0.008"))  # 0.016/h by unit rates × 0.5 h
    assert costs["shop/db/0"] == ("EUR", Decimal("7.20"))  # aws: not repriced, recorded rate kept
    assert report.repriced


def test_bad_arguments() -> None:
    with pytest.raises(UserError, match="not a grouping"):
        build_report(LEDGER, start=START, end=END, by="team", now=NOW)
    with pytest.raises(UserError, match="must be after"):
        build_report(LEDGER, start=END, end=START, by="cluster", now=NOW)


def test_format_table() -> None:
    report = build_report(LEDGER, start=START, end=END, by="cluster", now=NOW)
    text = format_table(report)
    assert "\x1b[" not in text
    assert "Usage by cluster, 2026-11-01 00:00 → 2026-12-01 00:00 UTC" in text
    lines = [line.split() for line in text.splitlines()]
    # one line per flavor and rate (rate, flavor, description, instances, hours, total, start, end)
    assert ["shop", "0.2000", "large", "per", "instance-hour,", "by", "the", "second", "2", "60.00", "12.00",
            "EUR", "2026-11-02", "00:00", "2026-11-21", "12:00"] in lines
    assert ["0.0500", "small", "per", "instance-hour,", "by", "the", "second", "2", "36.51", "1.83", "EUR",
            "2026-11-01", "00:00", "2026-11-10", "18:30"] in lines
    assert ["shop", "subtotal", "3", "96.51", "13.83", "EUR", "2026-11-01", "00:00", "2026-11-21",
            "12:00"] in lines
    total = [line for line in lines if line[:1] == ["total"]]
    assert ["total", "4", "97.51", "13.86", "EUR"] == total[1][:5]
    assert "unpriced" in total[0]
    assert "1 server(s) still running: counted up to 2026-11-21 12:00" in text
    assert "\x1b[" in format_table(report, color=True)


def test_format_table_empty() -> None:
    report = build_report([], start=START, end=END, by="provider", now=NOW)
    assert "no usage in this window" in format_table(report)


def test_format_csv() -> None:
    report = build_report(LEDGER, start=START, end=END, by="cluster", now=NOW)
    parsed = list(csv.DictReader(io.StringIO(format_csv(report))))
    assert [r["group"] for r in parsed] == ["ci", "ci", "shop"]
    shop = parsed[2]
    assert (shop["instances"], shop["hours"], shop["seconds"], shop["cost"], shop["currency"]) == (
        "3", "96.5125", "347445", "13.83", "EUR"
    )
    assert (shop["first_start"], shop["last_end"]) == ("2026-11-01T00:00:00Z", "2026-11-21T12:00:00Z")
    assert (parsed[0]["cost"], parsed[0]["rate"], parsed[0]["hours"]) == ("", "", "0.5000")


def test_format_json() -> None:
    report = build_report(LEDGER, start=START, end=END, by="provider", now=NOW)
    data = json.loads(format_json(report))
    assert (data["by"], data["start"], data["end"], data["running"]) == (
        "provider", "2026-11-01T00:00:00Z", "2026-12-01T00:00:00Z", 1
    )
    assert [(r["group"], r["currency"], r["cost"]) for r in data["rows"]] == [
        ("aws", "EUR", "7.20"), ("sim", "", None), ("sim", "EUR", "6.66"),
    ]
    assert data["rows"][0]["rate"] == "0.200000"
    assert [(t["currency"], t["cost"], t["seconds"]) for t in data["totals"]] == [
        ("", None, 1800), ("EUR", "13.86", 351045),
    ]
