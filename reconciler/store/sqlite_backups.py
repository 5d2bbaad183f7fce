"""store.sqlite_backups: the backup-storage ledger's table and SQL for ``SQLiteStore``.

One row per backup (snapshot) lifetime: provider, snapshot id, key, policy, size in GB,
start and end, and the ``backup_gb_month`` rate in force when it opened. The table is
created with ``CREATE TABLE IF NOT EXISTS`` on every open, so state files written before
it existed gain it without a schema-version bump. These functions run inside the store's
own transactions (and fence checks); they only speak SQL.
"""

from __future__ import annotations

import dataclasses
import sqlite3
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from reconciler.clock import parse_timestamp
from reconciler.store.base import BackupInterval

SCHEMA = """
CREATE TABLE IF NOT EXISTS backup_interval (
    id INTEGER PRIMARY KEY,
    deployment TEXT NOT NULL,
    provider TEXT NOT NULL,
    snapshot_id TEXT NOT NULL,
    key TEXT NOT NULL,
    policy TEXT NOT NULL,
    size_gb REAL NOT NULL,
    start_at TEXT NOT NULL,
    end_at TEXT,
    gb_month_rate TEXT,
    currency TEXT NOT NULL,
    price_list TEXT NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS backup_one_open ON backup_interval (provider, snapshot_id)
    WHERE end_at IS NULL;
CREATE INDEX IF NOT EXISTS backup_span ON backup_interval (start_at, end_at)
"""

_COLUMNS = (
    "id, deployment, provider, snapshot_id, key, policy, size_gb, start_at, end_at, gb_month_rate, "
    "currency, price_list"
)


def _ts(moment: datetime) -> str:
    """Fixed-width UTC text (as ``store.sqlite`` writes every timestamp)."""
    moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def create_schema(conn: sqlite3.Connection) -> None:
    for statement in SCHEMA.split(";"):
        if statement.strip():
            conn.execute(statement)


def _interval(row: tuple[Any, ...]) -> BackupInterval:
    return BackupInterval(
        id=int(row[0]),
        deployment=row[1],
        provider=row[2],
        snapshot_id=row[3],
        key=row[4],
        policy=row[5],
        size_gb=float(row[6]),
        start=parse_timestamp(row[7], what="stored timestamp"),
        end=None if row[8] is None else parse_timestamp(row[8], what="stored timestamp"),
        gb_month_rate=None if row[9] is None else Decimal(row[9]),
        currency=row[10],
        price_list=row[11],
    )


def _open_row(conn: sqlite3.Connection, provider: str, snapshot_id: str) -> tuple[Any, ...] | None:
    found: tuple[Any, ...] | None = conn.execute(
        f"SELECT {_COLUMNS} FROM backup_interval WHERE provider = ? AND snapshot_id = ? AND end_at IS NULL",
        (provider, snapshot_id),
    ).fetchone()
    return found


def open_interval(conn: sqlite3.Connection, interval: BackupInterval) -> BackupInterval:
    """Insert an open interval unless the backup has one already (call inside a write transaction)."""
    existing = _open_row(conn, interval.provider, interval.snapshot_id)
    if existing is not None:
        return _interval(existing)
    cursor = conn.execute(
        f"INSERT INTO backup_interval ({_COLUMNS}) VALUES ({', '.join('?' * 12)})",
        (
            None,
            interval.deployment,
            interval.provider,
            interval.snapshot_id,
            interval.key,
            interval.policy,
            interval.size_gb,
            _ts(interval.start),
            None if interval.end is None else _ts(interval.end),
            None if interval.gb_month_rate is None else str(interval.gb_month_rate),
            interval.currency,
            interval.price_list,
        ),
    )
    return dataclasses.replace(interval, id=cursor.lastrowid)


def close_interval(
    conn: sqlite3.Connection, provider: str, snapshot_id: str, end: datetime
) -> BackupInterval | None:
    """Close the open interval of a backup (call inside a write transaction)."""
    row = _open_row(conn, provider, snapshot_id)
    if row is None:
        return None
    interval = _interval(row)
    end = max(end.astimezone(UTC), interval.start)  # a clock step backwards never makes a negative span
    conn.execute("UPDATE backup_interval SET end_at = ? WHERE id = ?", (_ts(end), interval.id))
    return dataclasses.replace(interval, end=end)


def select_intervals(
    conn: sqlite3.Connection, start: datetime | None, end: datetime | None, deployment: str | None
) -> list[BackupInterval]:
    """Intervals overlapping [start, end), oldest first."""
    conditions = [
        ("start_at < ?", None if end is None else _ts(end)),
        ("(end_at IS NULL OR end_at > ?)", None if start is None else _ts(start)),
        ("deployment = ?", deployment),
    ]
    used = [(clause, value) for clause, value in conditions if value is not None]
    where = ("WHERE " + " AND ".join(clause for clause, _ in used)) if used else ""
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM backup_interval {where} ORDER BY start_at, id", [v for _, v in used]
    ).fetchall()
    return [_interval(row) for row in rows]
