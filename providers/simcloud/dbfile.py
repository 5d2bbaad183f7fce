"""providers.simcloud.dbfile: opening simcloud's SQLite file, and saying plainly what SQLite refused.

* ``connect`` opens the file to read and write (WAL, busy timeout, the tables), creating it
  with its folder when missing. A new file's switch to WAL takes an exclusive lock, and SQLite
  answers "database is locked" at once — busy timeout or not — while another connection holds
  any lock, so ``use_wal`` retries it for up to the busy timeout: threads or processes opening
  one new file together all succeed.
* Where the file may only be read (a read-only state dir), ``connect`` opens it read-only
  instead, so ``plan`` and ``reconciler simcloud list`` still work; a write through such a
  connection is refused with one clear error. (SQLite reads a WAL file in a folder it may not
  write only as ``immutable``, which ignores a write-ahead log: that is used only when no
  ``-wal`` file with content lies beside it.)
* ``problem`` turns what SQLite reports into one ``UserError`` naming the file: a damaged file
  (garbage, truncated, not a database), a full disk, quota or file-size limit
  (``NoSpaceError``), a read-only file, a file that cannot be opened. ``refusals`` applies it
  around a block.
"""

from __future__ import annotations

import os
import resource
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

from reconciler.core.errors import Diagnostic, NoSpaceError, UserError, write_refused

BUSY_TIMEOUT_MS = 30_000
_BUSY, _READONLY, _IOERR, _CORRUPT, _FULL, _CANTOPEN, _NOTADB = 5, 8, 10, 11, 13, 14, 26
_LOW_SPACE_BYTES = 16 * 1024 * 1024


def use_wal(conn: sqlite3.Connection, timeout: float = BUSY_TIMEOUT_MS / 1000) -> None:
    """Put the file in WAL mode, waiting out other connections doing the same (see the docstring)."""
    deadline = time.monotonic() + timeout
    delay = 0.001
    while True:
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if _code(exc) != _BUSY and "locked" not in str(exc) or time.monotonic() >= deadline:
                raise
        time.sleep(delay)
        delay = min(delay * 2, 0.05)


def connect(path: Path, schema: str) -> sqlite3.Connection:
    """The file opened to write (created with ``schema`` when new), else read-only where it may
    only be read; any other refusal is ``problem``'s ``UserError``."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise write_refused(path.parent, exc, "state folder") from None
    conn: sqlite3.Connection | None = None
    try:
        conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None,
                               check_same_thread=False)
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        use_wal(conn)
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("BEGIN IMMEDIATE")
        for statement in schema.split(";"):
            if statement.strip():
                conn.execute(statement)
        conn.execute("COMMIT")
        return conn
    except sqlite3.Error as exc:
        if conn is not None:
            conn.close()
        if _code(exc) in (_READONLY, _CANTOPEN) and path.exists():
            return _read_only(path)
        raise problem(path, exc) or UserError(
            Diagnostic(str(path), None, f"cannot open simcloud's file ({exc})")
        ) from None


def _read_only(path: Path) -> sqlite3.Connection:
    uri = "file:" + quote(str(path.absolute()))
    options = {"uri": True, "timeout": BUSY_TIMEOUT_MS / 1000, "isolation_level": None,
               "check_same_thread": False}
    try:
        conn = sqlite3.connect(uri + "?mode=ro", **options)  # type: ignore[arg-type]
        try:
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
            return conn
        except sqlite3.Error:
            conn.close()
        wal = Path(str(path) + "-wal")
        if wal.exists() and wal.stat().st_size > 0:
            raise UserError(Diagnostic(
                str(path), None,
                f"cannot be read without write access: changes are still in its write-ahead log "
                f"{wal.name}, which SQLite reads only where it may write {path.parent}; run one "
                "command that changes the simulated cloud with write access to that folder first",
            ))
        return sqlite3.connect(uri + "?mode=ro&immutable=1", **options)  # type: ignore[arg-type]
    except sqlite3.Error as exc:
        raise problem(path, exc) or UserError(
            Diagnostic(str(path), None, f"cannot read simcloud's file ({exc})")
        ) from None


def _code(exc: sqlite3.Error) -> int | None:
    code = getattr(exc, "sqlite_errorcode", None)
    return code & 0xFF if isinstance(code, int) else None


def _space_is_short(path: Path) -> bool:
    """A file-size limit on this process, or little free space beside ``path``."""
    if resource.getrlimit(resource.RLIMIT_FSIZE)[0] != resource.RLIM_INFINITY:
        return True
    try:
        found = os.statvfs(path.parent)
    except OSError:
        return False
    return found.f_bavail * found.f_frsize < _LOW_SPACE_BYTES


def problem(path: Path, exc: sqlite3.Error) -> UserError | None:
    """The one ``UserError`` for what SQLite refused on simcloud's file, or None (see the docstring)."""
    code = _code(exc)
    text = str(exc)
    if code in (_CORRUPT, _NOTADB) or (code is None and ("malformed" in text or "not a database" in text)):
        return UserError(Diagnostic(
            str(path), None,
            f"simcloud's file is damaged ({text}); move it aside and the simulated cloud starts empty "
            "(its servers are then forgotten), or restore it from a copy",
        ))
    if code == _FULL:
        return NoSpaceError(path)
    if code == _IOERR:
        if _space_is_short(path):
            return NoSpaceError(path, f"SQLite: {text}")
        return UserError(Diagnostic(str(path), None, f"the disk refused a read or write ({text}); check "
                                    "its free space, quota and health, then run again"))
    if code == _READONLY:
        return UserError(Diagnostic(
            str(path), None,
            f"simcloud's file is read-only here; changing the simulated cloud needs write access to "
            f"{path.parent} (listing it does not)",
        ))
    if code == _CANTOPEN:
        return UserError(Diagnostic(str(path), None, f"cannot open simcloud's file ({text})"))
    return None


@contextmanager
def refusals(path: Path) -> Iterator[None]:
    """Raise ``problem``'s ``UserError`` for what SQLite refuses inside the block; the rest unchanged."""
    try:
        yield
    except sqlite3.Error as exc:
        found = problem(path, exc)
        if found is None:
            raise
        raise found from None
