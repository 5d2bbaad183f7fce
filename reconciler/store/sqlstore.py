"""store.sqlstore: the SQL both stores share — ``SQLStore``, with SQLite and PostgreSQL as dialects.

``SQLiteStore`` and ``PostgresStore`` keep the same tables and column names, and most of
their reads and several of their writes are the same SQL but for a few dialect points.
That SQL lives here once, written with ``?`` placeholders; a backend supplies:

* **Running SQL.** ``_query`` (takes the store's lock, fetches every row) and ``_execute`` /
  ``_executemany`` (on the connection, inside the caller's ``transaction()``).
  PostgresStore turns ``?`` into psycopg's ``%s``, so SQL written here holds no literal
  ``?`` or ``%`` (a backend's own statement, such as its ``WINDOW_SAMPLES_SQL``, may use
  ``%s`` already). A backend's own ``self._conn.execute`` calls use its driver's style.
* **Timestamps.** ``_to_db`` / ``_from_db``: fixed-width UTC text in SQLite,
  ``TIMESTAMPTZ`` (aware datetimes) in PostgreSQL.
* **List membership.** ``_in``: ``col IN (?, ?, …)`` or ``col = ANY(?)``.
* **Row locks.** ``_FOR_UPDATE`` on the read of a close (``read, then UPDATE``):
  PostgreSQL locks the row; SQLite's ``BEGIN IMMEDIATE`` already holds the write lock.
* **Statements whose SQL differs**: ``_GENERATION_SQL`` (``max_generation``),
  ``_WINDOW_SAMPLES_SQL``, ``_INSERT_SAMPLES_SQL`` and ``_LEASE_FILTER`` (``current_lease``).

Each backend keeps what really differs: connecting, ``transaction()``, the fencing
query (``_fenced_leases``), ``append``'s chain-head lock, ``verify``'s snapshot, the
schema, the inserts that hand back ids (``open_interval``, ``_insert_backup_interval``)
and ``acquire_lease``.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import threading
from abc import abstractmethod
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, ClassVar, Protocol, Self, TypeVar

from reconciler.core.errors import Diagnostic, LeaseLostError, UserError
from reconciler.core.model import BillingMode, Granularity, MetricSample, Size
from reconciler.core.records import (
    AuditAction,
    AuditEntry,
    AuditQuery,
    AuditRecord,
    BackupInterval,
    Lease,
    Outcome,
    UsageInterval,
)
from reconciler.store.audit_query import audit_filter
from reconciler.store.base import Store
from reconciler.store.common import fence_problem, meta_value, utc

AUDIT_COLUMNS = (
    "seq, at, deployment, run_id, actor, action, outcome, key, provider, resource_id, token, "
    "commit_id, detail, error, intent_seq, prev_hash, hash, author, committer"
)
AUDIT_COLUMN_COUNT = AUDIT_COLUMNS.count(",") + 1
INTERVAL_FIELDS = (
    "deployment, provider, resource_id, key, flavor, cpus, memory_mb, disk_gb, start_at, end_at, "
    "hourly_rate, currency, price_list, granularity, billing"
)
INTERVAL_FIELD_COUNT = INTERVAL_FIELDS.count(",") + 1
INTERVAL_COLUMNS = "id, " + INTERVAL_FIELDS
SAMPLE_COLUMNS = (
    "deployment, provider, resource_id, key, at, cpu_seconds, memory_mb, net_rx_bytes, net_tx_bytes, disk_gb"
)
BACKUP_FIELDS = (
    "deployment, provider, snapshot_id, key, policy, size_gb, start_at, end_at, gb_month_rate, currency, "
    "price_list"
)
BACKUP_COLUMNS = "id, " + BACKUP_FIELDS

# Schema upgrades both stores run in order, in the transaction that opens the store:
# ``MIGRATIONS[n]`` takes a database of schema version n to n + 1.
MIGRATIONS: dict[int, tuple[str, ...]] = {
    # 2: the billing terms of the PriceList recorded with each usage interval's rate. Intervals
    # written under version 1 keep NULL there (terms not recorded): billed by the second, as
    # they always were, and reports say so.
    1: (
        "ALTER TABLE usage_interval ADD COLUMN granularity TEXT",
        "ALTER TABLE usage_interval ADD COLUMN billing TEXT",
    ),
    # 3: every audit entry records the author and committer of the change beside its operator
    # (``actor``). Entries written under version 2 keep NULL there: author unknown.
    2: (
        "ALTER TABLE audit ADD COLUMN author TEXT",
        "ALTER TABLE audit ADD COLUMN committer TEXT",
    ),
}

PAGE = 500  # rows fetched per query when streaming the audit log
RELEASED = datetime(1970, 1, 1, tzinfo=UTC)  # a released lease's expiry


class Cursor(Protocol):
    def fetchone(self) -> Any: ...


class Connection(Protocol):
    def close(self) -> None: ...


# What building a record from a garbled row raises: a text where a number belongs, a bad
# Decimal (InvalidOperation), a timestamp that is not one (UserError), a value of another type.
UNREADABLE_ROW = (ValueError, TypeError, AttributeError, ArithmeticError, UserError)
R = TypeVar("R")


def damaged_row(label: str, table: str, ident: object, exc: BaseException | str) -> UserError:
    """The one error for a stored row that cannot be read back: which store, table and row, and why."""
    why = exc if isinstance(exc, str) else str(exc) or type(exc).__name__
    return UserError(Diagnostic(
        label, None,
        f"the state database is damaged: {table} row {ident} cannot be read ({why}); restore the "
        "state database from a backup (do not edit its tables by hand)",
    ))


def row_reader(
    table: str, ident: Callable[[Sequence[Any]], object], check: Callable[[R], str | None] | None = None
) -> Callable[[Callable[[Any, Sequence[Any]], R]], Callable[[Any, Sequence[Any]], R]]:
    """Wrap a method that builds a record from a ``table`` row: garbage in the row (or a record
    ``check`` finds wrong, like a rate that is not a finite number) is ``damaged_row``'s error."""

    def wrap(build: Callable[[Any, Sequence[Any]], R]) -> Callable[[Any, Sequence[Any]], R]:
        @functools.wraps(build)
        def read(self: Any, row: Sequence[Any]) -> R:
            try:
                record = build(self, row)
            except UNREADABLE_ROW as exc:
                raise damaged_row(self._label, table, _ident(ident, row), exc) from None
            problem = check(record) if check is not None else None
            if problem is not None:
                raise damaged_row(self._label, table, _ident(ident, row), problem)
            return record

        return read

    return wrap


