"""store.sqlite: the default Store — one SQLite file (``.reconciler/state.db``) in WAL mode.

Design decisions:

* **Durability.** ``journal_mode=WAL`` and ``synchronous=FULL``: a write is fsynced when
  its transaction commits, so an audit entry is on disk when ``append`` returns. The
  crash-safety design (intent before the provider call) relies on that. Inside an outer
  ``transaction()`` the entry is durable when that transaction commits.
* **Concurrency.** One connection per store, guarded by a re-entrant lock (threads), and
  every write runs in a ``BEGIN IMMEDIATE`` transaction, which takes SQLite's write lock
  before anything is read — so computing the next seq and hash is safe across processes
  too; ``busy_timeout`` makes a second process wait instead of failing.
* **Transactions.** ``transaction()`` nests: the outermost level is ``BEGIN IMMEDIATE`` …
  ``COMMIT``, inner levels are savepoints. Every write method runs inside it, so
  ``with store.transaction(): store.append(...); store.open_interval(...)`` lands both or
  neither. The lock is held for the whole transaction, so other threads wait.
* **Hash chain.** ``hash = sha256(prev_hash + canonical JSON of {seq, at, record fields})``
  (see ``audit_hash``); the first entry's ``prev_hash`` is ``GENESIS_HASH``. The chain's
  head (last seq and hash) is also kept in ``meta``, so removing the newest entries is
  detected too, not only edits and gaps.
* **Generations.** Intents for a create carry ``detail`` as a JSON object with an integer
  ``"generation"`` (``{"generation": 3, ...}``); ``max_generation`` reads it with
  ``json_extract``. Entries whose ``detail`` is not JSON are ignored there.
* **Timestamps** are stored as fixed-width UTC text (``2026-11-01T00:00:00.000000Z``) so
  that text order is time order; money (``Decimal``) is stored as TEXT, never as a float.
* **Schema version** lives in ``meta``; a file written by a newer reconciler is refused, one
  written by an older one is upgraded when it is opened (``sqlstore.MIGRATIONS``, in the
  opening transaction: all of it or nothing). Whatever is read from ``meta`` is checked
  (``store.common.meta_value``).
* **Damage.** SQLite's "database disk image is malformed" and "file is not a database",
  wherever the file is opened, read or written, become one ``UserError`` naming the file
  and what to do (``store.sqlite_open.damaged``). Opening runs ``PRAGMA quick_check`` (every page read once,
  a few milliseconds per MB), so damage anywhere stops a command before it reads, writes
  or lets an apply touch a cloud; ``check_integrity`` runs the full ``PRAGMA
  integrity_check`` (indexes against their tables too) for ``reconciler audit verify``,
  which a hash-chain walk alone cannot replace (a damaged index or usage page leaves the
  chain readable).
* **Refusals and reading.** A full disk, quota or file-size limit, a read-only file or folder
  become one ``UserError`` naming the file too (``store.sqlite_open.sqlite_problem``); SQLite
  rolls the refused transaction back, so nothing is half-written. ``read_only=True`` opens the
  file only to read (commands that only read: ``plan``, ``audit``, ``usage report``) — it works
  in a folder this user may not write (``store.sqlite_open.connect_read_only``); an older file
  that needs upgrading is upgraded once first, which needs write access.
* **Fencing.** Inside ``store.fenced(leases)`` every write first reads the lease rows in
  its ``BEGIN IMMEDIATE`` transaction and refuses (``LeaseLostError``) when one moved
  on — see ``store.common.fence_problem``; the write lock makes check and write atomic.
  One transaction reads them once (and the chain's head once, writing it to ``meta`` once,
  before ``COMMIT``): ``store.txn_memo``.
* **Shared SQL.** What this store has in common with ``store.postgres`` (most reads, closes,
  samples, backups, lease reads) is ``store.sqlstore.SQLStore``; this module is the SQLite
  dialect of it: connection, transactions, the schema and the inserts that differ.
"""

from __future__ import annotations

import dataclasses
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from reconciler.core.clock import parse_timestamp
from reconciler.core.errors import Diagnostic, UserError
from reconciler.core.records import (
    AuditEntry,
    AuditRecord,
    AuditVerification,
    BackupInterval,
    Lease,
    UsageInterval,
)
from reconciler.store import sqlite_backups
from reconciler.store.common import GENESIS_HASH, audit_hash, meta_int, meta_value, utc, verify_chain
from reconciler.store.group_commit import GroupCommit
from reconciler.store.sqlite_open import (
    SQLITE_READONLY,
    connect_read_only,
    connect_writable,
    damaged,
    findings,
    primary_code,
    sqlite_problem,
    use_wal,
)
from reconciler.store.sqlstore import (
    AUDIT_COLUMN_COUNT,
    AUDIT_COLUMNS,
    BACKUP_COLUMNS,
    INTERVAL_COLUMNS,
    INTERVAL_FIELD_COUNT,
    SAMPLE_COLUMNS,
    SQLStore,
)
from reconciler.store.txn_memo import Memos

