"""Fixtures for the multi-writer tests: a PostgreSQL schema per test, and stores on both backends.

``pg_url`` is a PostgreSQL URL whose tables land in a fresh schema (the test skips, naming
the reason, when no server can be had — see ``pg.py``); ``any_url`` is parametrized over
SQLite and PostgreSQL for the fencing and lease-keeping rules both stores must keep.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.store_pg import pg


@pytest.fixture
def pg_url() -> Iterator[str]:
    base, reason = pg.server()
    if base is None:
        pytest.skip(reason)
    with pg.fresh_schema(base) as url:
        yield url


@pytest.fixture(params=["sqlite", "postgres"])
def any_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A --store URL of a fresh, empty store on each backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'state' / 'state.db'}"
        return
    base, reason = pg.server()
    if base is None:
        pytest.skip(reason)
    with pg.fresh_schema(base) as url:
        yield url
