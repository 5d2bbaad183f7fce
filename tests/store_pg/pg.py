"""A real PostgreSQL server for the tests, and a fresh schema per test on it.

Where the server comes from, first match wins:

1. ``RECONCILER_TEST_POSTGRES`` — a URL (``scripts/run-tests.sh`` exports it after
   ``scripts/setup/postgres.sh`` started the CI server);
2. PostgreSQL binaries on this machine — ``scripts/setup/postgres.sh --no-install`` starts
   the test server (or finds it running, from an earlier run) and prints its URL; it keeps
   running for the next run (``scripts/setup/postgres.sh --stop`` stops it);
3. neither — the PostgreSQL tests skip, saying why.

Each test gets its own schema (``search_path`` set through the URL's ``options``), so tests
never see each other's tables and need no cleanup beyond ``DROP SCHEMA … CASCADE``.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "setup" / "postgres.sh"
ENV = "RECONCILER_TEST_POSTGRES"


@functools.cache
def server() -> tuple[str | None, str]:
    """(base URL, "") when a server is available, else (None, why not)."""
    try:
        import psycopg  # noqa: F401 - the PostgreSQL store's driver
    except ImportError:
        return None, "psycopg is not installed (pip install 'psycopg[binary]')"
    url = os.environ.get(ENV, "").strip()
    if url:
        return url, ""
    if not any(Path("/usr/lib/postgresql").glob("*/bin/initdb")) and shutil.which("initdb") is None:
        return None, f"no PostgreSQL installed (run scripts/setup/postgres.sh, or set {ENV})"
    proc = subprocess.run(["bash", str(SCRIPT), "--no-install"], capture_output=True, text=True, timeout=180)
    line = proc.stdout.strip()
    prefix = f"export {ENV}="
    if proc.returncode != 0 or not line.startswith(prefix):
        return None, "could not start a PostgreSQL server: " + (proc.stderr.strip().splitlines() or ["?"])[-1]
    return line[len(prefix):].strip("'"), ""


def with_schema(url: str, schema: str) -> str:
    """The URL with ``search_path`` set to ``schema`` (libpq's ``options`` parameter)."""
    return url + ("&" if "?" in url else "?") + f"options=-csearch_path%3D{schema}"


@contextmanager
def fresh_schema(base_url: str) -> Iterator[str]:
    """A URL whose tables land in a new, empty schema; the schema is dropped afterwards."""
    import psycopg

    schema = "t_" + uuid.uuid4().hex[:12]
    with psycopg.connect(base_url, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    try:
        yield with_schema(base_url, schema)
    finally:
        with psycopg.connect(base_url, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


def execute(url: str, *statements: str) -> None:
    """Run statements in one transaction behind the store's back (tamper, inspect)."""
    import psycopg

    with psycopg.connect(url) as conn:
        for statement in statements:
            conn.execute(statement)


def query(url: str, sql: str) -> list[tuple[object, ...]]:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute(sql).fetchall()
