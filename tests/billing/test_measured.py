"""Measured billing on simcloud's synthetic counters, with a reboot (counter reset) in the middle.

simcloud's counters are deterministic: a running server burns ``cpus × u`` CPU seconds per
second and sends and receives bytes at fixed rates, ``u`` and the rates derived from its key.
The story: two small servers from 00:00; counters sampled at 01:00, 02:00, 03:00 and 04:00
(``usage collect``); shop/web/0 reboots at 02:30 (its counters restart from zero); the report
is made at 05:00. The use of web/0 between 02:00 and 02:30 is unknown: it must be reported
as a gap, never invented, and the restart must not turn into negative or doubled use.
"""

from __future__ import annotations

import csv
import io
import json
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import pytest

from providers.simcloud.storage import cpu_utilisation, unit_fraction
from reconciler.core.clock import isoformat
from tests.billing.conftest import InProcess, write_state

T0 = datetime(2026, 11, 1, tzinfo=UTC)
GIB = Decimal(2**30)
WINDOW = ("--from", "2026-11-01", "--to", "2026-11-02")


def hours(n: float) -> str:
    return isoformat(T0 + timedelta(hours=n))


def reboot(state: Path, key: str, at: str) -> None:
    """What a reboot does to simcloud's counters: they start again from zero."""
    with sqlite3.connect(state / "simcloud.db") as conn:
        changed = conn.execute(
            "UPDATE servers SET run_seconds = 0, cpu_seconds = 0, settled_at = ? WHERE key = ?", (at, key)
        ).rowcount
    assert changed == 1


@dataclass(frozen=True)
class Run:
    cli: InProcess
    infra: Path


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    root = tmp_path_factory.mktemp("measured")
    cli, infra = InProcess(root / "state"), write_state(root / "infra")
    assert cli("apply", str(infra), "--yes", now=hours(0)).code == 0
    for moment in (1, 2, 3, 4):
        if moment == 3:
            reboot(root / "state", "shop/web/0", hours(2.5))
        collected = cli("usage", "collect", str(infra), now=hours(moment))
        assert collected.code == 0 and "2 samples from 1 provider(s)" in collected.out, collected.err
    return Run(cli, infra)


def _json(run: Run, *args: str) -> dict[str, Any]:
    result = run.cli("usage", "report", *WINDOW, "--format", "json", "--prices", str(run.infra), *args,
                     now=hours(5))
    assert result.code == 0, result.err
    data: dict[str, Any] = json.loads(result.out)
    return data


def _rx(key: str, seconds: int) -> int:
    return int(seconds * (2_000 + 200_000 * unit_fraction("rx", key)))


def _tx(key: str, seconds: int) -> int:
    return int(seconds * (1_000 + 100_000 * unit_fraction("tx", key)))


def _cpu(key: str, seconds: int) -> Decimal:
    return Decimal(str(round(seconds * cpu_utilisation(key), 3)))  # 1 vCPU; simcloud keeps 3 decimals


def expected(key: str, *, rebooted: bool) -> dict[str, Decimal]:
    """Quantities by hand: counters from creation to the last sample (04:00), restarted at 02:30 for web/0."""
    spans = [7200, 5400] if rebooted else [14400]  # counter value at the last sample of each boot
    memory = int(1024 * (0.3 + 0.6 * cpu_utilisation(key)))
    return {
        "vCPU": sum((_cpu(key, s) for s in spans), Decimal(0)) / 3600,
        "RAM": Decimal(memory) / 1024 * 4,  # a gauge, over the 4 sampled hours
        "disk": Decimal(10) * 5 / 720,  # 10 GB for the 5 hours it existed, in 720-hour months
        "network in": sum((Decimal(_rx(key, s)) for s in spans), Decimal(0)) / GIB,
        "network out": sum((Decimal(_tx(key, s)) for s in spans), Decimal(0)) / GIB,
    }


RATES = {"vCPU": Decimal("0.02"), "RAM": Decimal("0.005"), "disk": Decimal("0.72"),
         "network in": Decimal("0.01"), "network out": Decimal("0.09")}


def _six(value: Decimal) -> str:
    return str(value.quantize(Decimal("0.000001"), rounding=ROUND_HALF_UP))


