"""providers.simcloud.provider: the built-in simulated cloud — a real provider whose "cloud" is a SQLite file.

It stands behind exactly the contract the cloud providers do, so the engine, the
examples, the crash-safety tests and the benchmarks run against it unchanged:

* state lives in ``<state dir>/simcloud.db`` (``providers.simcloud.storage``;
  ``spec.state_file`` names another file in the state directory, never a path), shared by
  every process; one file may host several ``Provider`` documents, each seeing only its
  own servers;
* listing pages ``page_size`` rows per API call (one keyset-paginated SELECT per page);
* creation is idempotent by token; a server carries our ownership marks in its tags;
* faults on demand: ``latency_ms`` and a seeded ``error_rate`` in the spec, a ``faults``
  table that admin functions fill (``providers.simcloud.admin``, whose operations behind
  ``reconciler simcloud`` the class offers as its ``fault_injector``), and
  ``RECONCILER_SIMCLOUD_KILL_AFTER=N`` (``providers.simcloud.killswitch``), which SIGKILLs the
  process right after its N-th successful mutating call is committed — the crash-safety
  test's scalpel.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, ClassVar, TypeVar

from providers.simcloud import adoption, dbfile, killswitch
from providers.simcloud.admin import SimcloudFaults
from providers.simcloud.killswitch import KILL_AFTER_ENV
from providers.simcloud.spec import CAPABILITIES, DEFAULT_STATE_FILE, SPEC_SCHEMA, state_file_problem
from providers.simcloud.storage import (
    OBSERVE_COLUMNS,
    SERVER_COLUMNS,
    SOURCE_SIZE_TAG,
    ServerRow,
    connect,
    db_path,
    insert_server,
    insert_servers,
    listed_tags,
    next_id,
    restore_server,
    rows_by_id,
    set_status,
    settle,
    take_fault,
    transaction,
    unit_fraction,
    usage_counters,
    user_tags_json,
)
from reconciler.core.clock import isoformat
from reconciler.core.errors import Diagnostic, NotFoundError, PermanentError, TransientError, UserError
from reconciler.core.limits import MAX_SIM_CAPACITY, MAX_SIM_LATENCY_MS, MAX_SIM_PAGE_SIZE
from reconciler.core.model import (
    TAG_KEY,
    TAG_OWNER,
    TAG_POLICY,
    TAG_PREFIX,
    TAG_TAKEN_AT,
    CreateRequest,
    MetricSample,
    ObservedServer,
    ProviderConfig,
    ServerStatus,
    Size,
    Snapshot,
    SnapshotRequest,
    UpdateRequest,
)
from reconciler.core.provider import (
    AdoptRequest,
    FaultInjector,
    Provider,
    ProviderContext,
    register,
    updated_tags,
)

__all__ = ["KILL_AFTER_ENV", "SimCloud"]


T = TypeVar("T")

# Provider method → the API operation it is counted as (and that faults may name).
_OPERATIONS = {
    "observe": "list_servers",
    "lookup": "lookup_server",
    "create": "create_server",
    "update": "update_server",
    "delete": "delete_server",
    "start": "start_server",
    "stop": "stop_server",
    "snapshot": "create_snapshot",
    "list_snapshots": "list_snapshots",
    "delete_snapshot": "delete_snapshot",
    "create_from_snapshot": "restore_server",
    "metrics": "get_metrics",
    "describe": "describe_servers",
    "list_unowned": "list_servers",
    "adopt": "tag_server",
    "release": "untag_server",
}

_STATUSES = {status.value: status for status in ServerStatus}
_SNAPSHOT_COLUMNS = "seq, snapshot_id, resource_id, key, owner, name, created_at, size_gb, policy, status"

def _fetch_all(query: str, params: tuple[Any, ...]) -> Callable[[sqlite3.Connection], list[Any]]:
    return lambda conn: conn.execute(query, params).fetchall()


def _spec_number(spec: Mapping[str, Any], name: str, default: float, *, integer: bool = False) -> float:
    value = spec.get(name, default)
    wrong_type = not isinstance(value, int | float) or (integer and not isinstance(value, int))
    if isinstance(value, bool) or wrong_type:
        kind = "an integer" if integer else "a number"
        raise UserError(f"simcloud spec.{name} must be {kind}, not {value!r}")
    return float(value)


@register("simcloud")
class SimCloud(Provider):
    """The simulated cloud; see the module docstring."""

    capabilities = CAPABILITIES
    spec_schema = SPEC_SCHEMA
    fault_injector: ClassVar[FaultInjector | None] = SimcloudFaults()

    def __init__(self, config: ProviderConfig, context: ProviderContext) -> None:
        super().__init__(config, context)
        spec = config.spec
        # max_parallel and price_list belong to every Provider document; tolerate them here too.
        unknown = sorted(set(spec) - set(self.spec_schema["properties"]) - {"max_parallel", "price_list"})
        if unknown:
            raise UserError(f"simcloud provider {config.name}: unknown spec field(s) {', '.join(unknown)}")
        self.latency = _spec_number(spec, "latency_ms", 0) / 1000
        self.error_rate = _spec_number(spec, "error_rate", 0)
        self.seed = int(_spec_number(spec, "seed", 0, integer=True))
        self.page_size = int(_spec_number(spec, "page_size", 1000, integer=True))
        capacity = spec.get("capacity")
        self.capacity = None if capacity is None else int(_spec_number(spec, "capacity", 0, integer=True))
        state_file = spec.get("state_file", DEFAULT_STATE_FILE)
        # What the schema refuses at validate, refused again for a config that never met the
        # schema (one read back from a plan file, or built in code).
        problem = state_file_problem(state_file)
        if problem is not None:
            raise UserError(f"simcloud provider {config.name}: spec.state_file {state_file!r} {problem}")
        latency_ms = self.latency * 1000
        if (
            not 1 <= self.page_size <= MAX_SIM_PAGE_SIZE
            or not 0 <= latency_ms <= MAX_SIM_LATENCY_MS
            or not 0 <= self.error_rate <= 1
            or (self.capacity is not None and not 0 <= self.capacity <= MAX_SIM_CAPACITY)
        ):
            raise UserError(
                f"simcloud provider {config.name}: page_size must be ≥ 1, latency_ms ≥ 0 "
                f"and error_rate between 0 and 1 (at most: page_size {MAX_SIM_PAGE_SIZE}, latency_ms "
                f"{MAX_SIM_LATENCY_MS}, capacity {MAX_SIM_CAPACITY})"
            )
        self.path = db_path(context.state_dir, state_file)
        self._local = threading.local()
        self._conns: list[sqlite3.Connection] = []
        self._writer: sqlite3.Connection | None = None
        self._lock = threading.Lock()
        self._call_number = 0

    # --- plumbing ---------------------------------------------------------------------
    def _conn(self) -> sqlite3.Connection:
        """This thread's connection, to read."""
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = connect(self.path)
            self._local.conn = conn
            with self._lock:
                self._conns.append(conn)
        return conn

    def _write_conn(self) -> sqlite3.Connection:
        """The one connection every mutation runs on, one at a time (``killswitch.serially``): its
        page cache stays warm, where a connection per thread re-reads what the others wrote."""
        if self._writer is None:
            self._writer = connect(self.path)
            with self._lock:
                self._conns.append(self._writer)
        return self._writer

    def _call(self, method: str, body: Callable[[sqlite3.Connection], T], *, write: bool) -> T:
        """One API call: count it, simulate latency and faults, run ``body`` in one transaction."""
        operation = _OPERATIONS[method]
        self.count_call(operation)
        if self.latency:
            time.sleep(self.latency)
        if self.error_rate:
            with self._lock:
                self._call_number += 1
                number = self._call_number
            if unit_fraction("error", str(self.seed), str(number)) < self.error_rate:
                raise TransientError(
                    f"simcloud {operation}: simulated throttling, retry later", code="Throttled"
                )
        try:
            if write:  # one writer at a time, as SQLite allows: the fault taken in the call's transaction
                with killswitch.serially():
                    conn = self._write_conn()
                    with transaction(conn, write=True):
                        fault = take_fault(conn, self.name, (operation, method), writing=True)
                        if fault is None:
                            result = body(conn)
                    if fault is None:
                        killswitch.committed()
            else:
                conn = self._conn()
                fault = take_fault(conn, self.name, (operation, method), writing=False)
                if fault is None:
                    with transaction(conn, write=False):
                        result = body(conn)
            if fault == "transient":
                raise TransientError(f"simcloud {operation}: injected transient fault", code="Injected")
            if fault is not None:
                raise PermanentError(f"simcloud {operation}: injected permanent fault", code="Injected")
        except sqlite3.OperationalError as exc:
            if "locked" in str(exc) or "busy" in str(exc):
                raise TransientError(f"simcloud {operation}: database busy ({exc})") from exc
            raise dbfile.problem(self.path, exc) or PermanentError(
                f"simcloud {operation}: database error ({exc})"
            ) from None
        except sqlite3.Error as exc:
            # A damaged file, a full disk, a read-only file: the local environment's fault, one
            # UserError naming the file; anything else the simulated cloud refusing.
            raise dbfile.problem(self.path, exc) or PermanentError(
                f"simcloud {operation}: database error ({exc})"
            ) from None
        return result

    def _now(self) -> datetime:
        return self.context.clock.now()

    def _row(self, conn: sqlite3.Connection, resource_id: str) -> ServerRow | None:
        found = conn.execute(
            f"SELECT {SERVER_COLUMNS} FROM servers WHERE provider = ? AND resource_id = ?",
            (self.name, resource_id),
        ).fetchone()
        return None if found is None else ServerRow.of(found)

    def _owned_row(self, conn: sqlite3.Connection, server: ObservedServer) -> ServerRow | None:
        """The row behind ``server``, refusing to touch a server the caller's owner does not own."""
        row = self._row(conn, server.resource_id)
        if row is not None and (not server.owner or row.tag_map().get(TAG_OWNER) != server.owner):
            raise PermanentError(
                f"simcloud server {server.resource_id} is not owned by {server.owner!r}; "
                "the reconciler never changes servers it does not own"
            )
        return row

    def _existing(self, conn: sqlite3.Connection, server: ObservedServer) -> ServerRow:
        row = self._owned_row(conn, server)
        if row is None:
            raise NotFoundError(f"simcloud server {server.resource_id} ({server.key}) no longer exists")
        return row

    def _observed(self, row: tuple[Any, ...]) -> ObservedServer:
        """Map one raw ``OBSERVE_COLUMNS`` row; kept lean because observe maps thousands per call."""
        try:
            return self._mapped(row)
        except (KeyError, ValueError, TypeError, AttributeError) as exc:  # json's errors are ValueErrors
            raise UserError(Diagnostic(
                str(self.path), None,
                f"simcloud's file is damaged (the row of server {row[1]!r} is unreadable: "
                f"{type(exc).__name__}: {exc}); move it aside and the simulated cloud starts empty "
                "(its servers are then forgotten), or restore it from a copy",
            )) from None

    def _mapped(self, row: tuple[Any, ...]) -> ObservedServer:
        _seq, resource_id, name, key, owner, status, cpus, memory_mb, disk_gb = row[:9]
        image, spec_hash, generation, token, flavor, addresses, created_at, tag_json = row[9:]
        return ObservedServer(
            provider=self.name,
            resource_id=resource_id,
            key=key,
            name=name,
            owner=owner,
            status=_STATUSES[status],
            size=Size(cpus, memory_mb, disk_gb),
            image=image,
            spec_hash=spec_hash,
            generation=generation,
            token=token,
            flavor=flavor,
            addresses=tuple(addresses.split(",")) if addresses else (),
            created_at=datetime.fromisoformat(created_at),
            **listed_tags(tag_json),
        )

    def _reread(self, conn: sqlite3.Connection, seq: int) -> ObservedServer:
        found = conn.execute(f"SELECT {OBSERVE_COLUMNS} FROM servers WHERE seq = ?", (seq,)).fetchone()
        return self._observed(found)

    # --- reading ----------------------------------------------------------------------
    def observe(self, owner: str) -> list[ObservedServer]:
        return self._listing("observe", owner)

    def _listing(self, method: str, owner: str) -> list[ObservedServer]:
        servers: list[ObservedServer] = []
        after = -1
        query = (
            f"SELECT {OBSERVE_COLUMNS} FROM servers WHERE provider = ? AND owner = ? AND seq > ? "
            "ORDER BY seq LIMIT ?"
        )
        while True:
            params = (self.name, owner, after, self.page_size + 1)  # one extra row = "there is a next page"
            rows = self._call(method, _fetch_all(query, params), write=False)
            page = rows[: self.page_size]
            servers.extend(map(self._observed, page))
            if len(rows) <= self.page_size:
                return servers
            after = int(page[-1][0])

    def lookup(self, owner: str, token: str) -> ObservedServer | None:
        def body(conn: sqlite3.Connection) -> ObservedServer | None:
            found = conn.execute(
                f"SELECT {OBSERVE_COLUMNS} FROM servers WHERE provider = ? AND token = ? AND owner = ? "
                "ORDER BY seq LIMIT 1",
                (self.name, token, owner),
            ).fetchone()
            return None if found is None else self._observed(found)

        if not token:
            return None
        return self._call("lookup", body, write=False)

    # --- taking over (providers.simcloud.adoption) ------------------------------------
    def describe(self, resource_ids: Sequence[str]) -> list[ObservedServer]:
        body = lambda conn: adoption.by_ids(conn, self.name, resource_ids)  # noqa: E731
        rows = self._call("describe", body, write=False)
        return [self._observed(row) for row in rows]

    def list_unowned(self) -> list[ObservedServer]:
        return self._listing("list_unowned", "")  # an unowned server's owner column is ""

    def adopt(self, server: ObservedServer, request: AdoptRequest) -> ObservedServer:
        body = lambda conn: self._reread(conn, adoption.adopt(conn, self.name, server, request))  # noqa: E731
        return self._call("adopt", body, write=True)

    def release(self, server: ObservedServer) -> None:
        self._call("release", lambda conn: adoption.release(conn, self.name, server), write=True)

    # --- servers ----------------------------------------------------------------------
    def create(self, request: CreateRequest) -> ObservedServer:
        if not request.owner or not request.token:
            raise PermanentError(f"simcloud create {request.key}: owner and token are required")

        def body(conn: sqlite3.Connection) -> ObservedServer:
            found = conn.execute(
                "SELECT seq FROM servers WHERE provider = ? AND token = ? ORDER BY seq LIMIT 1",
                (self.name, request.token),
            ).fetchone()
            if found is not None:  # a retried create after a crash or timeout: same server
                return self._reread(conn, int(found[0]))
            if self.capacity is not None:
                (held,) = conn.execute(
                    "SELECT COUNT(*) FROM servers WHERE provider = ?", (self.name,)
                ).fetchone()
                if held >= self.capacity:
                    raise PermanentError(
                        f"capacity exceeded: simcloud provider {self.name} holds {held} of at most "
                        f"{self.capacity} servers; cannot create {request.key}",
                        code="CapacityExceeded",
                    )
            return self._observed(insert_server(conn, self.name, request, self._now()))

        return self._call("create", body, write=True)

    def bulk_create(self, requests: Iterable[CreateRequest]) -> int:
        """Insert many servers in one transaction, bypassing the API (no calls counted, no faults).

        For tests and benchmarks that need thousands of servers quickly; not part of the
        provider contract. Returns how many were inserted.
        """
        batch = list(requests)
        if batch:
            with killswitch.serially():
                conn = self._write_conn()
                with transaction(conn, write=True):
                    insert_servers(conn, self.name, batch, self._now())
        return len(batch)

    def update(self, server: ObservedServer, request: UpdateRequest) -> ObservedServer:
        def body(conn: sqlite3.Connection) -> ObservedServer:
            row = self._existing(conn, server)
            if request.size.disk_gb != row.disk_gb:
                raise PermanentError(
                    f"simcloud cannot resize the disk of {row.name} in place "
                    f"({row.disk_gb} GB → {request.size.disk_gb} GB); the server must be replaced"
                )
            resize = (request.size.cpus, request.size.memory_mb, request.flavor) != (
                row.cpus,
                row.memory_mb,
                row.flavor,
            )
            if resize and row.status == ServerStatus.RUNNING.value and not request.allow_restart:
                raise PermanentError(
                    f"simcloud must restart {row.name} to resize it "
                    f"({row.cpus} vCPU/{row.memory_mb} MB → {request.size.cpus} vCPU/"
                    f"{request.size.memory_mb} MB) and restarts are not allowed for it"
                )
            tags = updated_tags(row.tag_map(), request)
            settled_at, run, cpu = settle(row, self._now())
            conn.execute(
                "UPDATE servers SET cpus = ?, memory_mb = ?, flavor = ?, tags = ?, user_tags = ?, "
                "settled_at = ?, run_seconds = ?, cpu_seconds = ? WHERE seq = ?",
                (
                    request.size.cpus,
                    request.size.memory_mb,
                    request.flavor,
                    json.dumps(tags, sort_keys=True),
                    user_tags_json(tags),
                    settled_at,
                    run,
                    cpu,
                    row.seq,
                ),
            )
            return self._reread(conn, row.seq)

        return self._call("update", body, write=True)

    def delete(self, server: ObservedServer) -> None:
        def body(conn: sqlite3.Connection) -> None:
            row = self._owned_row(conn, server)
            if row is not None:
                conn.execute("DELETE FROM servers WHERE seq = ?", (row.seq,))

        self._call("delete", body, write=True)

    def _set_status(self, method: str, server: ObservedServer, status: ServerStatus) -> ObservedServer:
        def body(conn: sqlite3.Connection) -> ObservedServer:
            row = self._existing(conn, server)
            if row.status != status.value:
                set_status(conn, row, status, self._now())
            return self._reread(conn, row.seq)

        return self._call(method, body, write=True)

    def start(self, server: ObservedServer) -> ObservedServer:
        return self._set_status("start", server, ServerStatus.RUNNING)

    def stop(self, server: ObservedServer) -> ObservedServer:
        return self._set_status("stop", server, ServerStatus.STOPPED)

    # --- snapshots --------------------------------------------------------------------
    def _snapshot(self, row: tuple[Any, ...]) -> Snapshot:
        _seq, snapshot_id, resource_id, key, owner, name, created_at, size_gb, policy, status = row
        return Snapshot(
            provider=self.name,
            snapshot_id=snapshot_id,
            resource_id=resource_id,
            key=key,
            owner=owner,
            name=name,
            created_at=datetime.fromisoformat(created_at),
            size_gb=float(size_gb),
            policy=policy,
            status=status,
        )

    def snapshot(self, server: ObservedServer, request: SnapshotRequest) -> Snapshot:
        def body(conn: sqlite3.Connection) -> Snapshot:
            row = self._existing(conn, server)
            found = conn.execute(
                f"SELECT {_SNAPSHOT_COLUMNS} FROM snapshots "
                "WHERE provider = ? AND resource_id = ? AND name = ?",
                (self.name, row.resource_id, request.name),
            ).fetchone()
            if found is not None:  # retried after a crash: the snapshot already exists
                return self._snapshot(found)
            now = isoformat(self._now())
            tags = {k: v for k, v in request.tags if not k.startswith(TAG_PREFIX)}
            tags.update({TAG_OWNER: server.owner, TAG_KEY: server.key, TAG_TAKEN_AT: now})
            tags[SOURCE_SIZE_TAG] = f"{row.cpus}/{row.memory_mb}/{row.disk_gb}"
            if request.policy:
                tags[TAG_POLICY] = request.policy
            used = 0.2 + 0.6 * unit_fraction("disk", row.resource_id, request.name)
            seq = next_id(conn, "snapshot")
            values = (
                seq,
                f"snap-{seq:08x}",
                self.name,
                server.owner,
                server.key,
                row.resource_id,
                request.name,
                now,
                round(row.disk_gb * used, 2),
                request.policy,
                json.dumps(tags, sort_keys=True),
            )
            conn.execute(
                "INSERT INTO snapshots (seq, snapshot_id, provider, owner, key, resource_id, name, "
                "created_at, size_gb, policy, tags) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                values,
            )
            return self._snapshot(
                conn.execute(f"SELECT {_SNAPSHOT_COLUMNS} FROM snapshots WHERE seq = ?", (seq,)).fetchone()
            )

        return self._call("snapshot", body, write=True)

    def list_snapshots(self, owner: str) -> list[Snapshot]:
        snapshots: list[Snapshot] = []
        after = -1
        query = (
            f"SELECT {_SNAPSHOT_COLUMNS} FROM snapshots WHERE provider = ? AND owner = ? AND seq > ? "
            "ORDER BY seq LIMIT ?"
        )
        while True:
            params = (self.name, owner, after, self.page_size + 1)
            rows = self._call("list_snapshots", _fetch_all(query, params), write=False)
            snapshots.extend(self._snapshot(r) for r in rows[: self.page_size])
            if len(rows) <= self.page_size:
                return snapshots
            after = int(rows[self.page_size - 1][0])

    def delete_snapshot(self, snapshot: Snapshot) -> None:
        def body(conn: sqlite3.Connection) -> None:
            conn.execute(
                "DELETE FROM snapshots WHERE provider = ? AND snapshot_id = ?",
                (self.name, snapshot.snapshot_id),
            )

        self._call("delete_snapshot", body, write=True)

    def create_from_snapshot(self, request: CreateRequest, snapshot: Snapshot) -> ObservedServer:
        if not request.owner or not request.token:
            raise PermanentError(f"simcloud restore {request.key}: owner and token are required")

        def body(conn: sqlite3.Connection) -> ObservedServer:
            seq = restore_server(conn, self.name, request, snapshot.snapshot_id, self._now())
            return self._reread(conn, seq)

        return self._call("create_from_snapshot", body, write=True)

    # --- metrics ----------------------------------------------------------------------
    def metrics(self, servers: list[ObservedServer]) -> list[MetricSample]:
        if not servers:
            return []
        now = self._now()

        ids = [s.resource_id for s in servers]
        rows = self._call("metrics", lambda conn: rows_by_id(conn, self.name, ids), write=False)
        samples: list[MetricSample] = []
        for server in servers:
            row = rows.get(server.resource_id)
            if row is None:
                continue
            cpu_seconds, memory_mb, rx_bytes, tx_bytes = usage_counters(row, now)
            samples.append(
                MetricSample(
                    provider=self.name,
                    resource_id=row.resource_id,
                    key=server.key,
                    at=now,
                    cpu_seconds=cpu_seconds,
                    memory_mb=memory_mb,
                    net_rx_bytes=rx_bytes,
                    net_tx_bytes=tx_bytes,
                    disk_gb=row.disk_gb,
                )
            )
        return samples

    def close(self) -> None:
        with self._lock:
            conns, self._conns, self._writer = self._conns, [], None
        for conn in conns:
            conn.close()
        self._local = threading.local()
