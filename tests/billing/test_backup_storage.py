"""Backup storage in usage reports and exports: GB-months × ``backup_gb_month``, in every mode.

The story, through the CLI at fixed instants: two sim.small servers ($0.10/h) from 11-01 00:00
under a backup policy, counters sampled at 01:00, 06:00, 12:00, 11-02 00:00 and 12:00; one
backup of shop/web/0 taken at 06:00 and kept; the report made at 11-02 12:00, over 11-01 →
11-03. The backup is then kept for 30 h: size × 30 h ÷ 720 h GB-months at $0.06.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import pytest

from reconciler.billing.compare import compare, format_comparison_table
from reconciler.billing.export import export_rows
from reconciler.billing.modes import BOTH, INSTANCE_HOURS, MEASURED, Ledger, main_report
from reconciler.core.model import MetricSample, PriceList, Size
from reconciler.core.records import BackupInterval, UsageInterval
from reconciler.store.sqlite import SQLiteStore
from tests.billing.conftest import InProcess, write_state

NOW = "2026-11-02T12:00:00Z"
WINDOW = ("--from", "2026-11-01", "--to", "2026-11-03")
RATE = Decimal("0.06")
POLICY = """\
apiVersion: reconciler/v1
kind: BackupPolicy
metadata:
  name: nightly
spec:
  schedule: "0 2 * * *"
  method: snapshot
  retention:
    keep_last: 3
