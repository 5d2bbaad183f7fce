"""The usage ledger records the billing terms with the rate, so the default report bills as the PriceList did.

Servers of a PriceList with ``granularity: second``, ``minute`` or ``hour`` run for 30 min,
30 min 30 s and 61 min at $0.40/h. The default ``usage report`` (no ``--prices``) bills each
interval under the terms recorded with it, and so agrees with ``--prices`` and the same
PriceList, line for line, in the report and in the export; when the PriceList changes
later, the default report still bills as the old one did. A state database written before
terms were recorded (schema 1) is upgraded, its intervals billed by the second as before,
and the report says so. Re-terming a closed interval behind the store fails ``audit verify``.
"""

from __future__ import annotations

import csv
import io
import json
import sqlite3
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from reconciler.core.clock import isoformat, parse_timestamp
from reconciler.store.sqlite import SCHEMA_VERSION
from tests.billing.conftest import InProcess, write_state
from tests.store.schema_v1 import interval_row_v1, statements_v1

T0 = parse_timestamp("2026-11-01T00:00:00Z")
LATER = isoformat(T0 + timedelta(hours=3))
WINDOW = ("--from", "2026-11-01", "--to", "2026-11-02")
RATE = Decimal("0.40")  # sim.large
RUNS = {
    "30m": timedelta(minutes=30), "30m30s": timedelta(minutes=30, seconds=30), "61m": timedelta(minutes=61),
}
BILLED = {  # seconds billed for each run, by granularity
    "second": {"30m": 1800, "30m30s": 1830, "61m": 3660},
    "minute": {"30m": 1800, "30m30s": 1860, "61m": 3660},
    "hour": {"30m": 3600, "30m30s": 3600, "61m": 7200},
}
NOTES = {"second": "by the second", "minute": "whole minutes", "hour": "whole hours"}


def _at(moment: datetime) -> str:
    return isoformat(moment)


def _ran(tmp_path: Path, granularity: str, run: timedelta) -> tuple[InProcess, Path]:
    """One sim.large server, created at T0 and destroyed ``run`` later, under ``granularity``."""
    cli = InProcess(tmp_path / "state")
    infra = write_state(tmp_path / "infra", count=1, large=True, granularity=granularity)
    created = cli("apply", str(infra), "--yes", now=_at(T0))
    assert created.code == 0, created.out + created.err
    gone = cli("destroy", str(infra), "--yes", now=_at(T0 + run))
    assert gone.code == 0, gone.out + gone.err
    return cli, infra


def _report(cli: InProcess, *args: str) -> dict[str, Any]:
    result = cli("usage", "report", *WINDOW, "--by", "server", "--format", "json", *args, now=LATER)
    assert result.code == 0, result.err
    data: dict[str, Any] = json.loads(result.out)
    return data


def _line(data: dict[str, Any]) -> tuple[str, str, str, str]:
    [row] = data["rows"]
    [line] = row["lines"]
    return line["quantity"], line["cost"], line["cost_exact"], line["description"]


@pytest.mark.parametrize("run", sorted(RUNS))
@pytest.mark.parametrize("granularity", sorted(BILLED))
def test_the_default_report_bills_under_the_recorded_terms_and_agrees_with_prices(
    tmp_path: Path, granularity: str, run: str
) -> None:
    cli, infra = _ran(tmp_path, granularity, RUNS[run])
    default, repriced = _report(cli), _report(cli, "--prices", str(infra))
    seconds = BILLED[granularity][run]
    quantity, cents, exact, description = _line(default)
    assert Decimal(quantity) == (Decimal(seconds) / 3600).quantize(Decimal("0.000001"))
    assert Decimal(exact) == RATE * seconds / 3600
    assert Decimal(cents) == (RATE * seconds / 3600).quantize(Decimal("0.01"))
    assert description == f"per instance-hour, {NOTES[granularity]}"
    assert default["notes"] == []  # every interval's terms are recorded
    assert _line(repriced) == _line(default)
    assert repriced["totals"][0]["cost"] == default["totals"][0]["cost"]

    table = cli("usage", "report", *WINDOW, now=LATER).out
    assert f"per instance-hour, {NOTES[granularity]}" in table and "terms not recorded" not in table
    exports = [
        list(csv.DictReader(io.StringIO(cli("usage", "export", *WINDOW, *extra, now=LATER).out)))
        for extra in ((), ("--prices", str(infra)))
    ]
    assert exports[0] == exports[1]
    assert [(r["quantity"], r["cost"]) for r in exports[0]] == [
        (str((Decimal(seconds) / 3600).quantize(Decimal("0.000001"))), str((RATE * seconds / 3600).quantize(
            Decimal("0.000001"))))
    ]


