"""A public price list and known hours reproduce a known invoice to the cent (EC2, whole hours)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from reconciler.billing.usage import build_report, format_csv, format_table
from reconciler.core.model import Granularity, PriceList, Size
from reconciler.core.pricing import billed_seconds
from reconciler.core.records import UsageInterval

# AWS EC2 on-demand, Linux, us-east-1 (public price list): t3.medium $0.0416/h, t3.large $0.0832/h.
# The old EC2 rule: every started instance-hour is billed in full; a resize starts a new hour.
EC2 = PriceList(
    name="ec2-us-east-1",
    currency="USD",
    flavor_hourly={"t3.medium": Decimal("0.0416"), "t3.large": Decimal("0.0832")},
    granularity=Granularity.HOUR,
)
OCT = datetime(2026, 10, 1, tzinfo=UTC)
NOV = datetime(2026, 11, 1, tzinfo=UTC)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def ec2(resource: str, key: str, flavor: str, start: str, end: str | None) -> UsageInterval:
    cpus, memory = (2, 4096) if flavor == "t3.medium" else (2, 8192)
    return UsageInterval(
        deployment="shop", provider="aws", resource_id=resource, key=key, flavor=flavor,
        size=Size(cpus, memory, 8), start=at(start), end=None if end is None else at(end),
        hourly_rate=EC2.flavor_hourly[flavor], currency="USD", price_list=EC2.name,
    )


LEDGER = [
    # i-1 runs all of October (and on): 744 hours
    ec2("i-1", "shop/web/0", "t3.medium", "2026-09-30T22:00:00", None),
    # i-2: 56 h 25 min 20 s, billed as 57 started hours
    ec2("i-2", "shop/web/1", "t3.medium", "2026-10-10T09:15:00", "2026-10-12T17:40:20"),
    # i-3: 10 minutes as t3.medium (1 hour), then resized: 24 hours as t3.large
    ec2("i-3", "shop/web/2", "t3.medium", "2026-10-20T06:00:00", "2026-10-20T06:10:00"),
    ec2("i-3", "shop/web/2", "t3.large", "2026-10-20T06:10:00", "2026-10-21T06:10:00"),
]
NOW = at("2026-11-05T00:00:00")


def invoice(by: str = "cluster") -> dict[tuple[str, str], tuple[Decimal, Decimal]]:
    report = build_report(LEDGER, start=OCT, end=NOV, by=by, now=NOW, reprice=lambda provider: EC2)
    return {(line.group, line.item): (line.quantity, line.cents) for row in report.rows for line in row.lines}


def test_october_invoice_to_the_cent() -> None:
    report = build_report(LEDGER, start=OCT, end=NOV, by="cluster", now=NOW, reprice=lambda provider: EC2)
    lines = {line.item: line for line in report.rows[0].lines}
    # "$0.0416 per On Demand Linux t3.medium Instance Hour": 744 + 57 + 1 = 802 Hrs = $33.3632
    assert lines["t3.medium"].quantity == Decimal(802)
    assert lines["t3.medium"].rate == Decimal("0.0416")
    assert lines["t3.medium"].cost == Decimal("33.3632")
    assert lines["t3.medium"].cents == Decimal("33.36")
    # "$0.0832 per On Demand Linux t3.large Instance Hour": 24 Hrs = $1.9968
    assert (lines["t3.large"].quantity, lines["t3.large"].cents) == (Decimal(24), Decimal("2.00"))
    assert report.rows[0].cents == Decimal("35.36")
    assert [(t.currency, t.cents, t.instances) for t in report.totals] == [("USD", Decimal("35.36"), 3)]
    assert report.totals[0].billed_hours == Decimal(826)
    text = format_table(report)
    rows = [line.split() for line in text.splitlines()]
    assert ["shop", "0.0832", "t3.large", "per", "instance-hour,", "whole", "hours", "1", "24.00", "2.00",
            "USD", "2026-10-20", "06:10", "2026-10-21", "06:10"] in rows
    assert ["0.0416", "t3.medium", "per", "instance-hour,", "whole", "hours", "3", "802.00", "33.36", "USD",
            "2026-10-01", "00:00", "2026-11-01", "00:00"] in rows
    subtotal = next(r for r in rows if r[:2] == ["shop", "subtotal"])
    assert subtotal[:6] == ["shop", "subtotal", "3", "826.00", "35.36", "USD"]
    assert next(r for r in rows if r[:1] == ["total"])[:5] == ["total", "3", "826.00", "35.36", "USD"]


def test_by_second_the_same_ledger_costs_less() -> None:
    per_second = PriceList(name="s", currency="USD", flavor_hourly=EC2.flavor_hourly)
    report = build_report(LEDGER, start=OCT, end=NOV, by="server", now=NOW, reprice=lambda p: per_second)
    costs = {row.group: row.cost for row in report.rows}
    assert costs["shop/web/1"] == Decimal("0.0416") * Decimal(203120) / Decimal(3600)  # 56:25:20
    assert costs["shop/web/2"] == Decimal("0.0416") / 6 + Decimal("0.0832") * 24


def test_every_grouping_bills_the_same_hours() -> None:
    """Started hours belong to the day they start in: cutting by day never bills an hour twice."""
    expected = sum(quantity for quantity, _ in invoice("cluster").values())
    for by in ("server", "member", "flavor", "provider", "day"):
        assert sum(quantity for quantity, _ in invoice(by).values()) == expected, by
    days = invoice("day")
    # 10-10: i-1's 24 hours, and i-2's hours starting 09:15, 10:15 … 23:15 (15)
    assert days[("2026-10-10", "t3.medium")][0] == Decimal(24 + 15)
    # 10-12: i-2's hours starting 00:15 … 17:15 (18): 15 + 24 + 18 = 57 in all
    assert days[("2026-10-12", "t3.medium")][0] == Decimal(24 + 18)


@pytest.mark.parametrize(
    ("first", "last", "expected_hours"),
    [
        ("00:00:00", "00:00:01", 1),
        ("00:00:00", "01:00:00", 1),
        ("00:00:00", "01:00:01", 2),
        ("00:30:00", "01:00:00", 0),  # the hour that started at 00:00 belongs to the piece before
        ("00:30:00", "01:00:00.000001", 1),
    ],
)
def test_started_hours(first: str, last: str, expected_hours: int) -> None:
    origin = at("2026-10-01T00:00:00")
    piece = (at(f"2026-10-01T{first}"), at(f"2026-10-01T{last}"))
    assert billed_seconds(origin, *piece, Granularity.HOUR) == 3600 * expected_hours


def test_csv_rows_add_up_to_the_total() -> None:
    report = build_report(LEDGER, start=OCT, end=NOV, by="server", now=NOW, reprice=lambda p: EC2)
    lines = format_csv(report).splitlines()[1:]
    cents = [Decimal(line.split(",")[6]) for line in lines]
    assert sum(cents) == report.totals[0].cents == Decimal("35.36")