def _ident(ident: Callable[[Sequence[Any]], object], row: Sequence[Any]) -> str:
    try:
        shown = repr(ident(row))
    except Exception:  # the row is too broken even to name: say so
        return "(unnamed)"
    return shown if len(shown) <= 60 else shown[:60] + "…"


def _finite(*values: object) -> bool:
    def finite(value: object) -> bool:
        if value is None:
            return True
        return value.is_finite() if isinstance(value, Decimal) else math.isfinite(float(str(value)))

    return all(finite(value) for value in values)


def _interval_problem(interval: UsageInterval) -> str | None:
    return None if _finite(interval.hourly_rate) else f"hourly rate {interval.hourly_rate} is not a number"


def _sample_problem(sample: MetricSample) -> str | None:
    return None if _finite(sample.cpu_seconds) else f"cpu_seconds {sample.cpu_seconds} is not a number"


def _backup_problem(interval: BackupInterval) -> str | None:
    if _finite(interval.size_gb, interval.gb_month_rate):
        return None
    return f"size {interval.size_gb} GB or rate {interval.gb_month_rate} is not a number"


def where(*conditions: tuple[str, Any]) -> tuple[str, list[Any]]:
    """A WHERE clause of the conditions whose parameter is not None."""
    used = [(clause, value) for clause, value in conditions if value is not None]
    if not used:
        return "", []
    return "WHERE " + " AND ".join(clause for clause, _ in used), [value for _, value in used]


_Term = TypeVar("_Term", Granularity, BillingMode)