def _cents(value: Decimal) -> Decimal:
    return value.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def test_measured_use_survives_a_reboot(run: Run) -> None:
    data = _json(run, "--mode", "measured", "--by", "server")
    rows = {row["group"]: row for row in data["rows"]}
    assert sorted(rows) == ["shop/web/0", "shop/web/1"]
    for key, rebooted in (("shop/web/0", True), ("shop/web/1", False)):
        hand = expected(key, rebooted=rebooted)
        lines = {line["item"]: line for line in rows[key]["lines"]}
        assert sorted(lines) == sorted(hand), key
        for item, quantity in hand.items():
            assert lines[item]["quantity"] == _six(quantity), (key, item)
            assert Decimal(lines[item]["cost"]) == _cents(quantity * RATES[item]), (key, item)
            assert Decimal(lines[item]["quantity"]) >= 0
        row_cost = sum((Decimal(line["cost"]) for line in lines.values()), Decimal(0))
        assert Decimal(rows[key]["cost"]) == row_cost
    # the reboot lost web/0's counters for 02:00-02:30: it shows less than without the reboot, never more
    whole = expected("shop/web/0", rebooted=False)
    lost = {line["item"]: Decimal(line["quantity"]) for line in rows["shop/web/0"]["lines"]}
    assert lost["vCPU"] < whole["vCPU"] and lost["network in"] < whole["network in"]
    assert data["totals"][0]["cost"] == _money_sum(data["rows"])


def _money_sum(rows: list[dict[str, Any]]) -> str:
    return str(sum((Decimal(row["cost"]) for row in rows), Decimal(0)))


def test_gaps_are_reported_not_invented(run: Run) -> None:
    data = _json(run, "--mode", "measured", "--by", "cluster")
    gaps = [(g["key"], g["kind"], g["start"], g["end"]) for g in data["gaps"]]
    assert gaps == [
        ("shop/web/0", "counter reset", hours(2), hours(3)),
        ("shop/web/0", "not sampled", hours(4), hours(5)),
        ("shop/web/1", "not sampled", hours(4), hours(5)),
    ]
    table = run.cli("usage", "report", *WINDOW, "--mode", "measured", "--prices", str(run.infra),
                    now=hours(5))
    assert "counters restarted between samples at 2026-11-01T02:00:00Z → 2026-11-01T03:00:00Z" in table.out
    assert "no sample 2026-11-01T04:00:00Z → 2026-11-01T05:00:00Z" in table.out


def test_both_modes_side_by_side(run: Run) -> None:
    data = _json(run, "--mode", "both", "--by", "cluster")
    (row,) = data["rows"]
    assert row["instance_hours_cost"] == "1.00"  # 2 servers × 5 h × 0.10
    measured = data["measured"]["totals"][0]["cost"]
    assert row["measured_cost"] == measured
    assert Decimal(row["saving"]) == Decimal("1.00") - Decimal(measured)
    assert data["totals"][0]["saving"] == row["saving"]
    table = run.cli("usage", "report", *WINDOW, "--mode", "both", "--prices", str(run.infra), now=hours(5))
    line = next(text.split() for text in table.out.splitlines() if text.lstrip().startswith("shop"))
    assert line[:7] == ["shop", "2", "10.00", "1.00", "USD", measured, "USD"]


def test_days_split_the_same_use(run: Run) -> None:
    """Samples on a day boundary: the delta closed by a midnight sample belongs to the day before."""
    by_cluster = _json(run, "--mode", "measured", "--by", "cluster")
    by_day = _json(run, "--mode", "measured", "--by", "day")
    assert [row["group"] for row in by_day["rows"]] == ["2026-11-01"]
    assert by_day["totals"][0]["cost_exact"] == by_cluster["totals"][0]["cost_exact"]


def test_measured_export_rows_add_up(run: Run) -> None:
    result = run.cli("usage", "export", *WINDOW, "--mode", "measured", "--prices", str(run.infra),
                     now=hours(5))
    assert result.code == 0, result.err
    rows = list(csv.DictReader(io.StringIO(result.out)))
    assert {r["resource"] for r in rows} == {"vcpu-hours", "ram-gb-hours", "disk-gb-months", "network-in-gb",
                                            "network-out-gb"}
    assert {r["mode"] for r in rows} == {"measured"}
    web0 = {r["resource"]: r for r in rows if r["server"] == "shop/web/0"}
    assert web0["vcpu-hours"]["quantity"] == _six(expected("shop/web/0", rebooted=True)["vCPU"])
    report = _json(run, "--mode", "measured", "--by", "cluster")
    assert sum((Decimal(r["cost"]) for r in rows), Decimal(0)).quantize(Decimal("0.00001")) == Decimal(
        report["totals"][0]["cost_exact"]).quantize(Decimal("0.00001"))


def test_default_mode_follows_the_price_list(run: Run, tmp_path: Path) -> None:
    """``billing: measured`` in the PriceList: the report prices by use without being asked to."""
    measured_list = write_state(tmp_path / "measured-prices", billing="measured", cluster=False)
    default = run.cli("usage", "report", *WINDOW, "--format", "json", "--prices", str(measured_list),
                      now=hours(5))
    forced = run.cli("usage", "report", *WINDOW, "--format", "json", "--prices", str(measured_list),
                     "--mode", "measured", now=hours(5))
    assert json.loads(default.out)["rows"] == json.loads(forced.out)["rows"]
    by_hours = _json(run)  # the list in infra/ bills instance-hours
    assert [line["unit"] for line in by_hours["rows"][0]["lines"]] == ["instance-hour"]