__all__ = ["GENESIS_HASH", "SCHEMA_VERSION", "SQLiteStore", "audit_hash"]

SCHEMA_VERSION = 3  # 2: usage intervals record the billing terms with the rate; 3: audit authors
T = TypeVar("T")

_SCHEMA = """
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
    hash TEXT NOT NULL,
    author TEXT,
    committer TEXT
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
    price_list TEXT NOT NULL,
    granularity TEXT,
    billing TEXT
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

# The samples of a report window and, per server sampled in it, its last sample at or before
# the window's start (a correlated subquery: one backward seek in the primary key).
# ``{only}``/``{only_p}`` add the deployment filter.
WINDOW_SAMPLES_SQL = (
    "WITH inside AS (SELECT " + SAMPLE_COLUMNS + " FROM usage_sample WHERE at > ? AND at <= ?{only}) "
    "SELECT " + SAMPLE_COLUMNS + " FROM inside "
    "UNION ALL "
    "SELECT " + ", ".join(f"b.{c.strip()}" for c in SAMPLE_COLUMNS.split(",")) + " "
    "FROM (SELECT DISTINCT provider, resource_id FROM inside) AS v "
    "JOIN usage_sample AS b ON b.provider = v.provider AND b.resource_id = v.resource_id AND b.at = ("
    "SELECT p.at FROM usage_sample AS p WHERE p.provider = v.provider AND p.resource_id = v.resource_id "
    "AND p.at <= ?{only_p} ORDER BY p.at DESC LIMIT 1) "
    "ORDER BY at, provider, resource_id"
)


def _ts(moment: datetime) -> str:
    """Fixed-width UTC text, so that comparing the text compares the times."""
    return utc(moment).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse_ts(text: str) -> datetime:
    return parse_timestamp(text, what="stored timestamp")


class _NeedsUpgrade(Exception):
    """A file opened to read lacks what this reconciler's schema adds (``_migrate`` would write)."""