def test_a_price_list_changed_later_does_not_rebill_the_past(tmp_path: Path) -> None:
    cli, infra = _ran(tmp_path, "hour", RUNS["30m"])
    write_state(infra, count=1, large=True, granularity="second")  # the terms change afterwards
    default, repriced = _report(cli), _report(cli, "--prices", str(infra))
    assert _line(default)[:2] == ("1.000000", "0.40")  # as the PriceList billed it then
    assert _line(repriced)[:2] == ("0.500000", "0.20")  # as today's PriceList would


def test_a_schema_1_state_database_is_upgraded_and_its_intervals_billed_as_before(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    conn = sqlite3.connect(state / "state.db")
    with conn:
        old = interval_row_v1("i-old", "2026-11-01T00:00:00.000000Z", "2026-11-01T00:30:00.000000Z",
                              rate="0.40", flavor="sim.large")
        for statement in statements_v1("sqlite", old):
            conn.execute(statement)
    conn.close()
    cli = InProcess(state)
    infra = write_state(tmp_path / "infra", count=1, large=True, granularity="hour")
    default = _report(cli)
    assert _line(default)[:2] == ("0.500000", "0.20")  # by the second, as schema 1 billed it
    assert _line(default)[3] == "per instance-hour, by the second, terms not recorded"
    [note] = default["notes"]
    assert note.startswith("1 interval(s) opened before billing terms were recorded with the rate")
    table = cli("usage", "report", *WINDOW, now=LATER).out
    assert "billed by the second, as before; reprice with --prices PATH" in table
    assert _line(_report(cli, "--prices", str(infra)))[:2] == ("1.000000", "0.40")
    version = sqlite3.connect(state / "state.db").execute(
        "SELECT value FROM meta WHERE name = 'schema_version'"
    ).fetchone()
    assert version == (str(SCHEMA_VERSION),)
    # intervals opened from now on carry their terms
    assert cli("apply", str(infra), "--yes", now=LATER).code == 0
    later = cli("usage", "report", "--from", "2026-11-01", "--to", "2026-11-02", "--by", "server",
                "--format", "json", now=_at(T0 + timedelta(hours=3, minutes=10)))
    lines = [line for row in json.loads(later.out)["rows"] for line in row["lines"]]
    assert sorted(line["description"] for line in lines) == [
        "per instance-hour, by the second, terms not recorded", "per instance-hour, whole hours",
    ]


@pytest.mark.parametrize(
    "edit",
    [
        "UPDATE usage_interval SET granularity = 'second'",
        "UPDATE usage_interval SET granularity = NULL, billing = NULL",
        "UPDATE usage_interval SET billing = 'measured'",
    ],
    ids=["re-termed", "terms erased", "billing mode"],
)
def test_terms_edited_behind_the_store_fail_audit_verify(tmp_path: Path, edit: str) -> None:
    cli, _ = _ran(tmp_path, "hour", RUNS["61m"])
    intact = cli("audit", "verify", now=LATER)
    assert intact.code == 0, intact.out + intact.err
    with sqlite3.connect(tmp_path / "state" / "state.db") as conn:
        conn.execute(edit + " WHERE end_at IS NOT NULL")
    conn.close()
    broken = cli("audit", "verify", now=LATER)
    assert broken.code == 1
    assert "audit ledger BROKEN: the usage ledger's closed intervals differ from what the" in broken.err