"""


def _with_backups(folder: Path, rate: str) -> Path:
    prices = folder / "prices.yaml"
    prices.write_text(prices.read_text().replace('network_out_gb: "0.09"\n',
                                                 f'network_out_gb: "0.09"\n    backup_gb_month: "{rate}"\n'))
    (folder / "policy.yaml").write_text(POLICY)
    cluster = folder / "cluster.yaml"
    cluster.write_text(cluster.read_text() + "      backup_policy: nightly\n")
    return folder


@dataclass(frozen=True)
class Story:
    cli: InProcess
    infra: Path
    free: Path  # the same desired state, but backups priced at zero
    snapshot_id: str
    size: Decimal  # GB

    def json(self, *args: str) -> dict[str, Any]:
        result = self.cli("usage", "report", *WINDOW, "--format", "json", *args, now=NOW)
        assert result.code == 0, result.err
        data: dict[str, Any] = json.loads(result.out)
        return data

    def text(self, *args: str) -> str:
        result = self.cli("usage", "report", *WINDOW, *args, now=NOW)
        assert result.code == 0, result.err
        return result.out


@pytest.fixture(scope="module")
def story(tmp_path_factory: pytest.TempPathFactory) -> Story:
    root = tmp_path_factory.mktemp("backups")
    cli, infra = InProcess(root / "state"), _with_backups(write_state(root / "infra"), str(RATE))
    assert cli("apply", str(infra), "--yes", now="2026-11-01T00:00:00Z").code == 0
    assert cli("usage", "collect", str(infra), now="2026-11-01T01:00:00Z").code == 0
    taken = cli("backup", "run", str(infra), "--key", "shop/web/0", "--force", now="2026-11-01T06:00:00Z")
    assert taken.code == 0 and "1 taken" in taken.out, taken.out + taken.err
    for now in ("2026-11-01T06:00:00Z", "2026-11-01T12:00:00Z", "2026-11-02T00:00:00Z", NOW):
        assert cli("usage", "collect", str(infra), now=now).code == 0
    store = SQLiteStore(root / "state" / "state.db")
    try:
        [backup] = store.backup_intervals()
    finally:
        store.close()
    assert (backup.key, backup.end, backup.gb_month_rate) == ("shop/web/0", None, RATE)
    free = root / "free"
    shutil.copytree(infra, free)
    _with_backups(write_state(free), "0")
    return Story(cli, infra, free, backup.snapshot_id, Decimal(str(backup.size_gb)))


def _six(value: Decimal) -> str:
    return str(value.quantize(Decimal("0.000001"), rounding=ROUND_HALF_UP))


def _cents(value: Decimal) -> Decimal:
    return value.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def _backup_lines(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {row["group"]: line for row in data["rows"] for line in row["lines"] if line["item"] == "backups"}


def _gb_months(story: Story, hours: int) -> Decimal:
    return story.size * hours / 720


@pytest.mark.parametrize("mode", ["billed", INSTANCE_HOURS, MEASURED])
def test_every_mode_bills_the_backup_by_size_and_time(story: Story, mode: str) -> None:
    data = story.json("--by", "cluster", "--mode", mode, "--prices", str(story.infra))
    [row] = data["rows"]
    [line] = _backup_lines(data).values()
    quantity = _gb_months(story, 30)  # 11-01 06:00 → now (11-02 12:00)
    assert (line["unit"], line["rate"], line["instances"]) == ("GB-month", "0.06", 1)
    assert line["quantity"] == _six(quantity)
    assert Decimal(line["cost_exact"]) == quantity * RATE
    assert Decimal(line["cost"]) == _cents(quantity * RATE)
    # the row's servers are still its instances and hours; its cost is its lines' sum
    assert row["instances"] == 2 and row["seconds"] == 2 * 36 * 3600
    assert Decimal(row["cost"]) == sum((Decimal(x["cost"]) for x in row["lines"]), Decimal(0))
    lines_exact = sum((Decimal(x["cost_exact"]) for x in row["lines"]), Decimal(0))
    assert abs(Decimal(row["cost_exact"]) - lines_exact) < Decimal("1e-20")  # 28-digit Decimal arithmetic
    assert data["totals"][0]["cost"] == row["cost"] and data["totals"][0]["instances"] == 2


def test_the_recorded_rate_without_prices_and_by_server(story: Story) -> None:
    data = story.json("--by", "server")  # no --prices: the rate recorded when the backup was taken
    lines = _backup_lines(data)
    assert list(lines) == ["shop/web/0"]  # the backup belongs to the server it was taken of
    assert Decimal(lines["shop/web/0"]["cost_exact"]) == _gb_months(story, 30) * RATE
    assert [row["instances"] for row in data["rows"]] == [1, 1]


def test_days_split_the_backup_and_add_up(story: Story) -> None:
    by_day = _backup_lines(story.json("--by", "day"))
    assert {day: line["quantity"] for day, line in by_day.items()} == {
        "2026-11-01": _six(_gb_months(story, 18)),  # 06:00 → midnight
        "2026-11-02": _six(_gb_months(story, 12)),  # midnight → now
    }
    total = sum((Decimal(line["cost_exact"]) for line in by_day.values()), Decimal(0))
    assert total == _gb_months(story, 30) * RATE


def test_by_flavor_backups_are_a_group_of_their_own(story: Story) -> None:
    data = story.json("--by", "flavor")
    assert [row["group"] for row in data["rows"]] == ["backup storage", "sim.small"]
    assert data["rows"][0]["instances"] == 0 and data["totals"][0]["instances"] == 2
    assert data["totals"][0]["cost"] == str(sum((Decimal(r["cost"]) for r in data["rows"]), Decimal(0)))


def test_a_zero_rate_or_no_backup_makes_no_line(story: Story) -> None:
    free = story.json("--by", "cluster", "--prices", str(story.free))  # repriced: backup_gb_month 0
    assert _backup_lines(free) == {}
    before = story.cli("usage", "report", "--from", "2026-11-01", "--to", "2026-11-01T06:00:00Z", now=NOW)
    assert "backups" not in before.out and " Hours " in before.out  # the plain instance-hours table


def test_both_modes_carry_the_backup_on_each_side(story: Story) -> None:
    data = story.json("--by", "cluster", "--mode", BOTH, "--prices", str(story.infra))
    [row] = data["rows"]
    backup = _backup_lines(data["instance_hours"])["shop"]["cost"]
    assert _backup_lines(data["measured"])["shop"]["cost"] == backup
    assert row["instance_hours_cost"] == data["instance_hours"]["totals"][0]["cost"]
    assert row["measured_cost"] == data["measured"]["totals"][0]["cost"]
    # the saving is the servers' alone: the backup is on both sides and cancels out
    servers_ih = sum((Decimal(x["cost"]) for x in data["instance_hours"]["rows"][0]["lines"]
                      if x["item"] != "backups"), Decimal(0))
    servers_measured = sum((Decimal(x["cost"]) for x in data["measured"]["rows"][0]["lines"]
                            if x["item"] != "backups"), Decimal(0))
    assert Decimal(row["saving"]) == servers_ih - servers_measured
    assert any("backup storage is billed by size × time in both modes" in note for note in data["notes"])


def test_all_four_formats_agree(story: Story, tmp_path: Path) -> None:
    data = story.json("--by", "server", "--prices", str(story.infra), "--mode", MEASURED)
    cost = _backup_lines(data)["shop/web/0"]["cost"]
    table = story.text("--by", "server", "--prices", str(story.infra), "--mode", MEASURED)
    line = next(text for text in table.splitlines() if " backups " in text)
    assert "0.0600" in line and "per GB-month, size × time" in line and f"{cost} USD" in line
    csv_text = story.text("--by", "server", "--prices", str(story.infra), "--mode", MEASURED,
                          "--format", "csv")
    rows = {r["group"]: r for r in csv.DictReader(io.StringIO(csv_text))}
    assert {g: rows[g]["cost"] for g in rows} == {r["group"]: r["cost"] for r in data["rows"]}
    out = tmp_path / "report.html"
    story.text("--by", "server", "--prices", str(story.infra), "--mode", MEASURED, "--format", "html",
               "--out", str(out))
    page = out.read_text(encoding="utf-8")
    assert "<td>backups</td>" in page and f"{cost} USD" in page
    assert f"{data['totals'][0]['cost']} USD" in page


@pytest.mark.parametrize("mode", [INSTANCE_HOURS, MEASURED])
def test_export_has_a_row_per_backup_per_day_and_sums_to_the_report(story: Story, mode: str) -> None:
    result = story.cli("usage", "export", *WINDOW, "--mode", mode, "--prices", str(story.infra), now=NOW)
    assert result.code == 0, result.err
    rows = list(csv.DictReader(io.StringIO(result.out)))
    backups = [r for r in rows if r["resource"] == "backup-gb-months"]
    assert [(r["date"], r["mode"], r["server"], r["resource_id"], r["flavor"], r["unit"], r["quantity"])
            for r in backups] == [
        ("2026-11-01", mode, "shop/web/0", story.snapshot_id, "", "GB-month", _six(_gb_months(story, 18))),
        ("2026-11-02", mode, "shop/web/0", story.snapshot_id, "", "GB-month", _six(_gb_months(story, 12))),
    ]
    report = story.json("--by", "cluster", "--mode", mode, "--prices", str(story.infra))
    exported = sum((Decimal(r["cost"]) for r in rows), Decimal(0))
    assert abs(exported - Decimal(report["totals"][0]["cost_exact"])) < Decimal("0.000001") * len(rows)
    both = story.cli("usage", "export", *WINDOW, "--mode", "both", "--prices", str(story.infra), now=NOW)
    modes = [r["mode"] for r in csv.DictReader(io.StringIO(both.out)) if r["resource"] == "backup-gb-months"]
    assert sorted(modes) == ["instance-hours"] * 2 + ["measured"] * 2  # each mode's sum is its whole bill


# --- --mode both is honest about what was not measured (in-process, no CLI) -------------------
T0 = datetime(2026, 11, 1, tzinfo=UTC)
H = timedelta(hours=1)


def _server(resource_id: str, key: str) -> UsageInterval:
    return UsageInterval(deployment="d", provider="sim", resource_id=resource_id, key=key, flavor="sim.small",
                         size=Size(1, 1024, 10), start=T0, hourly_rate=Decimal("0.10"), currency="USD")


def test_unmeasured_servers_are_not_counted_as_saved() -> None:
    plist = PriceList(name="p", currency="USD", flavor_hourly={"sim.small": Decimal("0.10")},
                      vcpu_hour=Decimal("0.02"), backup_gb_month=Decimal("0.06"))
    sampled, silent = _server("i-1", "shop/web/0"), _server("i-2", "shop/db/0")
    samples = [MetricSample(provider="sim", resource_id="i-1", key="shop/web/0", at=T0 + n * H,
                            cpu_seconds=360.0 * n, memory_mb=0, net_rx_bytes=0, net_tx_bytes=0, disk_gb=10)
               for n in (1, 2, 3, 4)]
    backup = BackupInterval(deployment="d", provider="sim", snapshot_id="snap-1", key="shop/db/0",
                            policy="nightly", size_gb=72.0, start=T0, gb_month_rate=Decimal("0.06"),
                            currency="USD")
    ledger = Ledger(start=T0, end=T0 + 4 * H, now=T0 + 4 * H, intervals=[sampled, silent], samples=samples,
                    prices=lambda _: plist, backups=[backup])
    report, measured = main_report(ledger, "member", BOTH)
    assert measured is not None
    comparison = compare(report, measured)
    rows = {row.group: row for row in comparison.rows}
    # shop/db: not sampled; its measured side holds only the backup, which is not a measurement
    assert rows["shop/db"].measured is None and rows["shop/db"].saving is None
    assert rows["shop/db"].instance_hours == Decimal("0.40") + Decimal("0.02")  # 4 h × 0.10 + 0.4 GB-month
    # shop/web: 0.1 vCPU-hour per hour sampled → 0.4 vCPU-hours × 0.02 = 0.008 → 0.01
    assert (rows["shop/web"].instance_hours, rows["shop/web"].measured) == (Decimal("0.40"), Decimal("0.01"))
    [total] = comparison.totals
    assert total.instance_hours == Decimal("0.82") and total.measured == Decimal("0.01")
    assert total.saving == Decimal("0.39")  # shop/web's alone, not shop/db's instance-hours too
    assert "not measured (no samples in the window): shop/db" in format_comparison_table(comparison)


def test_no_backups_leave_every_report_as_it_was() -> None:
    interval = _server("i-1", "shop/web/0")
    plain = Ledger(start=T0, end=T0 + 4 * H, now=T0 + 4 * H, intervals=[interval])
    for mode in (INSTANCE_HOURS, MEASURED, BOTH):
        report, _ = main_report(plain, "cluster", mode)
        assert all(line.item != "backups" for row in report.rows for line in row.lines)
    rows = export_rows([interval], [], start=T0, end=T0 + 4 * H, now=T0 + 4 * H, mode="both", prices=None)
    assert {r["resource"] for r in rows} == {"instance-hours", "disk-gb-months"}
