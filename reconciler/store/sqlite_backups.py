"""store.sqlite_backups: the backup-storage ledger's table for ``SQLiteStore``.

One row per backup (snapshot) lifetime: provider, snapshot id, key, policy, size in GB,
start and end, and the ``backup_gb_month`` rate in force when it opened. The table is
created with ``CREATE TABLE IF NOT EXISTS`` on every open, so state files written before
it existed gain it without a schema-version bump. The SQL that reads and writes it is
``store.sqlstore`` (shared with PostgreSQL) and ``SQLiteStore._insert_backup_interval``.
"""

from __future__ import annotations

import sqlite3

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


def create_schema(conn: sqlite3.Connection) -> None:
    for statement in SCHEMA.split(";"):
        if statement.strip():
            conn.execute(statement)
