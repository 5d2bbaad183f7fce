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
  race) and versioned in ``meta``; a database written by a newer reconciler is refused, one
  written by an older one is upgraded under the same lock (``sqlstore.MIGRATIONS``).
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
  intent's JSON detail (``core.audit_detail.detail_generation``) so that ``max_generation`` is
  one indexed query; it is not part of the hash.
* **Shared SQL.** What this store has in common with ``store.sqlite`` (most reads, closes,
  samples, backups, lease reads) is ``store.sqlstore.SQLStore``, written with ``?``
  placeholders that ``_sql`` turns into psycopg's ``%s``; this module is the PostgreSQL
  dialect of it. SQL written here directly (``self._conn.execute``) uses ``%s``.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

import psycopg
from psycopg import IsolationLevel
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from reconciler.core.audit_detail import detail_generation
from reconciler.core.errors import UserError
from reconciler.core.records import (
    AuditEntry,
    AuditRecord,
    AuditVerification,
    BackupInterval,
    Lease,
    Outcome,
    UsageInterval,
)
from reconciler.store.common import (
    GENESIS_HASH,
    audit_hash,
    meta_int,
    meta_value,
    utc,
    verify_chain,
)
from reconciler.store.postgres_schema import SCHEMA_VERSION, TABLES
from reconciler.store.sqlstore import (
    AUDIT_COLUMN_COUNT,
    AUDIT_COLUMNS,
    BACKUP_FIELDS,
    INTERVAL_COLUMNS,
    INTERVAL_FIELD_COUNT,
    INTERVAL_FIELDS,
    RELEASED,
    SAMPLE_COLUMNS,
    SQLStore,
)

_MIGRATION_LOCK = 0x5245434F4E  # pg_advisory_xact_lock key held while creating the schema
_SESSION = (
    "SET TIME ZONE 'UTC'",
    "SET lock_timeout = '30s'",
    "SET idle_in_transaction_session_timeout = '10s'",
)


def _placeholders(n: int) -> str:
    return ", ".join(["%s"] * n)


def _sql(sql: str) -> str:
    """Shared ``?``-style SQL (``store.sqlstore``) in psycopg's ``%s`` style."""
    return sql.replace("?", "%s")


# The samples of a report window and, per server sampled in it, its last sample at or before
# the window's start (a LATERAL … LIMIT 1: one backward index scan of the primary key).
# ``{only}``/``{only_p}`` add the deployment filter. Written with psycopg's ``%s`` so that it
# runs as it stands (EXPLAIN in the tests); ``_sql`` turns the ``?`` of the shared filters.
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


