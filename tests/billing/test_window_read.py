"""Reports read only their window's samples (and each server's baseline), with the same result as reading all.

Two sim.small servers from 11-01 00:00, sampled every hour for two days (``usage collect``),
shop/web/0 rebooted at 30:30 (its counters restart). A report over a late window must give
exactly what it gave when every sample since the start of time was read, without reading them.
"""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from reconciler.billing.compare import compare, format_comparison_json
from reconciler.billing.export import export_rows, format_export_csv
from reconciler.billing.modes import BOTH, MEASURED, Ledger, main_report
from reconciler.billing.usage import format_json
from reconciler.cli.main import build_parser
from reconciler.cli.usage import read_ledger
from reconciler.core.clock import isoformat
from reconciler.store.sqlite import SQLiteStore
from tests.billing.conftest import InProcess, write_state

T0 = datetime(2026, 11, 1, tzinfo=UTC)
H = timedelta(hours=1)
HOURS = 48
NOW = T0 + HOURS * H


@pytest.fixture(scope="module")
def state(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("window")
    cli, infra = InProcess(root / "state"), write_state(root / "infra")
    assert cli("apply", str(infra), "--yes", now=isoformat(T0)).code == 0
    for n in range(1, HOURS + 1):
        if n == 31:
            with sqlite3.connect(root / "state" / "simcloud.db") as conn:  # a reboot: counters restart
                conn.execute("UPDATE servers SET run_seconds = 0, cpu_seconds = 0, settled_at = ? "
                             "WHERE key = ?", (isoformat(T0 + 30.5 * H), "shop/web/0"))
        assert cli("usage", "collect", str(infra), now=isoformat(T0 + n * H)).code == 0
    return root / "state", infra


def _ledger(state: tuple[Path, Path], start: datetime, end: datetime) -> Ledger:
    args = build_parser().parse_args([
        "--state-dir", str(state[0]), "--now", isoformat(NOW), "usage", "report", "--from", isoformat(start),
        "--to", isoformat(end), "--prices", str(state[1]), "--mode", "both",
    ])
    return read_ledger(args, samples=True)


def _unbounded(ledger: Ledger, state: tuple[Path, Path]) -> Ledger:
    """The same ledger with every sample from the start of time read, as reports used to."""
    store = SQLiteStore(state[0] / "state.db")
    try:
        return replace(ledger, samples=store.samples(end=ledger.end + timedelta(microseconds=1)))
    finally:
        store.close()


def test_a_late_window_reads_only_its_samples_and_the_baselines(state: tuple[Path, Path]) -> None:
    start, end = T0 + 40.5 * H, T0 + 44 * H
    ledger = _ledger(state, start, end)
    taken = sorted((s.key, s.at) for s in ledger.samples)
    baselines = [("shop/web/0", T0 + 40 * H), ("shop/web/1", T0 + 40 * H)]
    inside = [(key, T0 + n * H) for key in ("shop/web/0", "shop/web/1") for n in (41, 42, 43, 44)]
    assert taken == sorted(baselines + inside)
    assert min(s.at for s in ledger.samples) == T0 + 40 * H  # nothing of the first 40 hours
    assert len(_unbounded(ledger, state).samples) == 2 * 44


WINDOWS = [(0, 48), (30, 32), (30.5, 31), (40.5, 44), (47, 60), (0.25, 1)]


@pytest.mark.parametrize(("start_h", "end_h"), WINDOWS)
@pytest.mark.parametrize("by", ["server", "day"])
def test_the_report_is_the_same_as_from_every_sample(
    state: tuple[Path, Path], start_h: float, end_h: float, by: str
) -> None:
    bounded = _ledger(state, T0 + start_h * H, T0 + end_h * H)
    every = _unbounded(bounded, state)
    for ledger_mode in (MEASURED, BOTH):
        report, measured = main_report(bounded, by, ledger_mode)
        again, measured_again = main_report(every, by, ledger_mode)
        assert measured is not None and measured_again is not None
        assert format_json(report) == format_json(again)
        assert measured.gaps == measured_again.gaps and measured.deltas == measured_again.deltas
        if ledger_mode == BOTH:
            assert format_comparison_json(compare(report, measured)) == format_comparison_json(
                compare(again, measured_again))
    assert any(row.cost for row in main_report(bounded, by, MEASURED)[0].rows)  # not an empty comparison

    def export(ledger: Ledger) -> str:
        rows = export_rows(ledger.intervals, ledger.samples, start=ledger.start, end=ledger.end,
                           now=ledger.now, mode="measured", prices=ledger.prices)
        return format_export_csv(rows)

    assert export(bounded) == export(every)
