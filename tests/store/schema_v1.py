"""The state database as schema version 1 wrote it, before usage intervals recorded billing terms.

Literal copies of the DDL that shipped with version 1 (SQLite's ``store.sqlite._SCHEMA`` and
PostgreSQL's ``store.postgres_schema.TABLES``), so a migration test starts from exactly the
tables an older reconciler left behind — never from today's schema with columns dropped.
"""

from __future__ import annotations

SQLITE_V1 = """
CREATE TABLE audit (
    seq INTEGER PRIMARY KEY,
    at TEXT NOT NULL,
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
    intent_seq INTEGER,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE INDEX audit_intent_seq ON audit (intent_seq);
CREATE INDEX audit_deployment_outcome ON audit (deployment, outcome);
CREATE INDEX audit_deployment_key ON audit (deployment, key);
CREATE TABLE usage_interval (
    id INTEGER PRIMARY KEY,
    deployment TEXT NOT NULL,
    provider TEXT NOT NULL,
    resource_id TEXT NOT NULL,
    key TEXT NOT NULL,
    flavor TEXT,
    cpus INTEGER NOT NULL,
    memory_mb INTEGER NOT NULL,
    disk_gb INTEGER NOT NULL,
    start_at TEXT NOT NULL,
    end_at TEXT,
    hourly_rate TEXT,
    currency TEXT NOT NULL,
    price_list TEXT NOT NULL
);
CREATE UNIQUE INDEX usage_one_open ON usage_interval (provider, resource_id) WHERE end_at IS NULL;
CREATE INDEX usage_span ON usage_interval (start_at, end_at);
CREATE TABLE usage_sample (
    deployment TEXT NOT NULL,
    provider TEXT NOT NULL,
    resource_id TEXT NOT NULL,
    key TEXT NOT NULL,
    at TEXT NOT NULL,
    cpu_seconds REAL NOT NULL,
    memory_mb INTEGER NOT NULL,
    net_rx_bytes INTEGER NOT NULL,
    net_tx_bytes INTEGER NOT NULL,
    disk_gb INTEGER NOT NULL,
    PRIMARY KEY (provider, resource_id, at)
);
CREATE INDEX usage_sample_at ON usage_sample (at);
CREATE TABLE lease (
    scope TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    epoch INTEGER NOT NULL,
    expires_at TEXT NOT NULL
);
"""

POSTGRES_V1 = (
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
        generation BIGINT
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
        price_list TEXT NOT NULL
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

GENESIS = "0" * 64
META_V1 = (
    "CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "INSERT INTO meta (name, value) VALUES ('schema_version', '1')",
    "INSERT INTO meta (name, value) VALUES ('audit_head_seq', '0')",
    f"INSERT INTO meta (name, value) VALUES ('audit_head_hash', '{GENESIS}')",
)


def interval_row_v1(
    resource_id: str, start: str, end: str | None, rate: str | None = "0.10", flavor: str = "sim.small"
) -> str:
    """An INSERT of a usage interval as version 1 wrote it: the rate and currency, no terms."""
    end_sql = "NULL" if end is None else f"'{end}'"
    rate_sql = "NULL" if rate is None else f"'{rate}'"
    return (
        "INSERT INTO usage_interval (deployment, provider, resource_id, key, flavor, cpus, memory_mb, "
        "disk_gb, start_at, end_at, hourly_rate, currency, price_list) VALUES "
        f"('prod', 'sim', '{resource_id}', 'shop/web/0', '{flavor}', 1, 1024, 10, '{start}', {end_sql}, "
        f"{rate_sql}, '{'' if rate is None else 'USD'}', '{'' if rate is None else 'prices'}')"
    )


def statements_v1(backend: str, *rows: str) -> list[str]:
    """The statements making a version-1 database of ``backend`` ("sqlite", "postgres") with ``rows``."""
    tables = [s for s in SQLITE_V1.split(";") if s.strip()] if backend == "sqlite" else list(POSTGRES_V1)
    return [*tables, *META_V1, *rows]
