"""store.sqlite_open: opening ``state.db`` to write or only to read, and saying what SQLite refused.

* **Writing** (``connect_writable``): the folder is made if missing and the file opened
  read-write, then switched to WAL (``use_wal``: a new file's switch takes an exclusive lock and
  SQLite answers "database is locked" at once, busy timeout or not, while another connection
  holds any lock, so the switch is retried for up to the busy timeout).
* **Reading** (``connect_read_only``): the file is opened ``mode=ro``, which never writes it and
  never creates it. A WAL file's readers normally share its ``-shm`` index; in a folder this
  user may not write, with no ``-shm`` file there (a clean close removes it), SQLite can read
  the file only as ``immutable``, which ignores a write-ahead log. So ``immutable`` is used
  only when no ``-wal`` file with content lies beside it (everything committed is then in the
  file itself); otherwise the error says what to do.
* **Refusals** (``sqlite_problem``): what SQLite reports becomes one ``UserError`` naming the
  file: damage (``damaged``), a full disk, quota or file-size limit (``NoSpaceError``, whether
  SQLite calls it "database or disk is full" or, for a size limit or quota, a write I/O error),
  a read-only file or folder, a file that cannot be opened. Anything else is returned as None
  and raised unchanged. A refused write leaves the database as it was: SQLite rolls the
  transaction back, so the next run after space is freed carries on from the last commit.
"""

from __future__ import annotations

import os
import resource
import sqlite3
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

from reconciler.core.errors import Diagnostic, NoSpaceError, UserError, write_refused

SQLITE_BUSY, SQLITE_READONLY, SQLITE_IOERR, SQLITE_CORRUPT = 5, 8, 10, 11
SQLITE_FULL, SQLITE_CANTOPEN, SQLITE_NOTADB = 13, 14, 26
LOW_SPACE_BYTES = 16 * 1024 * 1024  # less free space than this beside a failed write: no space


def connect_writable(path: Path, busy_timeout: float) -> sqlite3.Connection:
    """The file opened to read and write (created, with its folder, when missing)."""
    if str(path) != ":memory:":
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise write_refused(path.parent, exc, "state folder") from None
    return sqlite3.connect(str(path), timeout=busy_timeout, isolation_level=None, check_same_thread=False)


def connect_read_only(path: Path, busy_timeout: float) -> sqlite3.Connection:
    """The file opened only to read (see the module docstring); it must exist."""
    uri = "file:" + quote(str(path.absolute()))
    conn = sqlite3.connect(uri + "?mode=ro", uri=True, timeout=busy_timeout, isolation_level=None,
                           check_same_thread=False)
    try:
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()  # opens the log and its index
        return conn
    except sqlite3.OperationalError as exc:
        conn.close()
        if primary_code(exc) not in (SQLITE_READONLY, SQLITE_CANTOPEN):
            raise
    wal = Path(str(path) + "-wal")
    try:
        pending = wal.stat().st_size > 0
    except FileNotFoundError:
        pending = False
    if pending:
        raise UserError(Diagnostic(
            str(path), None,
            f"cannot be read without write access: changes are still in its write-ahead log {wal.name}, "
            f"which SQLite reads only where it may write {path.parent}; run one command that writes "
            "the ledgers (apply, say) with write access to that folder, which folds the log into the "
            "file, then reading works read-only",
        ))
    return sqlite3.connect(uri + "?mode=ro&immutable=1", uri=True, timeout=busy_timeout,
                           isolation_level=None, check_same_thread=False)


def use_wal(conn: sqlite3.Connection, timeout: float) -> None:
    """``PRAGMA journal_mode = WAL``, waiting out other connections switching the same new file."""
    deadline = time.monotonic() + timeout
    delay = 0.001
    while True:
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if primary_code(exc) != SQLITE_BUSY and "locked" not in str(exc) or time.monotonic() >= deadline:
                raise
        time.sleep(delay)
        delay = min(delay * 2, 0.05)


def primary_code(exc: sqlite3.Error) -> int | None:
    """SQLite's primary result code of an error (its extended code's low byte), when it says one."""
    code = getattr(exc, "sqlite_errorcode", None)
    return code & 0xFF if isinstance(code, int) else None


def is_damage(exc: sqlite3.DatabaseError) -> bool:
    """Whether SQLite says the file itself is damaged (not locked, full or read-only)."""
    code = primary_code(exc)
    if code is not None:
        return code in (SQLITE_CORRUPT, SQLITE_NOTADB)
    text = str(exc)
    return "malformed" in text or "not a database" in text


def findings(rows: list[Any]) -> list[str]:
    """What ``PRAGMA quick_check``/``integrity_check`` found, one line each; [] for "ok"."""
    lines = [line.strip() for row in rows for line in str(row[0]).splitlines()]
    found = [line for line in lines if line and not line.startswith("*** in database")]
    return [] if found == ["ok"] else found


def damaged(path: object, detail: str) -> UserError:
    """The one error for a damaged state file: which file, what SQLite found, what to do."""
    return UserError(
        Diagnostic(
            str(path),
            None,
            f"not a usable reconciler state database: the file is damaged ({detail}); restore it from a "
            "backup, or move it aside and let the reconciler start a new one (the audit and usage "
            "history in it is then lost)",
        )
    )


def space_is_short(path: Path) -> bool:
    """Whether a failed write beside ``path`` is likely for want of room: little free space on its
    filesystem, or a file-size limit on this process (``ulimit -f``)."""
    soft, _hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    if soft != resource.RLIM_INFINITY:
        return True
    try:
        found = os.statvfs(path.parent if str(path.parent) else Path("."))
    except OSError:
        return False
    return found.f_bavail * found.f_frsize < LOW_SPACE_BYTES


def sqlite_problem(path: Path, exc: sqlite3.Error) -> UserError | None:
    """The one ``UserError`` for what SQLite refused on ``path`` (see the module docstring), or None."""
    if isinstance(exc, sqlite3.DatabaseError) and is_damage(exc):
        return damaged(path, str(exc))
    code = primary_code(exc)
    name = getattr(exc, "sqlite_errorname", "") or str(exc)
    if code == SQLITE_FULL:
        return NoSpaceError(path)
    if code == SQLITE_IOERR:
        if space_is_short(path):
            return NoSpaceError(path, f"SQLite: {exc}")
        return UserError(Diagnostic(
            str(path), None,
            f"the disk refused a read or write ({exc}, {name}); check its free space, quota and "
            "health, then run again (nothing was half-written: SQLite rolled the change back)",
        ))
    if code == SQLITE_READONLY:
        return UserError(Diagnostic(
            str(path), None,
            f"cannot write the state database: it is read-only here ({name}); commands that write the "
            f"ledgers (apply, destroy, backup, restore, run) need write access to {path.parent}, commands "
            "that read them (plan, audit log, audit verify, usage report) work without",
        ))
    if code == SQLITE_CANTOPEN:
        return UserError(Diagnostic(
            str(path), None,
            f"cannot open the state database ({exc}); check that it and {path.parent} exist and can be "
            "read (and written, for commands that write the ledgers)",
        ))
    return None