class PostgresStore(SQLStore):
    """Audit ledger, usage ledger and leases in one PostgreSQL database (see the module docstring)."""

    _GENERATION_SQL = "MAX(generation)"
    _WINDOW_SAMPLES_SQL = WINDOW_SAMPLES_SQL
    _INSERT_SAMPLES_SQL = (
        f"INSERT INTO usage_sample ({SAMPLE_COLUMNS}) VALUES ({', '.join('?' * 10)}) ON CONFLICT DO NOTHING"
    )
    _FOR_UPDATE = " FOR UPDATE"
    _LEASE_FILTER = " AND epoch > 0"  # a placeholder row acquire_lease inserted, never taken
    _UNREADABLE = (ValueError, TypeError, AttributeError)

    _conn: psycopg.Connection[tuple[Any, ...]]

    def __init__(self, url: str, *, connect_timeout: int = 10) -> None:
        self.where = self._label = describe(url)
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
        except (psycopg.errors.DataCorrupted, psycopg.errors.IndexCorrupted) as exc:
            raise UserError(
                f"the PostgreSQL store at {self.where} is damaged: {self._scrub(exc)}; have the "
                "database repaired or restored from a backup"
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
            else:
                self._upgrade(int(version), SCHEMA_VERSION)

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

    # --- dialect -----------------------------------------------------------------------------
    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._lock, self._errors():
            self._ready()
            return self._conn.execute(_sql(sql), tuple(params)).fetchall()

    def _execute(self, sql: str, params: Sequence[Any] = ()) -> psycopg.Cursor[tuple[Any, ...]]:
        return self._conn.execute(_sql(sql), tuple(params))

    def _executemany(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        with self._conn.cursor() as cursor:
            cursor.executemany(_sql(sql), rows)

    def _to_db(self, moment: datetime) -> datetime:
        return utc(moment)

    def _from_db(self, value: Any) -> datetime:
        return utc(value)

    def _in(self, column: str, values: Sequence[Any]) -> tuple[str, list[Any]]:
        return f"{column} = ANY(?)", [list(values)]

    def _fenced_leases(self, scopes: list[str]) -> dict[str, tuple[str, int]]:
        """``FOR SHARE``: a takeover commits before this check or waits until the write commits."""
        rows = self._conn.execute(
            "SELECT scope, holder, epoch FROM lease WHERE scope = ANY(%s) ORDER BY scope FOR SHARE", (scopes,)
        ).fetchall()
        return {row[0]: (row[1], int(row[2])) for row in rows}

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
            seq = meta_int(self._label, "audit_head_seq", head.get("audit_head_seq"), 0) + 1
            prev_hash = meta_value(self._label, "audit_head_hash", head.get("audit_head_hash"))
            prev_hash = prev_hash or GENESIS_HASH
            digest = audit_hash(prev_hash, seq, at, record)
            self._conn.execute(
                f"INSERT INTO audit ({AUDIT_COLUMNS}, generation) "
                f"VALUES ({_placeholders(AUDIT_COLUMN_COUNT + 1)})",
                (
                    seq, at, record.deployment, record.run_id, record.actor, record.action.value,
                    record.outcome.value, record.key, record.provider, record.resource_id, record.token,
                    record.commit, record.detail, record.error, record.intent_seq, prev_hash, digest,
                    record.author, record.committer,
                    detail_generation(record.detail) if record.outcome is Outcome.INTENT else None,
                ),
            )
            self._conn.execute(
                "UPDATE meta SET value = CASE name WHEN 'audit_head_seq' THEN %s ELSE %s END "
                "WHERE name IN ('audit_head_seq', 'audit_head_hash')",
                (str(seq), digest),
            )
        return AuditEntry(seq=seq, at=at, record=record, prev_hash=prev_hash, hash=digest)


    def check_integrity(self) -> None:
        """Checks nothing: a damaged page of a PostgreSQL database is an error of the query that
        reads it (checked against its checksum when the cluster has them), reported as a
        ``UserError`` by ``_errors``; verifying every page is the server administrator's job."""

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

    # --- usage -------------------------------------------------------------------------------
    def open_interval(self, interval: UsageInterval) -> UsageInterval:
        size = interval.size
        values = (
            interval.deployment, interval.provider, interval.resource_id, interval.key, interval.flavor,
            size.cpus, size.memory_mb, size.disk_gb, utc(interval.start),
            None if interval.end is None else utc(interval.end), interval.hourly_rate,
            interval.currency, interval.price_list,
            None if interval.granularity is None else interval.granularity.value,
            None if interval.billing is None else interval.billing.value,
        )
        with self.transaction():
            self._check_fences()
            row = self._open_row(interval.provider, interval.resource_id)
            if row is None:
                # ON CONFLICT: another writer may open the same resource's interval right now.
                row = self._conn.execute(
                    f"INSERT INTO usage_interval ({INTERVAL_FIELDS}) "
                    f"VALUES ({_placeholders(INTERVAL_FIELD_COUNT)}) "
                    "ON CONFLICT (provider, resource_id) WHERE end_at IS NULL DO NOTHING "
                    f"RETURNING {INTERVAL_COLUMNS}",
                    values,
                ).fetchone() or self._open_row(interval.provider, interval.resource_id)
            assert row is not None
        return self._interval(row)


    # --- backup storage ----------------------------------------------------------------------
    def _insert_backup_interval(self, interval: BackupInterval) -> BackupInterval:
        row = self._conn.execute(
            f"INSERT INTO backup_interval ({BACKUP_FIELDS}) VALUES ({_placeholders(11)}) "
            "ON CONFLICT (provider, snapshot_id) WHERE end_at IS NULL DO NOTHING RETURNING id",
            (
                interval.deployment, interval.provider, interval.snapshot_id, interval.key, interval.policy,
                interval.size_gb, utc(interval.start), None if interval.end is None else utc(interval.end),
                interval.gb_month_rate, interval.currency, interval.price_list,
            ),
        ).fetchone()
        if row is None:  # another writer opened it just now
            existing = self._open_backup_row(interval.provider, interval.snapshot_id)
            assert existing is not None
            return self._backup(existing)
        return dataclasses.replace(interval, id=int(row[0]))

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
                (scope, RELEASED),
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

