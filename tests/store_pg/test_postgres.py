"""What only the PostgreSQL store has: its schema on first use, concurrent first users, reconnects."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime

import pytest

from reconciler.core.errors import UserError
from reconciler.core.records import AuditAction, AuditRecord, Outcome
from reconciler.store.postgres import PostgresStore
from reconciler.store.postgres_schema import SCHEMA_VERSION
from tests.store_pg import pg
from tests.store_pg.pg import REPO

T0 = datetime(2026, 11, 1, tzinfo=UTC)
RECORD = AuditRecord(
    deployment="prod", run_id="r", actor="a", action=AuditAction.CREATE, outcome=Outcome.INFO
)


def _schema(url: str) -> str:
    return url.rsplit("%3D", 1)[1]


def test_first_use_creates_the_versioned_schema_in_the_search_path(pg_url: str) -> None:
    PostgresStore(pg_url).close()
    tables = pg.query(
        pg_url, f"SELECT table_name FROM information_schema.tables WHERE table_schema = '{_schema(pg_url)}'"
    )
    assert {str(t[0]) for t in tables} == {
        "meta", "audit", "usage_interval", "usage_sample", "lease", "backup_interval"
    }
    version = pg.query(pg_url, "SELECT value FROM meta WHERE name = 'schema_version'")
    assert version == [(str(SCHEMA_VERSION),)]
    with PostgresStore(pg_url) as again:  # a second open finds it and changes nothing
        assert again.verify().ok


_OPENER = """
import sys
from datetime import UTC, datetime
from reconciler.store.postgres import PostgresStore
from reconciler.core.records import AuditAction, AuditRecord, Outcome
sys.stdin.readline()
with PostgresStore(sys.argv[1]) as store:
    for i in range(20):
        store.append(AuditRecord(deployment="prod", run_id=sys.argv[2], actor="a", action=AuditAction.CREATE,
                                 outcome=Outcome.INFO, detail=str(i)), at=datetime.now(UTC))
"""


def test_several_first_users_at_once(pg_url: str) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    procs = [
        subprocess.Popen([sys.executable, "-c", _OPENER, pg_url, f"p{n}"], stdin=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, env=env)
        for n in range(4)
    ]
    for proc in procs:
        assert proc.stdin is not None
        proc.stdin.write("go\n")
        proc.stdin.flush()
    for proc in procs:
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
    with PostgresStore(pg_url) as store:
        verification = store.verify()
        assert verification.ok and verification.entries == 80


def test_a_lost_connection_is_a_user_error_and_the_next_call_reconnects(pg_url: str) -> None:
    with PostgresStore(pg_url) as store:
        store.append(RECORD, at=T0)
        pid = store._conn.info.backend_pid
        pg.query(pg_url, f"SELECT pg_terminate_backend({pid})")
        with pytest.raises(UserError, match=r"lost the connection to the PostgreSQL store at 127\.0\.0\.1:"):
            store.append(RECORD, at=T0)
        assert store.append(RECORD, at=T0).seq == 2
        assert store.verify().ok


def test_a_database_that_does_not_exist_is_a_user_error(pg_url: str) -> None:
    url = pg_url.split("?")[0].rsplit("/", 1)[0] + "/no_such_database"
    expected = r"cannot connect to the PostgreSQL store at 127\.0\.0\.1:\d+/no_such_database"
    with pytest.raises(UserError, match=expected):
        PostgresStore(url)
