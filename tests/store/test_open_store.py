"""open_store: which --store URLs open which store, and the errors for the rest."""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.core.errors import UserError
from reconciler.store import open_store
from reconciler.store.sqlite import SQLiteStore


def test_default_is_state_db_in_the_state_dir(tmp_path: Path) -> None:
    store = open_store(tmp_path / ".reconciler")
    try:
        assert isinstance(store, SQLiteStore)
        assert store.path == tmp_path / ".reconciler" / "state.db"
        assert store.path.exists()
    finally:
        store.close()


def test_sqlite_url_absolute_and_relative(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "elsewhere" / "ledger.db"
    store = open_store(tmp_path / "unused", f"sqlite:///{target}")  # an absolute path: four slashes
    store.close()
    assert target.exists()
    assert not (tmp_path / "unused").exists()
    monkeypatch.chdir(tmp_path)
    relative = open_store(tmp_path / "unused", "sqlite:///rel/state.db")
    relative.close()
    assert (tmp_path / "rel" / "state.db").exists()


@pytest.mark.parametrize(
    "url", ["postgresql://u:secret@127.0.0.1:1/recon", "postgres://u:secret@127.0.0.1:1/recon"]
)
def test_postgresql_connection_failure_names_the_server_not_the_password(tmp_path: Path, url: str) -> None:
    pytest.importorskip("psycopg")
    expected = r"cannot connect to the PostgreSQL store at 127\.0\.0\.1:1/recon"
    with pytest.raises(UserError, match=expected) as info:
        open_store(tmp_path, url)
    assert "secret" not in str(info.value)


@pytest.mark.parametrize("url", ["mysql://db/x", "state.db", "sqlite://", "sqlite:///"])
def test_other_urls_are_user_errors(tmp_path: Path, url: str) -> None:
    with pytest.raises(UserError, match="sqlite:///"):
        open_store(tmp_path, url)
