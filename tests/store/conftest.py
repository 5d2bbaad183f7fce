"""Fixtures for the store tests: each Store-semantics test runs against SQLite and PostgreSQL.

``backend`` is parametrized over both stores; ``store`` is a fresh store of that backend,
``reopen`` opens another store object on the same data, ``tamper`` runs SQL behind the
store's back (as an attacker with write access would). The PostgreSQL variant skips, with
the reason, when no PostgreSQL server can be had (see ``tests/store_pg/pg.py``).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from reconciler.store.base import Store
from reconciler.store.sqlite import SQLiteStore
from tests.store_pg import pg


@dataclass(frozen=True)
class Backend:
    name: str
    url: str  # what --store takes
    open: Callable[[], Store]
    tamper: Callable[..., None]


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "state" / "state.db"


def _sqlite_tamper(path: Path) -> Callable[..., None]:
    def run(*statements: str) -> None:
        conn = sqlite3.connect(path)
        with conn:
            for statement in statements:
                conn.execute(statement)
        conn.close()

    return run


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest, db_path: Path) -> Iterator[Backend]:
    if request.param == "sqlite":
        yield Backend("sqlite", f"sqlite:///{db_path}", lambda: SQLiteStore(db_path), _sqlite_tamper(db_path))
        return
    base, reason = pg.server()
    if base is None:
        pytest.skip(reason)
    from reconciler.store.postgres import PostgresStore

    with pg.fresh_schema(base) as url:
        yield Backend("postgres", url, lambda: PostgresStore(url), lambda *sql: pg.execute(url, *sql))


@pytest.fixture
def store(backend: Backend) -> Iterator[Store]:
    s = backend.open()
    yield s
    s.close()


@pytest.fixture
def reopen(backend: Backend) -> Callable[[], Store]:
    return backend.open


@pytest.fixture
def tamper(backend: Backend) -> Callable[..., None]:
    return backend.tamper
