"""Garbage in a stored row (usage intervals, samples, backup intervals, leases) is one error naming the
table and the row — never a ValueError, a decimal.InvalidOperation or a silently wrong report."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from reconciler.core.errors import UserError
from reconciler.core.model import MetricSample, Size
from reconciler.core.records import BackupInterval, UsageInterval
from reconciler.store.sqlite import SQLiteStore

from .helpers import T0


@pytest.fixture
def filled(db_path: Path) -> Iterator[Path]:
    """A store holding one usage interval (id 1), one sample, one backup interval (id 1) and a lease."""
    with SQLiteStore(db_path) as store:
        store.open_interval(
            UsageInterval(
                id=None,
                deployment="prod",
                provider="sim",
                resource_id="sim-1",
                key="shop/web/0",
                flavor=None,
                size=Size(2, 2048, 20),
                start=T0,
                end=None,
                hourly_rate=Decimal("0.02"),
                currency="USD",
                price_list="standard",
            )
        )
        store.add_samples(
            "prod",
            [
                MetricSample(
                    provider="sim",
                    resource_id="sim-1",
                    key="shop/web/0",
                    at=T0 + timedelta(minutes=5),
                    cpu_seconds=12.5,
                    memory_mb=512,
                    net_rx_bytes=10,
                    net_tx_bytes=20,
                    disk_gb=20,
                )
            ],
        )
        store.open_backup_interval(
            BackupInterval(
                id=None,
                deployment="prod",
                provider="sim",
                snapshot_id="snap-1",
                key="shop/web/0",
                policy="nightly",
                size_gb=4.5,
                start=T0,
                end=None,
                gb_month_rate=Decimal("0.05"),
                currency="USD",
                price_list="standard",
            )
        )
        assert store.acquire_lease("provider/sim", "me", ttl_seconds=60, now=T0) is not None
    yield db_path


def _tamper(path: Path, sql: str, *params: Any) -> None:
    conn = sqlite3.connect(path)
    with conn:
        conn.execute(sql, params)
    conn.close()


Read = Callable[[SQLiteStore], object]
_WINDOW = {"start": T0 - timedelta(days=1), "end": T0 + timedelta(days=1)}


@pytest.mark.parametrize(
    ("sql", "value", "read", "named"),
    [
        ("UPDATE usage_interval SET cpus = ?", "two", lambda s: s.intervals(), "usage_interval row 1"),
        (
            "UPDATE usage_interval SET memory_mb = ?",
            1.5e400,
            lambda s: s.open_intervals("prod"),
            "usage_interval row 1",
        ),
        (
            "UPDATE usage_interval SET start_at = ?",
            "yesterday",
            lambda s: s.intervals(),
            "usage_interval row 1",
        ),
        (
            "UPDATE usage_interval SET start_at = ?",
            "2026-13-45",
            lambda s: s.intervals(),
            "usage_interval row 1",
        ),
        (
            "UPDATE usage_interval SET hourly_rate = ?",
            "lots",
            lambda s: s.intervals(),
            "usage_interval row 1",
        ),
        ("UPDATE usage_interval SET hourly_rate = ?", "NaN", lambda s: s.intervals(), "usage_interval row 1"),
        (
            "UPDATE usage_interval SET hourly_rate = ?",
            "Infinity",
            lambda s: s.close_interval("sim", "sim-1", end=T0),
            "usage_interval row 1",
        ),
        (
            "UPDATE usage_sample SET cpu_seconds = ?",
            "busy",
            lambda s: s.samples(),
            "usage_sample row 'sim/sim-1",
        ),
        (
            "UPDATE usage_sample SET cpu_seconds = ?",
            "nan",
            lambda s: s.window_samples(**_WINDOW),
            "usage_sample row 'sim/sim-1",
        ),
        ("UPDATE usage_sample SET net_rx_bytes = ?", "many", lambda s: s.samples(), "usage_sample row"),
        (
            "UPDATE backup_interval SET size_gb = ?",
            "big",
            lambda s: s.backup_intervals(),
            "backup_interval row 1",
        ),
        (
            "UPDATE backup_interval SET gb_month_rate = ?",
            "1/0",
            lambda s: s.backup_intervals(),
            "backup_interval row 1",
        ),
        (
            "UPDATE backup_interval SET end_at = ?",
            "soon",
            lambda s: s.backup_intervals(),
            "backup_interval row 1",
        ),
        (
            "UPDATE lease SET epoch = ?",
            "first",
            lambda s: s.current_lease("provider/sim"),
            "lease row 'provider/sim'",
        ),
        (
            "UPDATE lease SET expires_at = ?",
            "never",
            lambda s: s.current_lease("provider/sim"),
            "lease row 'provider/sim'",
        ),
        (
            "UPDATE lease SET expires_at = ?",
            "never",
            lambda s: s.acquire_lease("provider/sim", "me", ttl_seconds=60, now=T0),
            "lease row 'provider/sim'",
        ),
        (
            "UPDATE lease SET holder = ?",
            b"\x00\xff",
            lambda s: s.acquire_lease("provider/sim", "you", ttl_seconds=60, now=T0),
            "lease row 'provider/sim'",
        ),
    ],
)
def test_a_garbled_row_is_one_error_naming_its_table_and_row(
    filled: Path, sql: str, value: object, read: Read, named: str
) -> None:
    _tamper(filled, sql, value)
    with SQLiteStore(filled) as store, pytest.raises(UserError) as caught:
        read(store)
    (message,) = [str(d) for d in caught.value.diagnostics]
    assert message.startswith(f"{filled}: the state database is damaged: {named}")
    assert "cannot be read" in message and "restore the state database from a backup" in message


def test_a_garbled_lease_stops_a_fenced_write_with_the_same_error(filled: Path) -> None:
    with SQLiteStore(filled) as store:
        lease = store.current_lease("provider/sim")
        assert lease is not None
        _tamper(filled, "UPDATE lease SET epoch = 'x'")
        with store.fenced([lease]), pytest.raises(UserError, match="lease row 'provider/sim' cannot be read"):
            store.close_interval("sim", "sim-1", end=T0)


def test_a_garbled_row_in_the_ledger_is_one_line_from_usage_report(
    filled: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from reconciler.cli.main import main

    _tamper(filled, "UPDATE usage_interval SET hourly_rate = 'lots'")
    code = main(["--state-dir", str(filled.parent), "--now", "2026-11-02T00:00:00Z", "usage", "report"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1
    assert len(err) == 1 and "usage_interval row 1 cannot be read" in err[0], err
