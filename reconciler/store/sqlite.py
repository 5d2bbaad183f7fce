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
* **Schema version** lives in ``meta``; a file written by a newer reconciler is refused.
* **Fencing.** Inside ``store.fenced(leases)`` every write first reads the lease rows in
  its own ``BEGIN IMMEDIATE`` transaction and refuses (``LeaseLostError``) when one moved
  on — see ``store.common.fence_problem``; the write lock makes check and write atomic.
"""

from __future__ import annotations

import dataclasses
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from reconciler.clock import parse_timestamp
from reconciler.errors import LeaseLostError, UserError
from reconciler.model import MetricSample, Size
from reconciler.store import sqlite_backups
from reconciler.store.base import (
    AuditAction,
    AuditEntry,
    AuditRecord,
    AuditVerification,
    BackupInterval,
    Lease,
    Outcome,
    Store,
    UsageInterval,
)
from reconciler.store.common import GENESIS_HASH, audit_hash, fence_problem, verify_chain

__all__ = ["GENESIS_HASH", "SCHEMA_VERSION", "SQLiteStore", "audit_hash"]

SCHEMA_VERSION = 1
_PAGE = 500  # rows fetched per query when streaming the audit log

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
    hash TEXT NOT NULL
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
    price_list TEXT NOT NULL
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

_AUDIT_COLUMNS = (
    "seq, at, deployment, run_id, actor, action, outcome, key, provider, resource_id, token, "
    "commit_id, detail, error, intent_seq, prev_hash, hash"
)
_INTERVAL_COLUMNS = (
    "id, deployment, provider, resource_id, key, flavor, cpus, memory_mb, disk_gb, start_at, end_at, "
    "hourly_rate, currency, price_list"
)

_SAMPLE_COLUMNS = (
    "deployment, provider, resource_id, key, at, cpu_seconds, memory_mb, net_rx_bytes, net_tx_bytes, disk_gb"
)


# The samples of a report window and, per server sampled in it, its last sample at or before
# the window's start. ``{only}``/``{only_p}`` add the deployment filter.
WINDOW_SAMPLES_SQL = (
    "WITH inside AS (SELECT " + _SAMPLE_COLUMNS + " FROM usage_sample WHERE at > ? AND at <= ?{only}) "
    "SELECT " + _SAMPLE_COLUMNS + " FROM inside "
    "UNION ALL "
    "SELECT " + ", ".join(f"b.{c.strip()}" for c in _SAMPLE_COLUMNS.split(",")) + " "
    "FROM (SELECT DISTINCT provider, resource_id FROM inside) AS v "
    "JOIN usage_sample AS b ON b.provider = v.provider AND b.resource_id = v.resource_id AND b.at = ("
    "SELECT p.at FROM usage_sample AS p WHERE p.provider = v.provider AND p.resource_id = v.resource_id "
    "AND p.at <= ?{only_p} ORDER BY p.at DESC LIMIT 1) "
    "ORDER BY at, provider, resource_id"
)


def _sample(r: Sequence[Any]) -> MetricSample:
    return MetricSample(provider=r[1], resource_id=r[2], key=r[3], at=_parse_ts(r[4]),
                        cpu_seconds=float(r[5]), memory_mb=int(r[6]), net_rx_bytes=int(r[7]),
                        net_tx_bytes=int(r[8]), disk_gb=int(r[9]))


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _ts(moment: datetime) -> str:
    """Fixed-width UTC text, so that comparing the text compares the times."""
    return _utc(moment).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse_ts(text: str) -> datetime:
    return parse_timestamp(text, what="stored timestamp")


def _where(*conditions: tuple[str, Any]) -> tuple[str, list[Any]]:
    """A WHERE clause of the conditions whose parameter is not None."""
    used = [(clause, value) for clause, value in conditions if value is not None]
    if not used:
        return "", []
    return "WHERE " + " AND ".join(clause for clause, _ in used), [value for _, value in used]


class SQLiteStore(Store):
    """Audit ledger, usage ledger and leases in one SQLite file (see the module docstring)."""

    def __init__(self, path: Path, *, busy_timeout: float = 30.0) -> None:
        self.path = path
        self._lock = threading.RLock()
        self._depth = 0  # transaction nesting; only touched while holding the lock
        self._closed = False
        in_memory = str(path) == ":memory:"
        try:
            if not in_memory:
                path.parent.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(
                str(path), timeout=busy_timeout, isolation_level=None, check_same_thread=False
            )
        except (OSError, sqlite3.Error) as exc:
            raise UserError(f"{path}: cannot open the state database ({exc})") from None
        try:
            self._conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
            if not in_memory:
                self._conn.execute("PRAGMA journal_mode = WAL")
            self._conn.execute("PRAGMA synchronous = FULL")
            self._migrate()
        except sqlite3.DatabaseError as exc:
            self._conn.close()
            raise UserError(
                f"{path}: not a usable reconciler state database ({exc}); "
                "point --state-dir/--store at another location or restore the file from a backup"
            ) from None
        except UserError:
            self._conn.close()
            raise

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
            sqlite_backups.create_schema(self._conn)  # added after version 1 shipped: IF NOT EXISTS

    def _meta(self, name: str) -> str | None:
        row = self._conn.execute("SELECT value FROM meta WHERE name = ?", (name,)).fetchone()
        return None if row is None else str(row[0])

    def _set_meta(self, name: str, value: str) -> None:
        self._conn.execute(
            "INSERT INTO meta (name, value) VALUES (?, ?) "
            "ON CONFLICT (name) DO UPDATE SET value = excluded.value",
            (name, value),
        )

    # --- transactions ----------------------------------------------------------------------
    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Writes inside land together or not at all; nests (inner levels are savepoints)."""
        with self._lock:
            if self._closed:
                raise RuntimeError("the store is closed")
            depth = self._depth
            savepoint = f"sp{depth}"
            self._conn.execute("BEGIN IMMEDIATE" if depth == 0 else f"SAVEPOINT {savepoint}")
            self._depth += 1
            try:
                yield
            except BaseException:
                self._depth -= 1
                self._undo(depth, savepoint)
                raise
            self._depth -= 1
            try:
                self._conn.execute("COMMIT" if depth == 0 else f"RELEASE {savepoint}")
            except BaseException:
                self._undo(depth, savepoint)
                raise

    def _undo(self, depth: int, savepoint: str) -> None:
        if not self._conn.in_transaction:  # SQLite already rolled back (disk full, I/O error)
            return
        if depth == 0:
            self._conn.execute("ROLLBACK")
        else:
            self._conn.execute(f"ROLLBACK TO {savepoint}")
            self._conn.execute(f"RELEASE {savepoint}")

    def _check_fences(self) -> None:
        """Refuse a write when a lease it is fenced by moved on (call inside the write's transaction)."""
        fences = self.fences
        if not fences:
            return
        scopes = sorted({lease.scope for lease in fences})
        rows = self._conn.execute(
            f"SELECT scope, holder, epoch FROM lease WHERE scope IN ({', '.join('?' * len(scopes))})", scopes
        ).fetchall()
        problem = fence_problem(fences, {row[0]: (row[1], int(row[2])) for row in rows})
        if problem is not None:
            raise LeaseLostError(problem)

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        with self._lock:
            return self._conn.execute(sql, tuple(params)).fetchall()

    def close(self) -> None:
        with self._lock:
            if not self._closed:
                self._closed = True
                self._conn.close()

    def __enter__(self) -> SQLiteStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- audit -----------------------------------------------------------------------------
    def append(self, record: AuditRecord, *, at: datetime) -> AuditEntry:
        at = _utc(at)
        with self.transaction():
            self._check_fences()
            head_seq = int(self._meta("audit_head_seq") or 0)
            prev_hash = self._meta("audit_head_hash") or GENESIS_HASH
            seq = head_seq + 1
            digest = audit_hash(prev_hash, seq, at, record)
            self._conn.execute(
                f"INSERT INTO audit ({_AUDIT_COLUMNS}) VALUES ({', '.join('?' * 17)})",
                (
                    seq, _ts(at), record.deployment, record.run_id, record.actor, record.action.value,
                    record.outcome.value, record.key, record.provider, record.resource_id, record.token,
                    record.commit, record.detail, record.error, record.intent_seq, prev_hash, digest,
                ),
            )
            self._set_meta("audit_head_seq", str(seq))
            self._set_meta("audit_head_hash", digest)
        return AuditEntry(seq=seq, at=at, record=record, prev_hash=prev_hash, hash=digest)

    def _entry(self, row: Sequence[Any]) -> AuditEntry:
        try:
            record = AuditRecord(
                deployment=row[2], run_id=row[3], actor=row[4], action=AuditAction(row[5]),
                outcome=Outcome(row[6]), key=row[7], provider=row[8], resource_id=row[9], token=row[10],
                commit=row[11], detail=row[12], error=row[13],
                intent_seq=None if row[14] is None else int(row[14]),
            )
            return AuditEntry(seq=int(row[0]), at=_parse_ts(row[1]), record=record, prev_hash=row[15],
                              hash=row[16])
        except (ValueError, TypeError, UserError) as exc:
            raise UserError(f"{self.path}: audit entry {row[0]} is unreadable ({exc})") from None

    def audit_log(self, *, deployment: str | None = None, since_seq: int = 0) -> Iterator[AuditEntry]:
        last = since_seq
        while True:
            where, params = "seq > ?", list[Any]([last])
            if deployment is not None:
                where, params = where + " AND deployment = ?", [last, deployment]
            rows = self._query(
                f"SELECT {_AUDIT_COLUMNS} FROM audit WHERE {where} ORDER BY seq LIMIT {_PAGE}", params
            )
            for row in rows:
                yield self._entry(row)
            if len(rows) < _PAGE:
                return
            last = int(rows[-1][0])

    def verify(self) -> AuditVerification:
        with self._lock:
            outer = self._depth == 0
            if outer:
                self._conn.execute("BEGIN")  # one consistent snapshot for the whole walk
            try:
                return self._verify_chain()
            finally:
                if outer:
                    self._conn.execute("COMMIT")

    def _verify_chain(self) -> AuditVerification:
        return verify_chain(
            self._conn.execute(f"SELECT {_AUDIT_COLUMNS} FROM audit ORDER BY seq"),
            head_seq=int(self._meta("audit_head_seq") or 0),
            head_hash=self._meta("audit_head_hash") or GENESIS_HASH,
            seq_of=lambda row: int(row[0]),
            prev_hash_of=lambda row: str(row[15]),
            parse=self._entry,
        )

    def unresolved_intents(self, deployment: str) -> list[AuditEntry]:
        rows = self._query(
            f"SELECT {_AUDIT_COLUMNS} FROM audit AS a WHERE a.deployment = ? AND a.outcome = ? "
            "AND NOT EXISTS (SELECT 1 FROM audit AS b WHERE b.intent_seq = a.seq AND b.seq > a.seq) "
            "ORDER BY a.seq",
            (deployment, Outcome.INTENT.value),
        )
        return [self._entry(row) for row in rows]

    def recent_audit(
        self,
        deployment: str,
        actions: Iterable[AuditAction],
        *,
        key: str | None = None,
        since: datetime | None = None,
        limit: int = 100,
    ) -> list[AuditEntry]:
        names = sorted({action.value for action in actions})
        if not names:
            return []
        where = f"deployment = ? AND action IN ({', '.join('?' * len(names))})"
        params: list[Any] = [deployment, *names]
        if key is not None:
            where += " AND key = ?"
            params.append(key)
        if since is not None:
            where += " AND at >= ?"
            params.append(_ts(since))
        rows = self._query(
            f"SELECT {_AUDIT_COLUMNS} FROM audit WHERE {where} ORDER BY seq DESC LIMIT ?", [*params, limit]
        )
        return [self._entry(row) for row in rows]

    def max_generation(self, deployment: str, key: str) -> int | None:
        rows = self._query(
            "SELECT MAX(CASE WHEN json_valid(detail) AND json_type(detail, '$.generation') = 'integer' "
            "THEN json_extract(detail, '$.generation') END) "
            "FROM audit WHERE deployment = ? AND key = ? AND outcome = ?",
            (deployment, key, Outcome.INTENT.value),
        )
        value = rows[0][0] if rows else None
        return None if value is None else int(value)

    # --- usage -----------------------------------------------------------------------------
    def _interval(self, row: Sequence[Any]) -> UsageInterval:
        return UsageInterval(
            id=int(row[0]), deployment=row[1], provider=row[2], resource_id=row[3], key=row[4],
            flavor=row[5], size=Size(int(row[6]), int(row[7]), int(row[8])), start=_parse_ts(row[9]),
            end=None if row[10] is None else _parse_ts(row[10]),
            hourly_rate=None if row[11] is None else Decimal(row[11]), currency=row[12], price_list=row[13],
        )

    def _open_row(self, provider: str, resource_id: str) -> list[Any]:
        return self._query(
            f"SELECT {_INTERVAL_COLUMNS} FROM usage_interval "
            "WHERE provider = ? AND resource_id = ? AND end_at IS NULL",
            (provider, resource_id),
        )

    def open_interval(self, interval: UsageInterval) -> UsageInterval:
        with self.transaction():
            self._check_fences()
            existing = self._open_row(interval.provider, interval.resource_id)
            if existing:
                return self._interval(existing[0])
            size = interval.size
            cursor = self._conn.execute(
                f"INSERT INTO usage_interval ({_INTERVAL_COLUMNS}) VALUES ({', '.join('?' * 14)})",
                (
                    None, interval.deployment, interval.provider, interval.resource_id, interval.key,
                    interval.flavor, size.cpus, size.memory_mb, size.disk_gb, _ts(interval.start),
                    None if interval.end is None else _ts(interval.end),
                    None if interval.hourly_rate is None else str(interval.hourly_rate),
                    interval.currency, interval.price_list,
                ),
            )
            new_id = cursor.lastrowid
        rows = self._query(f"SELECT {_INTERVAL_COLUMNS} FROM usage_interval WHERE id = ?", (new_id,))
        return self._interval(rows[0])

    def close_interval(self, provider: str, resource_id: str, *, end: datetime) -> UsageInterval | None:
        with self.transaction():
            self._check_fences()
            rows = self._open_row(provider, resource_id)
            if not rows:
                return None
            interval = self._interval(rows[0])
            end = max(_utc(end), interval.start)  # a clock step backwards never makes a negative span
            self._conn.execute("UPDATE usage_interval SET end_at = ? WHERE id = ?", (_ts(end), interval.id))
        return dataclasses.replace(interval, end=end)

    def open_intervals(self, deployment: str) -> list[UsageInterval]:
        rows = self._query(
            f"SELECT {_INTERVAL_COLUMNS} FROM usage_interval WHERE deployment = ? AND end_at IS NULL "
            "ORDER BY start_at, id",
            (deployment,),
        )
        return [self._interval(row) for row in rows]

    def intervals(
        self, *, start: datetime | None = None, end: datetime | None = None, deployment: str | None = None
    ) -> list[UsageInterval]:
        where, params = _where(
            ("start_at < ?", None if end is None else _ts(end)),
            ("(end_at IS NULL OR end_at > ?)", None if start is None else _ts(start)),
            ("deployment = ?", deployment),
        )
        rows = self._query(f"SELECT {_INTERVAL_COLUMNS} FROM usage_interval {where} ORDER BY start_at, id",
                           params)
        return [self._interval(row) for row in rows]

    def add_samples(self, deployment: str, samples: list[MetricSample]) -> None:
        """Store samples; a second sample for the same resource and instant is ignored."""
        with self.transaction():
            self._check_fences()
            self._conn.executemany(
                f"INSERT OR IGNORE INTO usage_sample ({_SAMPLE_COLUMNS}) VALUES ({', '.join('?' * 10)})",
                [
                    (deployment, s.provider, s.resource_id, s.key, _ts(s.at), s.cpu_seconds, s.memory_mb,
                     s.net_rx_bytes, s.net_tx_bytes, s.disk_gb)
                    for s in samples
                ],
            )

    def samples(
        self, *, start: datetime | None = None, end: datetime | None = None, deployment: str | None = None
    ) -> list[MetricSample]:
        """Samples taken in [start, end), in time order."""
        where, params = _where(
            ("at >= ?", None if start is None else _ts(start)),
            ("at < ?", None if end is None else _ts(end)),
            ("deployment = ?", deployment),
        )
        rows = self._query(
            f"SELECT {_SAMPLE_COLUMNS} FROM usage_sample {where} ORDER BY at, provider, resource_id", params
        )
        return [_sample(r) for r in rows]

    def window_samples(
        self, *, start: datetime, end: datetime, deployment: str | None = None
    ) -> list[MetricSample]:
        """Samples in (start, end] plus each such server's baseline (see ``Store.window_samples``).

        The window is read through ``usage_sample_at``; each baseline is one backward seek
        in the primary key ``(provider, resource_id, at)``.
        """
        only = "" if deployment is None else " AND deployment = ?"
        only_p = "" if deployment is None else " AND p.deployment = ?"
        window: list[Any] = [_ts(start), _ts(end)] + ([] if deployment is None else [deployment])
        before: list[Any] = [_ts(start)] + ([] if deployment is None else [deployment])
        rows = self._query(WINDOW_SAMPLES_SQL.format(only=only, only_p=only_p), [*window, *before])
        return [_sample(r) for r in rows]

    # --- backup storage (SQL in store.sqlite_backups) ---------------------------------------
    def open_backup_interval(self, interval: BackupInterval) -> BackupInterval:
        with self.transaction():
            self._check_fences()
            return sqlite_backups.open_interval(self._conn, interval)

    def close_backup_interval(
        self, provider: str, snapshot_id: str, *, end: datetime
    ) -> BackupInterval | None:
        with self.transaction():
            self._check_fences()
            return sqlite_backups.close_interval(self._conn, provider, snapshot_id, end)

    def backup_intervals(
        self, *, start: datetime | None = None, end: datetime | None = None, deployment: str | None = None
    ) -> list[BackupInterval]:
        with self._lock:
            return sqlite_backups.select_intervals(self._conn, start, end, deployment)

    # --- leases ----------------------------------------------------------------------------
    def acquire_lease(self, scope: str, holder: str, *, ttl_seconds: float, now: datetime) -> Lease | None:
        """Take a free or expired lease (epoch + 1), renew our live one (same epoch), else None.

        An expired lease always moves to a new epoch, even for its former holder: whatever
        it did under the old epoch may have raced with someone else by then.
        """
        now = _utc(now)
        expires = now + timedelta(seconds=ttl_seconds)
        with self.transaction():
            row = self._conn.execute(
                "SELECT holder, epoch, expires_at FROM lease WHERE scope = ?", (scope,)
            ).fetchone()
            if row is None:
                epoch = 1
            else:
                live = _parse_ts(row[2]) > now
                if live and row[0] != holder:
                    return None
                epoch = int(row[1]) if live else int(row[1]) + 1
            self._conn.execute(
                "INSERT INTO lease (scope, holder, epoch, expires_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (scope) DO UPDATE SET holder = excluded.holder, epoch = excluded.epoch, "
                "expires_at = excluded.expires_at",
                (scope, holder, epoch, _ts(expires)),
            )
        return Lease(scope=scope, holder=holder, epoch=epoch, expires_at=expires)

    def current_lease(self, scope: str) -> Lease | None:
        with self._lock:
            row = self._conn.execute(
                "SELECT holder, epoch, expires_at FROM lease WHERE scope = ?", (scope,)
            ).fetchone()
        if row is None:
            return None
        return Lease(scope=scope, holder=row[0], epoch=int(row[1]), expires_at=_parse_ts(row[2]))

    def release_lease(self, lease: Lease) -> None:
        """Expire our lease now; the row stays so the next holder's epoch keeps increasing."""
        with self.transaction():
            self._conn.execute(
                "UPDATE lease SET expires_at = ? WHERE scope = ? AND holder = ? AND epoch = ?",
                (_ts(datetime(1970, 1, 1, tzinfo=UTC)), lease.scope, lease.holder, lease.epoch),
            )
