"""store.postgres: the shared Store — PostgreSQL through psycopg 3, for several reconcilers at once.

Selected with ``--store postgresql://user:password@host:port/dbname`` when two or more
reconcilers (daemon replicas, CI runners) share ledgers and leases. Same tables, same
semantics and the same hash chain as ``store.sqlite``; what differs is how concurrent
writers on several hosts are kept in step:

* **One chain.** Every ``append`` locks the chain-head rows of ``meta``
  (``SELECT … FOR UPDATE``) before computing the next seq and hash, so appends from any
  number of processes and hosts serialise into one valid chain.
* **Fencing.** Inside ``store.fenced(leases)`` each write first reads the lease rows
  ``FOR SHARE`` in its own transaction and refuses (``LeaseLostError``) when one moved to
  another holder or epoch. A takeover (``UPDATE lease``) therefore either commits before
  the write's check — and the write is refused — or waits until the write has committed:
  no write of an old epoch can land after a new holder took over.
* **Leases.** ``acquire_lease`` inserts a placeholder row if the scope is new, then locks
  the row ``FOR UPDATE``, so two acquirers of the same scope never both win. Expiry is
  judged by the ``now`` the caller passes (the engine passes its wall clock).
* **Schema** is created on first use under an advisory lock (so two first users do not
  race) and versioned in ``meta``; a database written by a newer reconciler is refused.
  Tables go in the first schema of the connection's ``search_path``: give the reconciler
  its own database, or a schema with ``?options=-csearch_path%3Dreconciler``.
* **Connections.** One connection per store object, in autocommit mode, guarded by a
  re-entrant lock (threads share it as they share the SQLite connection); ``transaction()``
  is ``BEGIN`` … ``COMMIT`` at the outermost level and savepoints inside. The session sets
  ``idle_in_transaction_session_timeout`` so that a replica paused in the middle of a
  transaction cannot hold the chain head for ever, and ``lock_timeout`` so waiters give up
  with an error instead of hanging. A broken connection surfaces as a ``UserError`` naming
  host, port and database (never the password) and is reopened on the next call.
* **Derived column.** ``audit.generation`` holds the integer ``"generation"`` of an
  intent's JSON detail (``store.common.detail_generation``) so that ``max_generation`` is
  one indexed query; it is not part of the hash.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import psycopg
from psycopg import IsolationLevel
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from reconciler.errors import LeaseLostError, UserError
from reconciler.model import MetricSample, Size
from reconciler.store import postgres_backups
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
from reconciler.store.common import (
    GENESIS_HASH,
    audit_hash,
    detail_generation,
    fence_problem,
    utc,
    verify_chain,
)
from reconciler.store.postgres_schema import (
    AUDIT_COLUMNS,
    INTERVAL_COLUMNS,
    INTERVAL_FIELDS,
    SAMPLE_COLUMNS,
    SCHEMA_VERSION,
    TABLES,
)

_PAGE = 500  # rows fetched per query when streaming the audit log
_MIGRATION_LOCK = 0x5245434F4E  # pg_advisory_xact_lock key held while creating the schema
_RELEASED = datetime(1970, 1, 1, tzinfo=UTC)
_SESSION = (
    "SET TIME ZONE 'UTC'",
    "SET lock_timeout = '30s'",
    "SET idle_in_transaction_session_timeout = '10s'",
)

def _placeholders(n: int) -> str:
    return ", ".join(["%s"] * n)


def describe(url: str) -> str:
    """``host:port/dbname`` of a PostgreSQL URL — what errors and logs show (never the password)."""
    try:
        info = conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return "(an unparsable URL)"
    host = str(info.get("host") or info.get("hostaddr") or "localhost")
    port = str(info.get("port") or "5432")
    dbname = str(info.get("dbname") or info.get("user") or "(default database)")
    return f"{host}:{port}/{dbname}"


class PostgresStore(Store):
    """Audit ledger, usage ledger and leases in one PostgreSQL database (see the module docstring)."""

    def __init__(self, url: str, *, connect_timeout: int = 10) -> None:
        self.where = describe(url)
        try:
            info = conninfo_to_dict(url)
        except psycopg.ProgrammingError:
            raise UserError(
                f"--store: not a PostgreSQL URL libpq understands ({self.where}); "
                "write it like postgresql://user:password@host:5432/dbname"
            ) from None
        self._password = str(info.get("password") or "")
        info.setdefault("connect_timeout", connect_timeout)
        info.setdefault("application_name", "reconciler")
        self._conninfo = make_conninfo("", **info)
        self._lock = threading.RLock()
        self._depth = 0  # transaction nesting; only touched while holding the lock
        self._closed = False
        self._conn = self._connect()
        try:
            self._migrate()
        except BaseException:
            self._conn.close()
            raise

    # --- connection --------------------------------------------------------------------------
    def _scrub(self, exc: BaseException) -> str:
        text = str(exc).strip().replace("\n", " ")
        return text.replace(self._password, "***") if self._password else text

    def _connect(self) -> psycopg.Connection[tuple[Any, ...]]:
        try:
            conn = psycopg.connect(self._conninfo, autocommit=True)
        except psycopg.Error as exc:
            raise UserError(
                f"cannot connect to the PostgreSQL store at {self.where}: {self._scrub(exc)}"
            ) from None
        try:
            for statement in _SESSION:
                conn.execute(statement)
        except psycopg.Error as exc:
            conn.close()
            raise UserError(f"the PostgreSQL store at {self.where}: {self._scrub(exc)}") from None
        return conn

    @contextmanager
    def _errors(self) -> Iterator[None]:
        """Database failures become a UserError naming the store (the connection reopens next call)."""
        try:
            yield
        except psycopg.OperationalError as exc:
            raise UserError(
                f"lost the connection to the PostgreSQL store at {self.where}: {self._scrub(exc)}; "
                "check that the server is up and reachable, then run again"
            ) from None
        except psycopg.errors.InsufficientPrivilege as exc:
            raise UserError(
                f"the PostgreSQL store at {self.where} refused: {self._scrub(exc)}; the reconciler's "
                "role needs to create and write its tables in that database"
            ) from None

    def _ready(self) -> None:
        """Called with the lock held, outside any transaction: reopen a broken connection."""
        if self._closed:
            raise RuntimeError("the store is closed")
        if self._depth == 0 and self._conn.closed:
            self._conn = self._connect()

    def _migrate(self) -> None:
        with self.transaction():
            self._conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
            row = self._conn.execute("SELECT to_regclass('meta') IS NOT NULL").fetchone()
            if not (row and row[0]):  # created only when missing: a role without CREATE may use it
                self._conn.execute("CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)")
            version = self._meta("schema_version")
            if version is None:
                for statement in TABLES:
                    self._conn.execute(statement)
                self._set_meta("schema_version", str(SCHEMA_VERSION))
                self._set_meta("audit_head_seq", "0")
                self._set_meta("audit_head_hash", GENESIS_HASH)
            elif int(version) > SCHEMA_VERSION:
                raise UserError(
                    f"the PostgreSQL store at {self.where} has schema version {version}, newer than "
                    f"this reconciler understands ({SCHEMA_VERSION}); upgrade the reconciler"
                )

    def _meta(self, name: str) -> str | None:
        row = self._conn.execute("SELECT value FROM meta WHERE name = %s", (name,)).fetchone()
        return None if row is None else str(row[0])

    def _set_meta(self, name: str, value: str) -> None:
        self._conn.execute(
            "INSERT INTO meta (name, value) VALUES (%s, %s) "
            "ON CONFLICT (name) DO UPDATE SET value = excluded.value",
            (name, value),
        )

    # --- transactions ------------------------------------------------------------------------
    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Writes inside land together or not at all; nests (inner levels are savepoints)."""
        with self._lock:
            self._ready()
            self._depth += 1
            try:
                with self._errors(), self._conn.transaction():
                    yield
            finally:
                self._depth -= 1

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._lock, self._errors():
            self._ready()
            return self._conn.execute(sql, tuple(params)).fetchall()

    def _check_fences(self) -> None:
        """Refuse a write when a lease it is fenced by moved on (call inside the write's transaction)."""
        fences = self.fences
        if not fences:
            return
        scopes = sorted({lease.scope for lease in fences})
        rows = self._conn.execute(
            "SELECT scope, holder, epoch FROM lease WHERE scope = ANY(%s) ORDER BY scope FOR SHARE", (scopes,)
        ).fetchall()
        problem = fence_problem(fences, {row[0]: (row[1], int(row[2])) for row in rows})
        if problem is not None:
            raise LeaseLostError(problem)

    def close(self) -> None:
        with self._lock:
            if not self._closed:
                self._closed = True
                self._conn.close()

    def __enter__(self) -> PostgresStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- audit -------------------------------------------------------------------------------
    def append(self, record: AuditRecord, *, at: datetime) -> AuditEntry:
        at = utc(at)
        with self.transaction():
            self._check_fences()
            head = dict(
                self._conn.execute(
                    "SELECT name, value FROM meta WHERE name IN ('audit_head_seq', 'audit_head_hash') "
                    "ORDER BY name FOR UPDATE"
                ).fetchall()
            )
            seq = int(head.get("audit_head_seq") or 0) + 1
            prev_hash = str(head.get("audit_head_hash") or GENESIS_HASH)
            digest = audit_hash(prev_hash, seq, at, record)
            self._conn.execute(
                f"INSERT INTO audit ({AUDIT_COLUMNS}, generation) VALUES ({_placeholders(18)})",
                (
                    seq, at, record.deployment, record.run_id, record.actor, record.action.value,
                    record.outcome.value, record.key, record.provider, record.resource_id, record.token,
                    record.commit, record.detail, record.error, record.intent_seq, prev_hash, digest,
                    detail_generation(record.detail) if record.outcome is Outcome.INTENT else None,
                ),
            )
            self._conn.execute(
                "UPDATE meta SET value = CASE name WHEN 'audit_head_seq' THEN %s ELSE %s END "
                "WHERE name IN ('audit_head_seq', 'audit_head_hash')",
                (str(seq), digest),
            )
        return AuditEntry(seq=seq, at=at, record=record, prev_hash=prev_hash, hash=digest)

    def _entry(self, row: Sequence[Any]) -> AuditEntry:
        try:
            record = AuditRecord(
                deployment=row[2], run_id=row[3], actor=row[4], action=AuditAction(row[5]),
                outcome=Outcome(row[6]), key=row[7], provider=row[8], resource_id=row[9], token=row[10],
                commit=row[11], detail=row[12], error=row[13],
                intent_seq=None if row[14] is None else int(row[14]),
            )
            return AuditEntry(seq=int(row[0]), at=utc(row[1]), record=record, prev_hash=row[15], hash=row[16])
        except (ValueError, TypeError, AttributeError) as exc:
            raise UserError(f"{self.where}: audit entry {row[0]} is unreadable ({exc})") from None

    def audit_log(self, *, deployment: str | None = None, since_seq: int = 0) -> Iterator[AuditEntry]:
        last = since_seq
        while True:
            where, params = "seq > %s", list[Any]([last])
            if deployment is not None:
                where, params = where + " AND deployment = %s", [last, deployment]
            rows = self._query(
                f"SELECT {AUDIT_COLUMNS} FROM audit WHERE {where} ORDER BY seq LIMIT {_PAGE}", params
            )
            for row in rows:
                yield self._entry(row)
            if len(rows) < _PAGE:
                return
            last = int(rows[-1][0])

    def verify(self) -> AuditVerification:
        """Walk the chain in one REPEATABLE READ snapshot, so concurrent appends do not disturb it."""
        with self._lock, self._errors():
            self._ready()
            if self._depth > 0:
                return self._verify_chain()
            self._conn.isolation_level, self._conn.read_only = IsolationLevel.REPEATABLE_READ, True
            try:
                with self._conn.transaction():
                    return self._verify_chain()
            finally:
                if not self._conn.closed:
                    self._conn.isolation_level, self._conn.read_only = None, None

    def _verify_chain(self) -> AuditVerification:
        head_seq = int(self._meta("audit_head_seq") or 0)
        head_hash = self._meta("audit_head_hash") or GENESIS_HASH
        with self._conn.cursor(name="reconciler_audit_walk") as cursor:
            cursor.itersize = 2000
            cursor.execute(f"SELECT {AUDIT_COLUMNS} FROM audit ORDER BY seq")
            return verify_chain(
                cursor,
                head_seq=head_seq,
                head_hash=head_hash,
                seq_of=lambda row: int(row[0]),
                prev_hash_of=lambda row: str(row[15]),
                parse=self._entry,
            )

    def unresolved_intents(self, deployment: str) -> list[AuditEntry]:
        rows = self._query(
            f"SELECT {AUDIT_COLUMNS} FROM audit AS a WHERE a.deployment = %s AND a.outcome = %s "
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
        where, params = "deployment = %s AND action = ANY(%s)", list[Any]([deployment, names])
        if key is not None:
            where += " AND key = %s"
            params.append(key)
        if since is not None:
            where += " AND at >= %s"
            params.append(utc(since))
        rows = self._query(
            f"SELECT {AUDIT_COLUMNS} FROM audit WHERE {where} ORDER BY seq DESC LIMIT %s", [*params, limit]
        )
        return [self._entry(row) for row in rows]

    def max_generation(self, deployment: str, key: str) -> int | None:
        rows = self._query(
            "SELECT MAX(generation) FROM audit WHERE deployment = %s AND key = %s AND outcome = %s",
            (deployment, key, Outcome.INTENT.value),
        )
        value = rows[0][0] if rows else None
        return None if value is None else int(value)

    # --- usage -------------------------------------------------------------------------------
    def _interval(self, row: Sequence[Any]) -> UsageInterval:
        return UsageInterval(
            id=int(row[0]), deployment=row[1], provider=row[2], resource_id=row[3], key=row[4],
            flavor=row[5], size=Size(int(row[6]), int(row[7]), int(row[8])), start=utc(row[9]),
            end=None if row[10] is None else utc(row[10]),
            hourly_rate=None if row[11] is None else Decimal(row[11]), currency=row[12], price_list=row[13],
        )

    def _open_row(self, provider: str, resource_id: str, *, lock: bool = False) -> tuple[Any, ...] | None:
        return self._conn.execute(
            f"SELECT {INTERVAL_COLUMNS} FROM usage_interval "
            "WHERE provider = %s AND resource_id = %s AND end_at IS NULL" + (" FOR UPDATE" if lock else ""),
            (provider, resource_id),
        ).fetchone()

    def open_interval(self, interval: UsageInterval) -> UsageInterval:
        size = interval.size
        values = (
            interval.deployment, interval.provider, interval.resource_id, interval.key, interval.flavor,
            size.cpus, size.memory_mb, size.disk_gb, utc(interval.start),
            None if interval.end is None else utc(interval.end), interval.hourly_rate,
            interval.currency, interval.price_list,
        )
        with self.transaction():
            self._check_fences()
            row = self._open_row(interval.provider, interval.resource_id)
            if row is None:
                # ON CONFLICT: another writer may open the same resource's interval right now.
                row = self._conn.execute(
                    f"INSERT INTO usage_interval ({INTERVAL_FIELDS}) VALUES ({_placeholders(13)}) "
                    "ON CONFLICT (provider, resource_id) WHERE end_at IS NULL DO NOTHING "
                    f"RETURNING {INTERVAL_COLUMNS}",
                    values,
                ).fetchone() or self._open_row(interval.provider, interval.resource_id)
            assert row is not None
        return self._interval(row)

    def close_interval(self, provider: str, resource_id: str, *, end: datetime) -> UsageInterval | None:
        with self.transaction():
            self._check_fences()
            row = self._open_row(provider, resource_id, lock=True)
            if row is None:
                return None
            interval = self._interval(row)
            end = max(utc(end), interval.start)  # a clock step backwards never makes a negative span
            self._conn.execute("UPDATE usage_interval SET end_at = %s WHERE id = %s", (end, interval.id))
        return dataclasses.replace(interval, end=end)

    def open_intervals(self, deployment: str) -> list[UsageInterval]:
        rows = self._query(
            f"SELECT {INTERVAL_COLUMNS} FROM usage_interval WHERE deployment = %s AND end_at IS NULL "
            "ORDER BY start_at, id",
            (deployment,),
        )
        return [self._interval(row) for row in rows]

    def intervals(
        self, *, start: datetime | None = None, end: datetime | None = None, deployment: str | None = None
    ) -> list[UsageInterval]:
        where, params = _where(
            ("start_at < %s", None if end is None else utc(end)),
            ("(end_at IS NULL OR end_at > %s)", None if start is None else utc(start)),
            ("deployment = %s", deployment),
        )
        rows = self._query(
            f"SELECT {INTERVAL_COLUMNS} FROM usage_interval {where} ORDER BY start_at, id", params
        )
        return [self._interval(row) for row in rows]

    def add_samples(self, deployment: str, samples: list[MetricSample]) -> None:
        """Store samples; a second sample for the same resource and instant is ignored."""
        with self.transaction():
            self._check_fences()
            if not samples:
                return
            with self._conn.cursor() as cursor:
                cursor.executemany(
                    f"INSERT INTO usage_sample ({SAMPLE_COLUMNS}) VALUES ({_placeholders(10)}) "
                    "ON CONFLICT DO NOTHING",
                    [
                        (deployment, s.provider, s.resource_id, s.key, utc(s.at), s.cpu_seconds, s.memory_mb,
                         s.net_rx_bytes, s.net_tx_bytes, s.disk_gb)
                        for s in samples
                    ],
                )

    def samples(
        self, *, start: datetime | None = None, end: datetime | None = None, deployment: str | None = None
    ) -> list[MetricSample]:
        """Samples taken in [start, end), in time order."""
        where, params = _where(
            ("at >= %s", None if start is None else utc(start)),
            ("at < %s", None if end is None else utc(end)),
            ("deployment = %s", deployment),
        )
        rows = self._query(
            f"SELECT {SAMPLE_COLUMNS} FROM usage_sample {where} ORDER BY at, provider, resource_id", params
        )
        return [_sample(r) for r in rows]

    def window_samples(
        self, *, start: datetime, end: datetime, deployment: str | None = None
    ) -> list[MetricSample]:
        """Samples in (start, end] plus each such server's baseline (see ``Store.window_samples``).

        The window is read through ``usage_sample_at``; each baseline is one backward index
        scan of the primary key ``(provider, resource_id, at)`` (a LATERAL … LIMIT 1).
        """
        only = "" if deployment is None else " AND deployment = %s"
        only_p = "" if deployment is None else " AND p.deployment = %s"
        window: list[Any] = [utc(start), utc(end)] + ([] if deployment is None else [deployment])
        before: list[Any] = [utc(start)] + ([] if deployment is None else [deployment])
        rows = self._query(WINDOW_SAMPLES_SQL.format(only=only, only_p=only_p), [*window, *before])
        return [_sample(r) for r in rows]

    # --- backup storage (SQL in store.postgres_backups) ----------------------------------------
    def open_backup_interval(self, interval: BackupInterval) -> BackupInterval:
        with self.transaction():
            self._check_fences()
            return postgres_backups.open_interval(self._conn, interval)

    def close_backup_interval(
        self, provider: str, snapshot_id: str, *, end: datetime
    ) -> BackupInterval | None:
        with self.transaction():
            self._check_fences()
            return postgres_backups.close_interval(self._conn, provider, snapshot_id, end)

    def backup_intervals(
        self, *, start: datetime | None = None, end: datetime | None = None, deployment: str | None = None
    ) -> list[BackupInterval]:
        with self._lock, self._errors():
            self._ready()
            return postgres_backups.select_intervals(self._conn, start, end, deployment)

    # --- leases ------------------------------------------------------------------------------
    def acquire_lease(self, scope: str, holder: str, *, ttl_seconds: float, now: datetime) -> Lease | None:
        """Take a free or expired lease (epoch + 1), renew our live one (same epoch), else None.

        An expired lease always moves to a new epoch, even for its former holder: whatever
        it did under the old epoch may have raced with someone else by then.
        """
        now = utc(now)
        expires = now + timedelta(seconds=ttl_seconds)
        with self.transaction():
            self._conn.execute(
                "INSERT INTO lease (scope, holder, epoch, expires_at) VALUES (%s, '', 0, %s) "
                "ON CONFLICT (scope) DO NOTHING",
                (scope, _RELEASED),
            )
            row = self._conn.execute(
                "SELECT holder, epoch, expires_at FROM lease WHERE scope = %s FOR UPDATE", (scope,)
            ).fetchone()
            assert row is not None
            live = utc(row[2]) > now
            if live and row[0] != holder:
                return None
            epoch = int(row[1]) if live else int(row[1]) + 1
            self._conn.execute(
                "UPDATE lease SET holder = %s, epoch = %s, expires_at = %s WHERE scope = %s",
                (holder, epoch, expires, scope),
            )
        return Lease(scope=scope, holder=holder, epoch=epoch, expires_at=expires)

    def current_lease(self, scope: str) -> Lease | None:
        rows = self._query(
            "SELECT holder, epoch, expires_at FROM lease WHERE scope = %s AND epoch > 0", (scope,)
        )
        if not rows:
            return None
        holder, epoch, expires_at = rows[0]
        return Lease(scope=scope, holder=holder, epoch=int(epoch), expires_at=utc(expires_at))

    def release_lease(self, lease: Lease) -> None:
        """Expire our lease now; the row stays so the next holder's epoch keeps increasing."""
        with self.transaction():
            self._conn.execute(
                "UPDATE lease SET expires_at = %s WHERE scope = %s AND holder = %s AND epoch = %s",
                (_RELEASED, lease.scope, lease.holder, lease.epoch),
            )


# The samples of a report window and, per server sampled in it, its last sample at or before
# the window's start. ``{only}``/``{only_p}`` add the deployment filter.
WINDOW_SAMPLES_SQL = (
    "WITH inside AS (SELECT " + SAMPLE_COLUMNS + " FROM usage_sample WHERE at > %s AND at <= %s{only}) "
    "SELECT " + SAMPLE_COLUMNS + " FROM inside "
    "UNION ALL "
    "SELECT " + ", ".join(f"b.{c.strip()}" for c in SAMPLE_COLUMNS.split(",")) + " "
    "FROM (SELECT DISTINCT provider, resource_id FROM inside) AS v "
    "CROSS JOIN LATERAL (SELECT " + ", ".join(f"p.{c.strip()}" for c in SAMPLE_COLUMNS.split(","))
    + " FROM usage_sample AS p "
    "WHERE p.provider = v.provider AND p.resource_id = v.resource_id AND p.at <= %s{only_p} "
    "ORDER BY p.at DESC LIMIT 1) AS b "
    "ORDER BY at, provider, resource_id"
)


def _sample(r: Sequence[Any]) -> MetricSample:
    return MetricSample(provider=r[1], resource_id=r[2], key=r[3], at=utc(r[4]),
                        cpu_seconds=float(r[5]), memory_mb=int(r[6]), net_rx_bytes=int(r[7]),
                        net_tx_bytes=int(r[8]), disk_gb=int(r[9]))


def _where(*conditions: tuple[str, Any]) -> tuple[str, list[Any]]:
    """A WHERE clause of the conditions whose parameter is not None."""
    used = [(clause, value) for clause, value in conditions if value is not None]
    if not used:
        return "", []
    return "WHERE " + " AND ".join(clause for clause, _ in used), [value for _, value in used]