def _term(kind: type[_Term], value: Any) -> _Term | None:
    """A billing term read back; None: not recorded (a value it cannot be is a damaged row)."""
    return None if value is None else kind(value)


class SQLStore(Store):
    """The ledgers' shared SQL; a subclass is one dialect (see the module docstring)."""

    _GENERATION_SQL: ClassVar[str]  # the SELECT expression of max_generation over intents
    _WINDOW_SAMPLES_SQL: ClassVar[str]  # format fields {only}/{only_p} take the deployment filter
    _INSERT_SAMPLES_SQL: ClassVar[str]  # one sample row; a duplicate (provider, resource_id, at) is ignored
    _FOR_UPDATE: ClassVar[str] = ""
    _LEASE_FILTER: ClassVar[str] = ""  # rows current_lease does not report
    _UNREADABLE: ClassVar[tuple[type[Exception], ...]]  # what a corrupt audit row raises in _entry

    _label: str  # names the store in error messages
    _lock: threading.RLock
    _depth: int  # transaction nesting; only touched while holding the lock
    _closed: bool
    _conn: Connection

    # --- dialect ---------------------------------------------------------------------------
    @abstractmethod
    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        """Run ``?``-style SQL under the store's lock and return every row."""

    @abstractmethod
    def _execute(self, sql: str, params: Sequence[Any] = ()) -> Cursor:
        """Run ``?``-style SQL on the connection (inside the caller's transaction)."""

    @abstractmethod
    def _executemany(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        """Run ``?``-style SQL once per row (inside the caller's transaction)."""

    @abstractmethod
    def _to_db(self, moment: datetime) -> Any:
        """A timestamp as the database stores and compares it."""

    @abstractmethod
    def _from_db(self, value: Any) -> datetime:
        """A stored timestamp as an aware UTC datetime."""

    @abstractmethod
    def _in(self, column: str, values: Sequence[Any]) -> tuple[str, list[Any]]:
        """``column`` is one of ``values`` (non-empty): the clause and its parameters."""

    @abstractmethod
    def _fenced_leases(self, scopes: list[str]) -> dict[str, tuple[str, int]]:
        """scope → (holder, epoch) of the stored lease rows, read with the write's locks."""

    @abstractmethod
    def _insert_backup_interval(self, interval: BackupInterval) -> BackupInterval:
        """Insert a backup's open interval, none being open (inside a write transaction)."""

    # --- connection ------------------------------------------------------------------------
    def _check_fences(self) -> None:
        """Refuse a write when a lease it is fenced by moved on (call inside the write's transaction)."""
        fences = self.fences
        if not fences:
            return
        problem = fence_problem(fences, self._fenced_leases(sorted({lease.scope for lease in fences})))
        if problem is not None:
            raise LeaseLostError(problem)

    def _meta(self, name: str) -> str | None:
        """A ``meta`` value, checked (``store.common.meta_value``: damaged state is a UserError)."""
        row = self._execute("SELECT value FROM meta WHERE name = ?", (name,)).fetchone()
        return meta_value(self._label, name, None if row is None else row[0])

    def _upgrade(self, version: int, latest: int) -> None:
        """Run the ``MIGRATIONS`` from ``version`` up to ``latest`` (inside the caller's transaction)."""
        for step in range(version, latest):
            for statement in MIGRATIONS[step]:
                self._execute(statement)
        if version < latest:
            self._set_meta("schema_version", str(latest))

    def _set_meta(self, name: str, value: str) -> None:
        self._execute(
            "INSERT INTO meta (name, value) VALUES (?, ?) "
            "ON CONFLICT (name) DO UPDATE SET value = excluded.value",
            (name, value),
        )

    def close(self) -> None:
        with self._lock:
            if not self._closed:
                self._closed = True
                self._conn.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- audit -----------------------------------------------------------------------------
    def _entry(self, row: Sequence[Any]) -> AuditEntry:
        try:
            record = AuditRecord(
                deployment=row[2], run_id=row[3], actor=row[4], action=AuditAction(row[5]),
                outcome=Outcome(row[6]), key=row[7], provider=row[8], resource_id=row[9], token=row[10],
                commit=row[11], detail=row[12], error=row[13],
                intent_seq=None if row[14] is None else int(row[14]),
                author=None if row[17] is None else str(row[17]),
                committer=None if row[18] is None else str(row[18]),
            )
            return AuditEntry(seq=int(row[0]), at=self._from_db(row[1]), record=record, prev_hash=row[15],
                              hash=row[16])
        except self._UNREADABLE as exc:
            raise UserError(f"{self._label}: audit entry {row[0]} is unreadable ({exc})") from None

    def audit_log(self, *, deployment: str | None = None, since_seq: int = 0) -> Iterator[AuditEntry]:
        last = since_seq
        while True:
            clause, params = "seq > ?", list[Any]([last])
            if deployment is not None:
                clause, params = clause + " AND deployment = ?", [last, deployment]
            rows = self._query(
                f"SELECT {AUDIT_COLUMNS} FROM audit WHERE {clause} ORDER BY seq LIMIT {PAGE}", params
            )
            for row in rows:
                yield self._entry(row)
            if len(rows) < PAGE:
                return
            last = int(rows[-1][0])

    def audit_search(self, query: AuditQuery) -> Iterator[AuditEntry]:
        clause, params = audit_filter(query, self._to_db, self._in)
        if query.limit is not None:  # the newest N, handed back oldest first
            sql = f"SELECT {AUDIT_COLUMNS} FROM audit {clause} ORDER BY seq DESC LIMIT ?"
            rows = self._query(sql, [*params, query.limit])
            yield from (self._entry(row) for row in reversed(rows))
            return
        last = 0
        joiner = " AND " if clause else "WHERE "
        while True:
            rows = self._query(
                f"SELECT {AUDIT_COLUMNS} FROM audit {clause}{joiner}seq > ? ORDER BY seq LIMIT {PAGE}",
                [*params, last],
            )
            yield from (self._entry(row) for row in rows)
            if len(rows) < PAGE:
                return
            last = int(rows[-1][0])

    def unresolved_intents(self, deployment: str) -> list[AuditEntry]:
        rows = self._query(
            f"SELECT {AUDIT_COLUMNS} FROM audit AS a WHERE a.deployment = ? AND a.outcome = ? "
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
        member, member_params = self._in("action", names)
        clause = f"deployment = ? AND {member}"
        params: list[Any] = [deployment, *member_params]
        if key is not None:
            clause += " AND key = ?"
            params.append(key)
        if since is not None:
            clause += " AND at >= ?"
            params.append(self._to_db(since))
        rows = self._query(
            f"SELECT {AUDIT_COLUMNS} FROM audit WHERE {clause} ORDER BY seq DESC LIMIT ?", [*params, limit]
        )
        return [self._entry(row) for row in rows]

    def max_generation(self, deployment: str, key: str) -> int | None:
        rows = self._query(
            f"SELECT {self._GENERATION_SQL} FROM audit WHERE deployment = ? AND key = ? AND outcome = ?",
            (deployment, key, Outcome.INTENT.value),
        )
        value = rows[0][0] if rows else None
        return None if value is None else int(value)

    # --- usage -----------------------------------------------------------------------------
    @row_reader("usage_interval", lambda row: row[0], _interval_problem)
    def _interval(self, row: Sequence[Any]) -> UsageInterval:
        return UsageInterval(
            id=int(row[0]), deployment=row[1], provider=row[2], resource_id=row[3], key=row[4],
            flavor=row[5], size=Size(int(row[6]), int(row[7]), int(row[8])), start=self._from_db(row[9]),
            end=None if row[10] is None else self._from_db(row[10]),
            hourly_rate=None if row[11] is None else Decimal(row[11]), currency=row[12], price_list=row[13],
            granularity=_term(Granularity, row[14]),
            billing=_term(BillingMode, row[15]),
        )

    def _open_row(self, provider: str, resource_id: str, *, lock: bool = False) -> Any:
        """The open interval's row of a resource, or None (inside a transaction)."""
        return self._execute(
            f"SELECT {INTERVAL_COLUMNS} FROM usage_interval "
            "WHERE provider = ? AND resource_id = ? AND end_at IS NULL" + (self._FOR_UPDATE if lock else ""),
            (provider, resource_id),
        ).fetchone()

    def close_interval(self, provider: str, resource_id: str, *, end: datetime) -> UsageInterval | None:
        with self.transaction():
            self._check_fences()
            row = self._open_row(provider, resource_id, lock=True)
            if row is None:
                return None
            interval = self._interval(row)
            end = max(utc(end), interval.start)  # a clock step backwards never makes a negative span
            self._execute(
                "UPDATE usage_interval SET end_at = ? WHERE id = ?", (self._to_db(end), interval.id)
            )
        return dataclasses.replace(interval, end=end)

    def open_intervals(self, deployment: str) -> list[UsageInterval]:
        rows = self._query(
            f"SELECT {INTERVAL_COLUMNS} FROM usage_interval WHERE deployment = ? AND end_at IS NULL "
            "ORDER BY start_at, id",
            (deployment,),
        )
        return [self._interval(row) for row in rows]

    def intervals(
        self, *, start: datetime | None = None, end: datetime | None = None, deployment: str | None = None
    ) -> list[UsageInterval]:
        clause, params = where(
            ("start_at < ?", None if end is None else self._to_db(end)),
            ("(end_at IS NULL OR end_at > ?)", None if start is None else self._to_db(start)),
            ("deployment = ?", deployment),
        )
        rows = self._query(f"SELECT {INTERVAL_COLUMNS} FROM usage_interval {clause} ORDER BY start_at, id",
                           params)
        return [self._interval(row) for row in rows]

    def closed_intervals(self, *, by: datetime) -> int:
        rows = self._query("SELECT COUNT(*) FROM usage_interval WHERE end_at <= ?", (self._to_db(by),))
        return int(rows[0][0])

    @row_reader("usage_sample", lambda r: f"{r[1]}/{r[2]} at {r[4]}", _sample_problem)
    def _sample(self, r: Sequence[Any]) -> MetricSample:
        return MetricSample(provider=r[1], resource_id=r[2], key=r[3], at=self._from_db(r[4]),
                            cpu_seconds=float(r[5]), memory_mb=int(r[6]), net_rx_bytes=int(r[7]),
                            net_tx_bytes=int(r[8]), disk_gb=int(r[9]))

    def add_samples(self, deployment: str, samples: list[MetricSample]) -> None:
        """Store samples; a second sample for the same resource and instant is ignored."""
        with self.transaction():
            self._check_fences()
            if not samples:
                return
            self._executemany(
                self._INSERT_SAMPLES_SQL,
                [
                    (deployment, s.provider, s.resource_id, s.key, self._to_db(s.at), s.cpu_seconds,
                     s.memory_mb, s.net_rx_bytes, s.net_tx_bytes, s.disk_gb)
                    for s in samples
                ],
            )

    def samples(
        self, *, start: datetime | None = None, end: datetime | None = None, deployment: str | None = None
    ) -> list[MetricSample]:
        """Samples taken in [start, end), in time order."""
        clause, params = where(
            ("at >= ?", None if start is None else self._to_db(start)),
            ("at < ?", None if end is None else self._to_db(end)),
            ("deployment = ?", deployment),
        )
        rows = self._query(
            f"SELECT {SAMPLE_COLUMNS} FROM usage_sample {clause} ORDER BY at, provider, resource_id", params
        )
        return [self._sample(r) for r in rows]

    def window_samples(
        self, *, start: datetime, end: datetime, deployment: str | None = None
    ) -> list[MetricSample]:
        """Samples in (start, end] plus each such server's baseline (see ``Store.window_samples``).

        The window is read through ``usage_sample_at``; each baseline is one backward seek
        in the primary key ``(provider, resource_id, at)`` (see each ``WINDOW_SAMPLES_SQL``).
        """
        only = "" if deployment is None else " AND deployment = ?"
        only_p = "" if deployment is None else " AND p.deployment = ?"
        only_params: list[Any] = [] if deployment is None else [deployment]
        window: list[Any] = [self._to_db(start), self._to_db(end), *only_params]
        before: list[Any] = [self._to_db(start), *only_params]
        rows = self._query(self._WINDOW_SAMPLES_SQL.format(only=only, only_p=only_p), [*window, *before])
        return [self._sample(r) for r in rows]

    # --- backup storage --------------------------------------------------------------------
    @row_reader("backup_interval", lambda row: row[0], _backup_problem)
    def _backup(self, row: Sequence[Any]) -> BackupInterval:
        return BackupInterval(
            id=int(row[0]), deployment=row[1], provider=row[2], snapshot_id=row[3], key=row[4],
            policy=row[5], size_gb=float(row[6]), start=self._from_db(row[7]),
            end=None if row[8] is None else self._from_db(row[8]),
            gb_month_rate=None if row[9] is None else Decimal(row[9]), currency=row[10], price_list=row[11],
        )

    def _open_backup_row(self, provider: str, snapshot_id: str, *, lock: bool = False) -> Any:
        """The open interval's row of a backup, or None (inside a transaction)."""
        return self._execute(
            f"SELECT {BACKUP_COLUMNS} FROM backup_interval "
            "WHERE provider = ? AND snapshot_id = ? AND end_at IS NULL" + (self._FOR_UPDATE if lock else ""),
            (provider, snapshot_id),
        ).fetchone()

    def open_backup_interval(self, interval: BackupInterval) -> BackupInterval:
        with self.transaction():
            self._check_fences()
            existing = self._open_backup_row(interval.provider, interval.snapshot_id)
            if existing is not None:
                return self._backup(existing)
            return self._insert_backup_interval(interval)

    def close_backup_interval(
        self, provider: str, snapshot_id: str, *, end: datetime
    ) -> BackupInterval | None:
        with self.transaction():
            self._check_fences()
            row = self._open_backup_row(provider, snapshot_id, lock=True)
            if row is None:
                return None
            interval = self._backup(row)
            end = max(utc(end), interval.start)  # a clock step backwards never makes a negative span
            self._execute(
                "UPDATE backup_interval SET end_at = ? WHERE id = ?", (self._to_db(end), interval.id)
            )
        return dataclasses.replace(interval, end=end)

    def backup_intervals(
        self, *, start: datetime | None = None, end: datetime | None = None, deployment: str | None = None
    ) -> list[BackupInterval]:
        """Intervals overlapping [start, end), oldest first."""
        clause, params = where(
            ("start_at < ?", None if end is None else self._to_db(end)),
            ("(end_at IS NULL OR end_at > ?)", None if start is None else self._to_db(start)),
            ("deployment = ?", deployment),
        )
        rows = self._query(f"SELECT {BACKUP_COLUMNS} FROM backup_interval {clause} ORDER BY start_at, id",
                           params)
        return [self._backup(row) for row in rows]

    # --- leases ----------------------------------------------------------------------------
    def current_lease(self, scope: str) -> Lease | None:
        rows = self._query(
            "SELECT holder, epoch, expires_at FROM lease WHERE scope = ?" + self._LEASE_FILTER, (scope,)
        )
        if not rows:
            return None
        return self._lease(scope, rows[0])

    def _lease(self, scope: str, row: Sequence[Any]) -> Lease:
        """A lease row (holder, epoch, expires_at) as a ``Lease``; garbage is ``damaged_row``'s error."""
        try:
            holder, epoch, expires_at = row
            if not isinstance(holder, str) or isinstance(epoch, bool):
                raise TypeError(f"holder {holder!r}, epoch {epoch!r}")
            return Lease(scope=scope, holder=holder, epoch=int(epoch), expires_at=self._from_db(expires_at))
        except UNREADABLE_ROW as exc:
            raise damaged_row(self._label, "lease", repr(scope), exc) from None

    def release_lease(self, lease: Lease) -> None:
        """Expire our lease now; the row stays so the next holder's epoch keeps increasing."""
        with self.transaction():
            self._execute(
                "UPDATE lease SET expires_at = ? WHERE scope = ? AND holder = ? AND epoch = ?",
                (self._to_db(RELEASED), lease.scope, lease.holder, lease.epoch),
            )
