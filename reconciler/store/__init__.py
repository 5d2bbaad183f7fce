"""store: ledgers and leases behind one interface (SQLite by default).

``open_store`` turns the ``--store`` URL into a Store: nothing (or ``sqlite:///path``)
means the SQLite file, ``postgresql://…`` the shared PostgreSQL store.
"""

from __future__ import annotations

from pathlib import Path

from reconciler.core.errors import UserError
from reconciler.store.base import Store
from reconciler.store.sqlite import SQLiteStore

DEFAULT_FILE = "state.db"
_ACCEPTED = "sqlite:///relative/path.db, sqlite:////absolute/path.db or postgresql://user@host/db"


def open_store(state_dir: Path, url: str | None = None, *, read_only: bool = False) -> Store:
    """Open (creating if needed) the store a ``--store`` URL names; default ``state_dir/state.db``.

    ``read_only``: only to read (an existing SQLite file, never written nor created, readable in
    a folder this user may not write; see ``SQLiteStore``). PostgreSQL is opened as usual.

    ``sqlite:///`` is followed by the path, so an absolute path has four slashes in all
    (``sqlite:////var/lib/reconciler/state.db``) and a relative one is taken from the
    working directory, as SQLAlchemy reads these URLs.
    """
    if url is None or not url.strip():
        return SQLiteStore(state_dir / DEFAULT_FILE, read_only=read_only)
    url = url.strip()
    if url.startswith("sqlite:///"):
        path = url[len("sqlite:///"):]
        if not path:
            raise UserError(f"--store {url!r} names no file; write it like {_ACCEPTED.split(', ')[0]}")
        return SQLiteStore(Path(path), read_only=read_only)
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if scheme in ("postgresql", "postgres") or scheme.startswith("postgresql+"):
        try:
            from reconciler.store.postgres import PostgresStore  # psycopg is needed only for this store
        except ImportError:
            raise UserError(
                f"--store {_redact(url)}: the PostgreSQL store needs psycopg 3; "
                "install it with: pip install 'gitops-reconciler[postgresql]' (or 'psycopg[binary]')"
            ) from None
        # libpq reads postgresql:// and postgres://; a SQLAlchemy-style driver suffix is dropped.
        return PostgresStore("postgresql://" + url.split("://", 1)[1])
    raise UserError(f"--store {_redact(url)} is not a store URL this reconciler accepts; use {_ACCEPTED}")


def store_exists(state_dir: Path, url: str | None = None) -> bool:
    """Whether the store a ``--store`` URL names exists already (a SQLite file; PostgreSQL: True)."""
    if url is None or not url.strip():
        return (state_dir / DEFAULT_FILE).exists()
    url = url.strip()
    if url.startswith("sqlite:///") and url[len("sqlite:///"):]:
        return Path(url[len("sqlite:///"):]).exists()
    return True  # PostgreSQL, or a URL open_store refuses with its own message


def _redact(url: str) -> str:
    """Hide a password in ``scheme://user:password@host`` before it reaches an error message."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return repr(url)
    userinfo, at, host = rest.rpartition("@")
    if at and ":" in userinfo:
        userinfo = userinfo.split(":", 1)[0] + ":***"
        return repr(f"{scheme}://{userinfo}@{host}")
    return repr(url)


__all__ = ["DEFAULT_FILE", "SQLiteStore", "Store", "open_store", "store_exists"]
