"""providers.aws.memo: the local memo of EC2 counter sums, so a sample reads only the new hours.

One SQLite file per provider under the provider's state directory
(``<provider name>.cloudwatch-memo.db``), in WAL mode with a busy timeout, holds per
instance the hour up to which its counters are summed and the sums. It is a cache of
CloudWatch's sums of settled hours, not ledger state: nothing else reads it, and without it
the sums are read from CloudWatch's history again (see ``providers.aws.metrics`` for what
that means after 455 days).

* A row only moves forward: a write whose hour is behind the stored one is ignored, so
  two processes sharing the file never undo each other.
* Every sample marks the rows of the instances it was shown as seen; rows not seen for
  ``FORGET_AFTER`` (terminated instances) are deleted as part of the same write, which
  keeps the file as small as the fleet.
* SQLite trouble (a locked or unwritable file) is a ``TransientError``; a file that is not
  a database at all is a ``PermanentError`` naming it, to be moved away by hand.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

from providers.aws.metrics import Memoized, Sums
from reconciler.core.errors import PermanentError, TransientError

MEMO_SUFFIX = ".cloudwatch-memo.db"
BUSY_TIMEOUT_MS = 30_000
FORGET_AFTER = timedelta(days=30)  # a row not seen by any sample for this long is dropped
_CHUNK = 500  # instance ids per SELECT (below SQLite's limit of bound parameters)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS sums (
    instance_id TEXT PRIMARY KEY,
    through INTEGER NOT NULL,
    cpu_seconds REAL NOT NULL,
    rx_bytes REAL NOT NULL,
    tx_bytes REAL NOT NULL,
    seen INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS sums_seen ON sums (seen)
"""

_UPSERT = """
INSERT INTO sums (instance_id, through, cpu_seconds, rx_bytes, tx_bytes, seen)
VALUES (?, ?, ?, ?, ?, ?)
ON CONFLICT (instance_id) DO UPDATE SET
    through = excluded.through, cpu_seconds = excluded.cpu_seconds,
    rx_bytes = excluded.rx_bytes, tx_bytes = excluded.tx_bytes, seen = excluded.seen
WHERE excluded.through >= sums.through
"""


def memo_path(state_dir: Path, provider_name: str) -> Path:
    """Where the memo of provider ``provider_name`` lives."""
    return state_dir / f"{provider_name}{MEMO_SUFFIX}"


def _seconds(moment: datetime) -> int:
    return int(moment.timestamp())


def _moment(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, tz=UTC)


class Memo:
    """The memo file of one provider, opened on first use; safe to share between threads."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.Lock()

    @contextmanager
    def _transaction(self, *, write: bool) -> Iterator[sqlite3.Connection]:
        """One short transaction (IMMEDIATE for writers), SQLite failures as typed errors."""
        with self._lock:
            try:
                conn = self._connection()
                conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
                try:
                    yield conn
                except BaseException:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise
                conn.execute("COMMIT")
            except sqlite3.OperationalError as exc:
                raise TransientError(f"metrics memo {self.path}: {exc}", code="MemoUnavailable") from exc
            except sqlite3.DatabaseError as exc:
                raise PermanentError(
                    f"metrics memo {self.path}: {exc}; move the file away to read CloudWatch's history again",
                    code="MemoDamaged",
                ) from exc

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(
                self.path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None, check_same_thread=False
            )
            try:
                conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
                conn.execute("PRAGMA journal_mode = WAL")
                conn.execute("PRAGMA synchronous = NORMAL")
                conn.executescript(_SCHEMA)
            except BaseException:
                conn.close()
                raise
            self._conn = conn
        return self._conn

    def read(self, instance_ids: Iterable[str]) -> dict[str, Memoized]:
        """The rows of those instances that have one."""
        wanted = sorted(set(instance_ids))
        found: dict[str, Memoized] = {}
        with self._transaction(write=False) as conn:
            for first in range(0, len(wanted), _CHUNK):
                chunk = wanted[first:first + _CHUNK]
                marks = ", ".join("?" * len(chunk))
                rows = conn.execute(
                    "SELECT instance_id, through, cpu_seconds, rx_bytes, tx_bytes FROM sums"
                    f" WHERE instance_id IN ({marks})",
                    chunk,
                )
                for instance_id, through, cpu, rx, tx in rows:
                    found[instance_id] = Memoized(instance_id, _moment(through), Sums(cpu, rx, tx))
        return found

    def write(self, rows: Iterable[Memoized], seen: datetime) -> None:
        """Store ``rows`` (each only if not behind the stored one), all seen at ``seen``, and
        forget rows not seen since ``FORGET_AFTER`` before it."""
        values = [
            (r.instance_id, _seconds(r.through), r.sums.cpu_seconds, r.sums.rx_bytes, r.sums.tx_bytes,
             _seconds(seen))
            for r in rows
        ]
        with self._transaction(write=True) as conn:
            conn.executemany(_UPSERT, values)
            conn.execute("DELETE FROM sums WHERE seen < ?", (_seconds(seen - FORGET_AFTER),))

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
