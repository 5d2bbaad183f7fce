"""store.postgres_schema: the PostgreSQL store's tables (schema version 3).

The same tables and column names as the SQLite store, in PostgreSQL types: ``TIMESTAMPTZ``
for every time, ``NUMERIC`` for money (exact, never a float), identity columns for ids.
``audit.generation`` is derived from an intent's detail (see ``store.postgres``). The
column lists both stores read and write are in ``store.sqlstore``, and so are the upgrades
from older schema versions (``MIGRATIONS``), run when the store is opened.
"""

from __future__ import annotations

# 2: usage intervals record the billing terms with the rate; 3: audit entries their change's
# author and committer (sqlstore.MIGRATIONS)
SCHEMA_VERSION = 3

TABLES = (
    """CREATE TABLE audit (
        seq BIGINT PRIMARY KEY,
        at TIMESTAMPTZ NOT NULL,
        deployment TEXT NOT NULL,
        run_id TEXT NOT NULL,
        actor TEXT NOT NULL,
        action TEXT NOT NULL,
        outcome TEXT NOT NULL,
        key TEXT NOT NULL,
        provider TEXT NOT NULL,
        resource_id TEXT NOT NULL,
        token TEXT NOT NULL,
        commit_id TEXT NOT NULL,
        detail TEXT NOT NULL,
        error TEXT NOT NULL,
        intent_seq BIGINT,
        prev_hash TEXT NOT NULL,
        hash TEXT NOT NULL,
        generation BIGINT,
        author TEXT,
        committer TEXT
    )""",
    "CREATE INDEX audit_intent_seq ON audit (intent_seq)",
    "CREATE INDEX audit_deployment_outcome ON audit (deployment, outcome)",
    "CREATE INDEX audit_deployment_key ON audit (deployment, key)",
    """CREATE TABLE usage_interval (
        id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        deployment TEXT NOT NULL,
        provider TEXT NOT NULL,
        resource_id TEXT NOT NULL,
        key TEXT NOT NULL,
        flavor TEXT,
        cpus INTEGER NOT NULL,
        memory_mb BIGINT NOT NULL,
        disk_gb BIGINT NOT NULL,
        start_at TIMESTAMPTZ NOT NULL,
        end_at TIMESTAMPTZ,
        hourly_rate NUMERIC,
        currency TEXT NOT NULL,
        price_list TEXT NOT NULL,
        granularity TEXT,
        billing TEXT
    )""",
    "CREATE UNIQUE INDEX usage_one_open ON usage_interval (provider, resource_id) WHERE end_at IS NULL",
    "CREATE INDEX usage_span ON usage_interval (start_at, end_at)",
    """CREATE TABLE usage_sample (
        deployment TEXT NOT NULL,
        provider TEXT NOT NULL,
        resource_id TEXT NOT NULL,
        key TEXT NOT NULL,
        at TIMESTAMPTZ NOT NULL,
        cpu_seconds DOUBLE PRECISION NOT NULL,
        memory_mb BIGINT NOT NULL,
        net_rx_bytes BIGINT NOT NULL,
        net_tx_bytes BIGINT NOT NULL,
        disk_gb BIGINT NOT NULL,
        PRIMARY KEY (provider, resource_id, at)
    )""",
    "CREATE INDEX usage_sample_at ON usage_sample (at)",
    """CREATE TABLE lease (
        scope TEXT PRIMARY KEY,
        holder TEXT NOT NULL,
        epoch BIGINT NOT NULL,
        expires_at TIMESTAMPTZ NOT NULL
    )""",
    """CREATE TABLE backup_interval (
        id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        deployment TEXT NOT NULL,
        provider TEXT NOT NULL,
        snapshot_id TEXT NOT NULL,
        key TEXT NOT NULL,
        policy TEXT NOT NULL,
        size_gb DOUBLE PRECISION NOT NULL,
        start_at TIMESTAMPTZ NOT NULL,
        end_at TIMESTAMPTZ,
        gb_month_rate NUMERIC,
        currency TEXT NOT NULL,
        price_list TEXT NOT NULL
    )""",
    "CREATE UNIQUE INDEX backup_one_open ON backup_interval (provider, snapshot_id) WHERE end_at IS NULL",
    "CREATE INDEX backup_span ON backup_interval (start_at, end_at)",
)