class SQLiteStore(SQLStore):
    """Audit ledger, usage ledger and leases in one SQLite file (see the module docstring)."""

    _GENERATION_SQL = (
        "MAX(CASE WHEN json_valid(detail) AND json_type(detail, '$.generation') = 'integer' "
        "THEN json_extract(detail, '$.generation') END)"
    )
    _WINDOW_SAMPLES_SQL = WINDOW_SAMPLES_SQL
    _INSERT_SAMPLES_SQL = (
        f"INSERT OR IGNORE INTO usage_sample ({SAMPLE_COLUMNS}) VALUES ({', '.join('?' * 10)})"
    )
    _UNREADABLE = (ValueError, TypeError, UserError)

    _conn: sqlite3.Connection

    def __init__(self, path: Path, *, busy_timeout: float = 30.0, read_only: bool = False) -> None:
        self.path = path
        self._label = str(path)
        self._lock = threading.RLock()
        self._depth = 0  # transaction nesting; only touched while holding the lock
        self._owner: int | None = None  # the thread inside the outermost transaction
        self._memo = Memos()  # what the open transaction already read (store.txn_memo)
        self._group = GroupCommit(
            self._lock, self.transaction, lambda: self._owner == threading.get_ident(),
            lambda: self._conn.in_transaction,
        )
        self._closed = False
        self._opening = False
        self.read_only = read_only
        try:
            self._open(busy_timeout)
        except _NeedsUpgrade:  # an older file, opened to read: upgrade it once, then read it
            self._conn.close()
            try:
                SQLiteStore(path, busy_timeout=busy_timeout).close()
            except UserError as exc:
                raise UserError(Diagnostic(
                    str(path), None, "was written by an older reconciler and must be upgraded once, "
                    f"which needs write access: {exc.diagnostics[0].message}",
                )) from None
            try:
                self._open(busy_timeout)
            except _NeedsUpgrade:
                self._conn.close()
                raise UserError(Diagnostic(
                    str(path), None, "cannot be read: even after an upgrade it lacks tables this "
                    "reconciler needs; restore it from a backup",
                )) from None

    def _open(self, busy_timeout: float) -> None:
        path, in_memory = self.path, str(self.path) == ":memory:"
        try:
            if self.read_only:
                self._conn = connect_read_only(path, busy_timeout)
            else:
                self._conn = connect_writable(path, busy_timeout)
        except sqlite3.Error as exc:
            raise sqlite_problem(path, exc) or UserError(
                f"{path}: cannot open the state database ({exc})"
            ) from None
        try:
            self._conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
            if not in_memory and not self.read_only:
                use_wal(self._conn, busy_timeout)
            self._conn.execute("PRAGMA synchronous = FULL")
            self._quick_check()
            self._opening = True  # a read-only file refusing the migration's write: _NeedsUpgrade
            try:
                self._migrate()
            finally:
                self._opening = False
        except sqlite3.DatabaseError as exc:
            self._conn.close()
            raise sqlite_problem(path, exc) or UserError(
                f"{path}: not a usable reconciler state database ({exc}); "
                "point --state-dir/--store at another location or restore the file from a backup"
            ) from None
        except UserError:
            self._conn.close()
            raise

    @contextmanager
    def _guard(self) -> Iterator[None]:
        """What SQLite refuses (damage, a full disk, a read-only file: ``sqlite_problem``) becomes one
        ``UserError`` naming the file; other errors pass unchanged."""
        try:
            yield
        except sqlite3.DatabaseError as exc:
            if self.read_only and self._opening and primary_code(exc) == SQLITE_READONLY:
                raise _NeedsUpgrade from None
            problem = sqlite_problem(self.path, exc)
            if problem is not None:
                raise problem from None
            raise

    def _quick_check(self) -> None:
        """``PRAGMA quick_check`` on opening: every page is read once (a few ms per MB), so a damaged
        file is refused before any command reads, writes or lets an apply touch a cloud."""
        found = findings(self._conn.execute("PRAGMA quick_check(5)").fetchall())
        if found:
            raise damaged(self.path, f"quick check: {'; '.join(found)}")

    def check_integrity(self) -> None:
        """``PRAGMA integrity_check`` (every page, index and constraint); ``damaged`` if it finds any."""
        with self._lock, self._guard():
            found = findings(self._conn.execute("PRAGMA integrity_check").fetchall())
        if found:
            more = f", and {len(found) - 1} more problems" if len(found) > 1 else ""
            raise damaged(self.path, f"integrity check: {found[0]}{more}")

    def _migrate(self) -> None:
        with self.transaction():
            self._conn.execute("CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)")
            version = self._meta("schema_version")
            if version is None:
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        self._conn.execute(statement)
                self._set_meta("schema_version", str(SCHEMA_VERSION))
                self._set_meta("audit_head_seq", "0")
                self._set_meta("audit_head_hash", GENESIS_HASH)
            elif int(version) > SCHEMA_VERSION:
                raise UserError(
                    f"{self.path}: the state database has schema version {version}, newer than this "
                    f"reconciler understands ({SCHEMA_VERSION}); upgrade the reconciler"
                )
            else:
                self._upgrade(int(version), SCHEMA_VERSION)
            sqlite_backups.create_schema(self._conn)  # added after version 1 shipped: IF NOT EXISTS

    # --- transactions ----------------------------------------------------------------------
    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Writes inside land together or not at all; nests (inner levels are savepoints)."""
        with self._lock, self._guard():
            if self._closed:
                raise RuntimeError("the store is closed")
            depth = self._depth
            savepoint = f"sp{depth}"
            begin = "BEGIN" if self.read_only else "BEGIN IMMEDIATE"  # read-only: a write fails, READONLY
            self._conn.execute(begin if depth == 0 else f"SAVEPOINT {savepoint}")
            self._depth += 1
            if depth == 0:
                self._owner = threading.get_ident()
                self._memo.begin()
            else:
                self._memo.savepoint()
            try:
                try:
                    yield
                except BaseException:
                    self._depth -= 1
                    self._undo(depth, savepoint)
                    raise
                self._depth -= 1
                try:
                    if depth == 0:
                        self._write_head()
                        self._conn.execute("COMMIT")
                    else:
                        self._conn.execute(f"RELEASE {savepoint}")
                        self._memo.release()
                except BaseException:
                    self._undo(depth, savepoint)
                    raise
            finally:
                if depth == 0:
                    self._owner = None
                    self._memo.end()  # committed or rolled back: the next transaction reads afresh

    @contextmanager
    def _writing(self) -> Iterator[None]:
        """Around a write method that writes one row after its checks: inside an open transaction
        it runs as it is (one statement lands whole or not at all, no savepoint needed), else in a
        transaction of its own."""
        with self._lock:
            if self._depth:
                with self._guard():
                    yield
            else:
                with self.transaction():
                    yield

    def durably(self, write: Callable[[], T]) -> T:
        """Group commit (``store.group_commit``): the writes of threads waiting at the same
        time share one transaction and one fsync; each returns once it is on disk."""
        return self._group.run(write)

    def _undo(self, depth: int, savepoint: str) -> None:
        if depth:
            self._memo.roll_back_savepoint()
        if not self._conn.in_transaction:  # SQLite already rolled back (disk full, I/O error)
            return
        try:
            if depth == 0:
                self._conn.execute("ROLLBACK")
            else:
                self._conn.execute(f"ROLLBACK TO {savepoint}")
                self._conn.execute(f"RELEASE {savepoint}")
        except sqlite3.DatabaseError as exc:
            if sqlite_problem(self.path, exc) is None:  # a damaged or full disk may refuse it too:
                raise  # what caused it is raised

    # --- dialect ---------------------------------------------------------------------------
    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        with self._lock, self._guard():
            return self._conn.execute(sql, tuple(params)).fetchall()

    def _execute(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Cursor:
        return self._conn.execute(sql, tuple(params))

    def _executemany(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        self._conn.executemany(sql, rows)

    def _to_db(self, moment: datetime) -> str:
        return _ts(moment)

    def _from_db(self, value: Any) -> datetime:
        return _parse_ts(value)

    def _in(self, column: str, values: Sequence[Any]) -> tuple[str, list[Any]]:
        return f"{column} IN ({', '.join('?' * len(values))})", list(values)

    def _fenced_leases(self, scopes: list[str]) -> dict[str, tuple[str, int]]:
        """The write already holds SQLite's write lock (``BEGIN IMMEDIATE``): a plain read."""
        marks = ", ".join("?" * len(scopes))
        rows = self._conn.execute(
            f"SELECT scope, holder, epoch, expires_at FROM lease WHERE scope IN ({marks})", scopes
        ).fetchall()
        leases = (self._lease(row[0], row[1:]) for row in rows)
        return {lease.scope: (lease.holder, lease.epoch) for lease in leases}

    # --- what a transaction reads once (store.txn_memo) -----------------------------------
    def _check_fences(self) -> None:
        memo = self._memo.current
        if memo is not None and memo.fences is self.fences:
            return
        super()._check_fences()
        if memo is not None:
            memo.fences = self.fences

    def _head(self) -> tuple[int, str]:
        """The audit chain's head (last seq and hash): ``meta``'s, or the open transaction's."""
        memo = self._memo.current
        if memo is not None and memo.head is not None:
            return memo.head
        rows = dict(self._conn.execute(
            "SELECT name, value FROM meta WHERE name IN ('audit_head_seq', 'audit_head_hash')"
        ).fetchall())
        head = (
            meta_int(self._label, "audit_head_seq", rows.get("audit_head_seq"), 0),
            meta_value(self._label, "audit_head_hash", rows.get("audit_head_hash")) or GENESIS_HASH,
        )
        if memo is not None:
            memo.head = head
        return head

    def _write_head(self) -> None:
        """Before COMMIT: ``meta`` takes the head the transaction's appends moved."""
        memo = self._memo.current
        if memo is not None and memo.head_moved and memo.head is not None:
            self._conn.execute(
                "INSERT INTO meta (name, value) VALUES ('audit_head_seq', ?), ('audit_head_hash', ?) "
                "ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                (str(memo.head[0]), memo.head[1]),
            )

    # --- audit -----------------------------------------------------------------------------
    def append(self, record: AuditRecord, *, at: datetime) -> AuditEntry:
        at = utc(at)
        with self._writing():
            self._check_fences()
            head_seq, prev_hash = self._head()
            seq = head_seq + 1
            digest = audit_hash(prev_hash, seq, at, record)
            self._conn.execute(
                f"INSERT INTO audit ({AUDIT_COLUMNS}) VALUES ({', '.join('?' * AUDIT_COLUMN_COUNT)})",
                (
                    seq, _ts(at), record.deployment, record.run_id, record.actor, record.action.value,
                    record.outcome.value, record.key, record.provider, record.resource_id, record.token,
                    record.commit, record.detail, record.error, record.intent_seq, prev_hash, digest,
                    record.author, record.committer,
                ),
            )
            memo = self._memo.current
            assert memo is not None  # _writing: inside a transaction
            memo.head, memo.head_moved = (seq, digest), True
        return AuditEntry(seq=seq, at=at, record=record, prev_hash=prev_hash, hash=digest)

    def verify(self) -> AuditVerification:
        with self._lock, self._guard():
            outer = self._depth == 0
            if outer:
                self._conn.execute("BEGIN")  # one consistent snapshot for the whole walk
            try:
                return self._verify_chain()
            finally:
                if outer and self._conn.in_transaction:
                    self._conn.execute("COMMIT")

    def _verify_chain(self) -> AuditVerification:
        head_seq, head_hash = self._head()
        return verify_chain(
            self._conn.execute(f"SELECT {AUDIT_COLUMNS} FROM audit ORDER BY seq"),
            head_seq=head_seq,
            head_hash=head_hash,
            seq_of=lambda row: int(row[0]),
            prev_hash_of=lambda row: str(row[15]),
            parse=self._entry,
        )

    # --- usage -----------------------------------------------------------------------------
    def open_interval(self, interval: UsageInterval) -> UsageInterval:
        with self._writing():
            self._check_fences()
            if interval.end is not None:  # a closed row meets no conflict below: look for the open one
                existing = self._open_row(interval.provider, interval.resource_id)
                if existing is not None:
                    return self._interval(existing)
            size = interval.size
            values = (
                interval.deployment, interval.provider, interval.resource_id, interval.key,
                interval.flavor, size.cpus, size.memory_mb, size.disk_gb, _ts(interval.start),
                None if interval.end is None else _ts(interval.end),
                None if interval.hourly_rate is None else str(interval.hourly_rate),
                interval.currency, interval.price_list,
                None if interval.granularity is None else interval.granularity.value,
                None if interval.billing is None else interval.billing.value,
            )
            # One statement: an open row of the resource already there (``usage_one_open``) wins.
            cursor = self._conn.execute(
                f"INSERT INTO usage_interval ({INTERVAL_COLUMNS}) "
                f"VALUES ({', '.join('?' * (INTERVAL_FIELD_COUNT + 1))}) "
                "ON CONFLICT (provider, resource_id) WHERE end_at IS NULL DO NOTHING",
                (None, *values),
            )
            if not cursor.rowcount:
                return self._interval(self._open_row(interval.provider, interval.resource_id))
        return self._interval((cursor.lastrowid, *values))  # the row as stored, without reading it back

    # --- backup storage (table in store.sqlite_backups) -----------------------------------
    def _insert_backup_interval(self, interval: BackupInterval) -> BackupInterval:
        cursor = self._conn.execute(
            f"INSERT INTO backup_interval ({BACKUP_COLUMNS}) VALUES ({', '.join('?' * 12)})",
            (
                None, interval.deployment, interval.provider, interval.snapshot_id, interval.key,
                interval.policy, interval.size_gb, _ts(interval.start),
                None if interval.end is None else _ts(interval.end),
                None if interval.gb_month_rate is None else str(interval.gb_month_rate),
                interval.currency, interval.price_list,
            ),
        )
        return dataclasses.replace(interval, id=cursor.lastrowid)

    # --- leases ----------------------------------------------------------------------------
    def acquire_lease(self, scope: str, holder: str, *, ttl_seconds: float, now: datetime) -> Lease | None:
        """Take a free or expired lease (epoch + 1), renew our live one (same epoch), else None.

        An expired lease always moves to a new epoch, even for its former holder: whatever
        it did under the old epoch may have raced with someone else by then.
        """
        now = utc(now)
        expires = now + timedelta(seconds=ttl_seconds)
        with self.transaction():
            row = self._conn.execute(
                "SELECT holder, epoch, expires_at FROM lease WHERE scope = ?", (scope,)
            ).fetchone()
            if row is None:
                epoch = 1
            else:
                stored = self._lease(scope, row)
                live = stored.expires_at > now
                if live and stored.holder != holder:
                    return None
                epoch = stored.epoch if live else stored.epoch + 1
            self._conn.execute(
                "INSERT INTO lease (scope, holder, epoch, expires_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (scope) DO UPDATE SET holder = excluded.holder, epoch = excluded.epoch, "
                "expires_at = excluded.expires_at",
                (scope, holder, epoch, _ts(expires)),
            )
            if self._memo.current is not None:  # a lease moved: a fence check reads the rows again
                self._memo.current.fences = None
        return Lease(scope=scope, holder=holder, epoch=epoch, expires_at=expires)
