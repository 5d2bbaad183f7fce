"""Counter samples to deltas: restarts never give negative or doubled use; spans are never invented."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from reconciler.billing.measured import GapKind, build_measured_report, deltas_of
from reconciler.billing.modes import Ledger, main_report
from reconciler.billing.usage import format_table
from reconciler.core.model import BillingMode, MetricSample, PriceList, Size
from reconciler.core.records import UsageInterval

T0 = datetime(2026, 11, 1, tzinfo=UTC)


def sample(hour: float, cpu: float, rx: int = 0, tx: int = 0, memory: int = 1024) -> MetricSample:
    return MetricSample(provider="sim", resource_id="r", key="c/m/0", at=T0 + timedelta(hours=hour),
                        cpu_seconds=cpu, memory_mb=memory, net_rx_bytes=rx, net_tx_bytes=tx)


def test_counters_from_creation_and_between_samples() -> None:
    found = deltas_of([sample(2, 500.5, 30), sample(1, 100.25, 10)], origin=T0)  # any order
    assert [(d.start, d.end, d.cpu_seconds, d.rx_bytes, d.reset) for d in found] == [
        (T0, T0 + timedelta(hours=1), Decimal("100.25"), 10, False),
        (T0 + timedelta(hours=1), T0 + timedelta(hours=2), Decimal("400.25"), 20, False),
    ]
    assert [d.ram_gb_hours for d in found] == [Decimal(1), Decimal(1)]


def test_a_restarted_counter_counts_from_zero_and_others_keep_going() -> None:
    found = deltas_of([sample(1, 900, rx=50), sample(2, 60, rx=80), sample(3, 120, rx=90)], origin=T0)
    assert [(d.cpu_seconds, d.rx_bytes, d.reset) for d in found] == [
        (Decimal(900), 50, False),
        (Decimal(60), 30, True),  # cpu went down: 60 s since the restart; rx went on: +30
        (Decimal(60), 10, False),
    ]
    assert all(d.cpu_seconds >= 0 and d.rx_bytes >= 0 for d in found)
    assert sum(d.cpu_seconds for d in found) == Decimal(1020)  # never 900 + 900 + …


def test_without_a_known_creation_the_first_sample_is_only_a_baseline() -> None:
    found = deltas_of([sample(5, 1000), sample(6, 1500), sample(6, 1700)], origin=None)
    assert [(d.start.hour, d.end.hour, d.cpu_seconds) for d in found] == [(5, 6, Decimal(500))]


def test_memory_is_a_gauge_averaged_between_samples() -> None:
    found = deltas_of([sample(1, 0, memory=1024), sample(3, 0, memory=3072)], origin=None)
    assert found[0].ram_gb_hours == Decimal(4)  # (1 GB + 3 GB) / 2 × 2 h


def test_gaps_before_a_late_first_sample_and_after_the_last() -> None:
    life = UsageInterval(deployment="d", provider="sim", resource_id="r", key="c/m/0", flavor="f",
                         size=Size(1, 1024, 10), start=T0, end=T0 + timedelta(hours=10))
    samples = [sample(2, 100), sample(4, 300)]
    report = build_measured_report(samples, [life], start=T0 + timedelta(hours=3), end=T0 + timedelta(days=1),
                                   by="cluster", now=T0 + timedelta(days=2), prices=None)
    # the window opens at 03:00: the 02:00 sample is the baseline, 03:00-04:00's delta closes at 04:00
    assert [(g.kind, g.start.hour, g.end.hour) for g in report.gaps] == [(GapKind.UNSAMPLED, 4, 10)]
    (row,) = report.report.rows
    cpu = next(line for line in row.lines if line.item == "vCPU")
    assert cpu.quantity == Decimal(200) / 3600 and cpu.currency == "" and cpu.cents == 0
    assert "no sample 2026-11-01T04:00:00Z → 2026-11-01T10:00:00Z" in report.report.notes[0]


def test_billed_mode_mixes_providers_billed_each_way() -> None:
    hourly = PriceList(name="h", currency="USD", flavor_hourly={"f": Decimal("0.50")})
    used = PriceList(name="m", currency="USD", billing=BillingMode.MEASURED, vcpu_hour=Decimal("1"))
    lists = {"sim": used, "other": hourly}
    lives = [
        UsageInterval(deployment="d", provider=provider, resource_id=rid, key=f"c/m/{n}", flavor="f",
                      size=Size(1, 1024, 10), start=T0)
        for n, (provider, rid) in enumerate((("sim", "r"), ("other", "o")))
    ]
    ledger = Ledger(start=T0, end=T0 + timedelta(days=1), now=T0 + timedelta(hours=2), intervals=lives,
                    samples=[sample(2, 1800)], prices=lambda name: lists[name])
    report, measured = main_report(ledger, "cluster", "billed")
    assert measured is not None and report.mode == "billed"
    (row,) = report.rows
    assert [(line.item, line.unit, line.cost) for line in row.lines] == [
        ("f", "instance-hour", Decimal("1.00")),  # the other provider: 2 h × 0.50
        ("vCPU", "vCPU-hour", Decimal("0.5")),  # sim: 1800 CPU seconds × 1.00 per vCPU-hour
    ]
    assert row.instances == 2 and report.totals[0].cents == Decimal("1.50")
    assert "as each PriceList bills" in format_table(report)
