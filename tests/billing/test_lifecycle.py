"""Servers created, resized and deleted at known times cost exactly what a hand count says.

Driven through the CLI at fixed instants (RECONCILER_NOW): two sim.small servers ($0.10/h)
from 11-01 00:00, both resized to sim.large ($0.40/h) at 10:30, one deleted at 11-02 00:00,
the report made at 11-02 12:00.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tests.billing.conftest import InProcess, write_state

T0, T1 = "2026-11-01T00:00:00Z", "2026-11-01T10:30:00Z"
T2, NOW = "2026-11-02T00:00:00Z", "2026-11-02T12:00:00Z"
WINDOW = ("--from", "2026-11-01", "--to", "2026-11-03")


@dataclass(frozen=True)
class Ledger:
    cli: InProcess
    root: Path


@pytest.fixture(scope="module")
def ledger(tmp_path_factory: pytest.TempPathFactory) -> Ledger:
    """The ledger after the story above (made once for the module)."""
    root = tmp_path_factory.mktemp("lifecycle")
    cli, infra = InProcess(root / "state"), write_state(root / "infra")
    assert cli("apply", str(infra), "--yes", now=T0).code == 0
    write_state(infra, large=True)
    resized = cli("apply", str(infra), "--yes", now=T1)
    assert resized.code == 0, resized.out + resized.err
    assert "~ shop/web/0" in resized.out
    write_state(infra, count=1, large=True)
    deleted = cli("apply", str(infra), "--yes", now=T2)
    assert deleted.code == 0 and "- shop/web/1" in deleted.out, deleted.out + deleted.err
    return Ledger(cli, root)


def _report(cli: InProcess, *args: str) -> dict[str, Any]:
    result = cli("usage", "report", *WINDOW, "--format", "json", *args, now=NOW)
    assert result.code == 0, result.err
    data: dict[str, Any] = json.loads(result.out)
    return data


def _lines(data: dict[str, Any]) -> dict[tuple[str, str], tuple[str, str]]:
    return {(row["group"], line["item"]): (line["quantity"], line["cost"])
            for row in data["rows"] for line in row["lines"]}


def test_created_resized_deleted_by_the_second(ledger: Ledger) -> None:
    cli = ledger.cli
    data = _report(cli, "--by", "server")
    assert _lines(data) == {
        # web/0: small 00:00-10:30 (10.5 h × 0.10), large 10:30 → now 12:00 next day (25.5 h × 0.40)
        ("shop/web/0", "sim.small"): ("10.500000", "1.05"),
        ("shop/web/0", "sim.large"): ("25.500000", "10.20"),
        # web/1: small 10.5 h, large 10:30 → deleted at 00:00 (13.5 h × 0.40)
        ("shop/web/1", "sim.small"): ("10.500000", "1.05"),
        ("shop/web/1", "sim.large"): ("13.500000", "5.40"),
    }
    assert [(t["currency"], t["cost"], t["instances"], t["seconds"]) for t in data["totals"]] == [
        ("USD", "17.70", 2, 60 * 3600)
    ]
    assert data["running"] == 1
    by_day = _report(cli, "--by", "day")
    assert [(row["group"], row["cost"]) for row in by_day["rows"]] == [
        ("2026-11-01", "12.90"),  # 2 × 10.5 h small + 2 × 13.5 h large
        ("2026-11-02", "4.80"),  # web/0: 12 h large
    ]
    assert by_day["totals"][0]["cost"] == "17.70"


def test_whole_hours_like_old_ec2(ledger: Ledger) -> None:
    cli = ledger.cli
    hourly = write_state(ledger.root / "hourly", granularity="hour", cluster=False)
    data = _report(cli, "--by", "server", "--prices", str(hourly))
    assert _lines(data) == {
        ("shop/web/0", "sim.small"): ("11.000000", "1.10"),  # 10.5 h: 11 started hours
        ("shop/web/0", "sim.large"): ("26.000000", "10.40"),  # 25.5 h: 26
        ("shop/web/1", "sim.small"): ("11.000000", "1.10"),
        ("shop/web/1", "sim.large"): ("14.000000", "5.60"),  # 13.5 h: 14
    }
    assert data["totals"][0]["cost"] == "18.20"
    by_day = _report(cli, "--by", "day", "--prices", str(hourly))
    assert [(row["group"], row["cost"]) for row in by_day["rows"]] == [
        ("2026-11-01", "13.40"),  # 2 × 11 small + 2 × 14 large started that day
        ("2026-11-02", "4.80"),  # web/0: 12 hours started 00:30 … 11:30
    ]
    assert by_day["totals"][0]["cost"] == "18.20"


def test_table_csv_and_export_agree(ledger: Ledger) -> None:
    cli = ledger.cli
    table = cli("usage", "report", *WINDOW, "--by", "member", now=NOW)
    assert table.code == 0, table.err
    rows = [line.split() for line in table.out.splitlines()]
    assert ["shop/web", "0.4000", "sim.large", "per", "instance-hour,", "by", "the", "second", "2", "39.00",
            "15.60", "USD", "2026-11-01", "10:30", "2026-11-02", "12:00"] in rows
    assert next(r for r in rows if r[:1] == ["total"])[:5] == ["total", "2", "60.00", "17.70", "USD"]
    as_csv = cli("usage", "report", *WINDOW, "--format", "csv", now=NOW)
    parsed = list(csv.DictReader(io.StringIO(as_csv.out)))
    assert [(r["group"], r["cost"], r["billed_hours"]) for r in parsed] == [("shop", "17.70", "60.0000")]
    export = cli("usage", "export", *WINDOW, now=NOW)
    assert export.code == 0, export.err
    exported = list(csv.DictReader(io.StringIO(export.out)))
    assert {(r["date"], r["server"], r["flavor"], r["quantity"], r["cost"]) for r in exported} == {
        ("2026-11-01", "shop/web/0", "sim.small", "10.500000", "1.050000"),
        ("2026-11-01", "shop/web/0", "sim.large", "13.500000", "5.400000"),
        ("2026-11-01", "shop/web/1", "sim.small", "10.500000", "1.050000"),
        ("2026-11-01", "shop/web/1", "sim.large", "13.500000", "5.400000"),
        ("2026-11-02", "shop/web/0", "sim.large", "12.000000", "4.800000"),
    }
    assert {r["resource"] for r in exported} == {"instance-hours"}
    assert sum(Decimal(r["cost"]) for r in exported) == Decimal("17.70")
