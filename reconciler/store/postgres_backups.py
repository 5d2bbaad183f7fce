"""store.postgres_backups: the backup-storage ledger's SQL for ``PostgresStore``.

Mirrors ``store.sqlite_backups``: one row per backup (snapshot) lifetime, at most one open
row per (provider, snapshot id). These functions run inside the store's own transactions
(and fence checks); they only speak SQL.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

import psycopg

from reconciler.store.base import BackupInterval
from reconciler.store.common import utc
from reconciler.store.postgres_schema import BACKUP_COLUMNS, BACKUP_FIELDS

Conn = psycopg.Connection[tuple[Any, ...]]


def _interval(row: Sequence[Any]) -> BackupInterval:
    return BackupInterval(
        id=int(row[0]),
        deployment=row[1],
        provider=row[2],
        snapshot_id=row[3],
        key=row[4],
        policy=row[5],
        size_gb=float(row[6]),
        start=utc(row[7]),
        end=None if row[8] is None else utc(row[8]),
        gb_month_rate=None if row[9] is None else Decimal(row[9]),
        currency=row[10],
        price_list=row[11],
    )


def _open_row(conn: Conn, provider: str, snapshot_id: str, *, lock: bool = False) -> tuple[Any, ...] | None:
    return conn.execute(
        f"SELECT {BACKUP_COLUMNS} FROM backup_interval "
        "WHERE provider = %s AND snapshot_id = %s AND end_at IS NULL" + (" FOR UPDATE" if lock else ""),
        (provider, snapshot_id),
    ).fetchone()


def open_interval(conn: Conn, interval: BackupInterval) -> BackupInterval:
    """Insert an open interval unless the backup has one already (call inside a write transaction)."""
    existing = _open_row(conn, interval.provider, interval.snapshot_id)
    if existing is not None:
        return _interval(existing)
    row = conn.execute(
        f"INSERT INTO backup_interval ({BACKUP_FIELDS}) VALUES ({', '.join(['%s'] * 11)}) "
        "ON CONFLICT (provider, snapshot_id) WHERE end_at IS NULL DO NOTHING RETURNING id",
        (
            interval.deployment,
            interval.provider,
            interval.snapshot_id,
            interval.key,
            interval.policy,
            interval.size_gb,
            utc(interval.start),
            None if interval.end is None else utc(interval.end),
            interval.gb_month_rate,
            interval.currency,
            interval.price_list,
        ),
    ).fetchone()
    if row is None:  # another writer opened it just now
        existing = _open_row(conn, interval.provider, interval.snapshot_id)
        assert existing is not None
        return _interval(existing)
    return dataclasses.replace(interval, id=int(row[0]))


def close_interval(conn: Conn, provider: str, snapshot_id: str, end: datetime) -> BackupInterval | None:
    """Close the open interval of a backup (call inside a write transaction)."""
    row = _open_row(conn, provider, snapshot_id, lock=True)
    if row is None:
        return None
    interval = _interval(row)
    end = max(utc(end), interval.start)  # a clock step backwards never makes a negative span
    conn.execute("UPDATE backup_interval SET end_at = %s WHERE id = %s", (end, interval.id))
    return dataclasses.replace(interval, end=end)


def select_intervals(
    conn: Conn, start: datetime | None, end: datetime | None, deployment: str | None
) -> list[BackupInterval]:
    """Intervals overlapping [start, end), oldest first."""
    conditions = [
        ("start_at < %s", None if end is None else utc(end)),
        ("(end_at IS NULL OR end_at > %s)", None if start is None else utc(start)),
        ("deployment = %s", deployment),
    ]
    used = [(clause, value) for clause, value in conditions if value is not None]
    where = ("WHERE " + " AND ".join(clause for clause, _ in used)) if used else ""
    rows = conn.execute(
        f"SELECT {BACKUP_COLUMNS} FROM backup_interval {where} ORDER BY start_at, id", [v for _, v in used]
    ).fetchall()
    return [_interval(row) for row in rows]
