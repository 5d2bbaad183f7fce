"""providers.simcloud_admin: simcloud's SQLite storage and the admin side of ``reconciler simcloud``.

The simulated cloud keeps its whole world in one SQLite file under the state directory,
so separate ``reconciler`` processes (and the admin commands here) see the same servers.
The file runs in WAL mode with a busy timeout; every API call is one short transaction.

The admin functions play "the world behind our back": they fail, stop, edit or delete a
server directly in the file, without counting API calls or honouring injected faults, so
that tests and demos can create drift and failures for the reconciler to heal. They name
servers by key (``shop/web/0``); when several generations share a key, the newest wins.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from reconciler.core.clock import Clock, isoformat
from reconciler.core.errors import NotFoundError, PermanentError, UserError
from reconciler.core.model import (
    TAG_GENERATION,
    TAG_KEY,
    TAG_OWNER,
    TAG_SPEC_HASH,
    TAG_TOKEN,
    CreateRequest,
    ServerStatus,
    Size,
)
from reconciler.core.provider import ownership_tags, user_tags

DEFAULT_STATE_FILE = "simcloud.db"
SOURCE_SIZE_TAG = "reconciler:source-size"  # on a snapshot: "cpus/memory_mb/disk_gb" of its server
RESTORED_FROM_TAG = "reconciler:restored-from"  # on a server: the snapshot it was restored from
FAULT_KINDS = ("transient", "permanent")
BUSY_TIMEOUT_MS = 30_000
HANDMADE_SIZE = Size(cpus=1, memory_mb=1024, disk_gb=10)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
INSERT OR IGNORE INTO counters (name, value) VALUES ('server', 0), ('snapshot', 0);
CREATE TABLE IF NOT EXISTS servers (
    seq INTEGER PRIMARY KEY,
    resource_id TEXT NOT NULL UNIQUE,
    provider TEXT NOT NULL,
    owner TEXT NOT NULL DEFAULT '',
    key TEXT NOT NULL DEFAULT '',
    generation INTEGER NOT NULL DEFAULT 0,
    token TEXT NOT NULL DEFAULT '',
    spec_hash TEXT NOT NULL DEFAULT '',
    name TEXT NOT NULL,
    tags TEXT NOT NULL DEFAULT '{}',
    user_tags TEXT NOT NULL DEFAULT '[]',
    status TEXT NOT NULL,
    cpus INTEGER NOT NULL,
    memory_mb INTEGER NOT NULL,
    disk_gb INTEGER NOT NULL,
    flavor TEXT,
    image TEXT NOT NULL,
    addresses TEXT NOT NULL DEFAULT '',
    created_at TEXT NOT NULL,
    user_data TEXT NOT NULL DEFAULT '',
    settled_at TEXT NOT NULL,
    run_seconds REAL NOT NULL DEFAULT 0,
    cpu_seconds REAL NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS servers_by_owner ON servers (provider, owner, seq);
CREATE INDEX IF NOT EXISTS servers_by_token ON servers (provider, token);
CREATE INDEX IF NOT EXISTS servers_by_key ON servers (key, generation);
CREATE TABLE IF NOT EXISTS snapshots (
    seq INTEGER PRIMARY KEY,
    snapshot_id TEXT NOT NULL UNIQUE,
    provider TEXT NOT NULL,
    owner TEXT NOT NULL,
    key TEXT NOT NULL,
    resource_id TEXT NOT NULL,
    name TEXT NOT NULL,
    created_at TEXT NOT NULL,
    size_gb REAL NOT NULL,
    policy TEXT,
    tags TEXT NOT NULL DEFAULT '{}',
    status TEXT NOT NULL DEFAULT 'available'
);
CREATE INDEX IF NOT EXISTS snapshots_by_owner ON snapshots (provider, owner, seq);
CREATE INDEX IF NOT EXISTS snapshots_by_server ON snapshots (provider, resource_id, name);
CREATE TABLE IF NOT EXISTS faults (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    provider TEXT NOT NULL,
    operation TEXT NOT NULL,
    kind TEXT NOT NULL,
    remaining INTEGER NOT NULL
);
"""

# The columns observe() maps into ObservedServer, in this order. The ownership marks live in
# ``tags`` (the cloud's view) and are copied into their own columns when written, so that
# listing thousands of servers parses no JSON beyond the (usually tiny) user tags.
OBSERVE_COLUMNS = (
    "seq, resource_id, name, key, owner, status, cpus, memory_mb, disk_gb, image, spec_hash, "
    "generation, token, flavor, addresses, created_at, user_tags"
)

# Columns every server read for a change selects, in this order (see ServerRow).
SERVER_COLUMNS = (
    "seq, resource_id, provider, name, tags, status, cpus, memory_mb, disk_gb, flavor, image, "
    "addresses, created_at, settled_at, run_seconds, cpu_seconds"
)


@dataclass(frozen=True)
class ServerRow:
    """One row of the ``servers`` table, as read with ``SERVER_COLUMNS``."""

    seq: int
    resource_id: str
    provider: str
    name: str
    tags: str
    status: str
    cpus: int
    memory_mb: int
    disk_gb: int
    flavor: str | None
    image: str
    addresses: str
    created_at: str
    settled_at: str
    run_seconds: float
    cpu_seconds: float

    @classmethod
    def of(cls, row: tuple[Any, ...]) -> ServerRow:
        return cls(*row)

    def tag_map(self) -> dict[str, str]:
        loaded = json.loads(self.tags)
        return {str(k): str(v) for k, v in loaded.items()} if isinstance(loaded, dict) else {}


# --- connections and transactions -------------------------------------------------------
def db_path(state_dir: Path, state_file: str = DEFAULT_STATE_FILE) -> Path:
    """Where simcloud keeps its world: ``state_file`` relative to the state directory."""
    return state_dir / state_file


def connect(path: Path) -> sqlite3.Connection:
    """Open (creating if needed) a simcloud database in WAL mode with a busy timeout."""
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(
        path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None, check_same_thread=False
    )
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    with transaction(conn, write=True):
        for statement in _SCHEMA.split(";"):
            if statement.strip():
                conn.execute(statement)
    return conn


@contextmanager
def transaction(conn: sqlite3.Connection, *, write: bool) -> Iterator[sqlite3.Connection]:
    """One short transaction: IMMEDIATE for writers (no upgrade deadlocks), deferred for readers."""
    conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
    try:
        yield conn
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def next_id(conn: sqlite3.Connection, counter: str, count: int = 1) -> int:
    """Reserve ``count`` values of a never-reused counter (inside a write transaction); returns the first."""
    row = conn.execute(
        "UPDATE counters SET value = value + ? WHERE name = ? RETURNING value", (count, counter)
    ).fetchone()
    return int(row[0]) - count + 1


# --- synthetic usage --------------------------------------------------------------------
def unit_fraction(*parts: str) -> float:
    """A deterministic number in [0, 1) derived from ``parts``."""
    digest = hashlib.sha256("\x1f".join(parts).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def cpu_utilisation(identity: str) -> float:
    """The fraction of its vCPUs a server keeps busy, fixed per server identity (key)."""
    return 0.05 + 0.9 * unit_fraction("cpu", identity)


def settle(row: ServerRow, now: datetime) -> tuple[str, float, float]:
    """Accrue running time and CPU seconds up to ``now``: (settled_at, run_seconds, cpu_seconds).

    Called before anything that changes status or size, so the cumulative counters stay
    monotonic whatever happens to the server.
    """
    settled = datetime.fromisoformat(row.settled_at)
    elapsed = (now - settled).total_seconds()
    if elapsed <= 0:
        return row.settled_at, row.run_seconds, row.cpu_seconds
    if row.status != ServerStatus.RUNNING.value:
        return isoformat(now), row.run_seconds, row.cpu_seconds
    identity = row.tag_map().get(TAG_KEY) or row.resource_id
    cpu = row.cpu_seconds + elapsed * row.cpus * cpu_utilisation(identity)
    return isoformat(now), row.run_seconds + elapsed, cpu


def usage_counters(row: ServerRow, now: datetime) -> tuple[float, int, int, int]:
    """Synthetic cumulative usage at ``now``: (cpu_seconds, memory_mb in use, net rx bytes, net tx bytes).

    Deterministic per server: utilisation and traffic rates derive from a hash of its key.
    """
    _, run_seconds, cpu_seconds = settle(row, now)
    identity = row.tag_map().get(TAG_KEY) or row.resource_id
    memory_mb = int(row.memory_mb * (0.3 + 0.6 * cpu_utilisation(identity)))
    rx_bytes = int(run_seconds * (2_000 + 200_000 * unit_fraction("rx", identity)))
    tx_bytes = int(run_seconds * (1_000 + 100_000 * unit_fraction("tx", identity)))
    return round(cpu_seconds, 3), memory_mb, rx_bytes, tx_bytes


def user_tags_json(tags: dict[str, str]) -> str:
    """The ``user_tags`` column for a tag map: its non-reconciler tags, sorted, as JSON pairs."""
    return json.dumps([list(pair) for pair in user_tags(tags)])


_INSERT_SERVER = (
    "INSERT INTO servers (seq, resource_id, provider, owner, key, generation, token, spec_hash, name, "
    "tags, user_tags, status, cpus, memory_mb, disk_gb, flavor, image, addresses, created_at, "
    "user_data, settled_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


def _server_values(
    seq: int, provider: str, request: CreateRequest, tags: dict[str, str], stamp: str
) -> tuple[Any, ...]:
    """One INSERT's values; the ownership columns are copies of the marks in ``tags``."""
    address = f"10.{(seq >> 16) & 0xFF}.{(seq >> 8) & 0xFF}.{seq & 0xFF}"
    generation = tags.get(TAG_GENERATION, "0")
    marks = (tags.get(TAG_OWNER, ""), tags.get(TAG_KEY, ""), int(generation) if generation.isdigit() else 0)
    return (
        (seq, f"sim-{seq:08x}", provider, *marks, tags.get(TAG_TOKEN, ""), tags.get(TAG_SPEC_HASH, ""))
        + (request.name, json.dumps(tags, sort_keys=True), user_tags_json(tags), ServerStatus.RUNNING.value)
        + (request.size.cpus, request.size.memory_mb, request.size.disk_gb, request.flavor, request.image)
        + (address, stamp, request.user_data, stamp)
    )


def insert_servers(
    conn: sqlite3.Connection,
    provider: str,
    requests: Sequence[CreateRequest],
    now: datetime,
    *,
    tags: dict[str, str] | None = None,
) -> int:
    """Insert running servers for ``requests`` (inside a write transaction); returns the first seq.

    Each server carries ``ownership_tags(request)``, unless ``tags`` is given (hand-made servers).
    """
    first = next_id(conn, "server", len(requests))
    stamp = isoformat(now)
    conn.executemany(
        _INSERT_SERVER,
        (
            _server_values(
                first + i, provider, request, ownership_tags(request) if tags is None else tags, stamp
            )
            for i, request in enumerate(requests)
        ),
    )
    return first


def restore_server(
    conn: sqlite3.Connection, provider: str, request: CreateRequest, snapshot_id: str, now: datetime
) -> int:
    """Insert a running server for ``request`` whose disk starts as the snapshot's (inside a write
    transaction); returns its seq. Idempotent by token, like a create."""
    found = conn.execute(
        "SELECT seq FROM servers WHERE provider = ? AND token = ? ORDER BY seq LIMIT 1",
        (provider, request.token),
    ).fetchone()
    if found is not None:
        return int(found[0])
    snap = conn.execute(
        "SELECT owner, tags FROM snapshots WHERE provider = ? AND snapshot_id = ?", (provider, snapshot_id)
    ).fetchone()
    if snap is None or snap[0] != request.owner:
        raise NotFoundError(
            f"simcloud provider {provider} has no snapshot {snapshot_id} owned by {request.owner!r}"
        )
    source = str(json.loads(snap[1]).get(SOURCE_SIZE_TAG, "0/0/0")).split("/")
    if len(source) == 3 and source[2].isdigit() and request.size.disk_gb < int(source[2]):
        raise PermanentError(
            f"simcloud cannot restore snapshot {snapshot_id} ({source[2]} GB disk) onto a "
            f"{request.size.disk_gb} GB disk; ask for at least {source[2]} GB"
        )
    tags = {**ownership_tags(request), RESTORED_FROM_TAG: snapshot_id}
    return insert_servers(conn, provider, [request], now, tags=tags)


def set_status(conn: sqlite3.Connection, row: ServerRow, status: ServerStatus, now: datetime) -> None:
    """Change a server's status, settling its usage counters first."""
    settled_at, run, cpu = settle(row, now)
    conn.execute(
        "UPDATE servers SET status = ?, settled_at = ?, run_seconds = ?, cpu_seconds = ? WHERE seq = ?",
        (status.value, settled_at, run, cpu, row.seq),
    )


# --- admin operations -------------------------------------------------------------------
def _open_existing(state_dir: Path, state_file: str) -> sqlite3.Connection | None:
    path = db_path(state_dir, state_file)
    return connect(path) if path.exists() else None


def _unknown_key(key: str) -> UserError:
    return UserError(f"no simcloud server has key {key}; see `reconciler simcloud list`")


def _row_dict(row: ServerRow) -> dict[str, Any]:
    tags = row.tag_map()
    return {
        "key": tags.get(TAG_KEY, ""),
        "name": row.name,
        "provider": row.provider,
        "status": row.status,
        "cpus": row.cpus,
        "memory_mb": row.memory_mb,
        "disk_gb": row.disk_gb,
        "flavor": row.flavor,
        "image": row.image,
        "resource_id": row.resource_id,
        "created_at": row.created_at,
    }


def admin_list(state_dir: Path, *, state_file: str = DEFAULT_STATE_FILE) -> list[dict[str, Any]]:
    """Every server in the simulated cloud (all providers, owned or not), sorted by provider and key."""
    conn = _open_existing(state_dir, state_file)
    if conn is None:
        return []
    try:
        rows = conn.execute(
            f"SELECT {SERVER_COLUMNS} FROM servers ORDER BY provider, key, generation, seq"
        ).fetchall()
    finally:
        conn.close()
    return [_row_dict(ServerRow.of(r)) for r in rows]


def admin_create(
    state_dir: Path,
    *,
    provider: str,
    name: str,
    image: str = "handmade",
    size: Size = HANDMADE_SIZE,
    tags: dict[str, str] | None = None,
    state_file: str = DEFAULT_STATE_FILE,
    clock: Clock | None = None,
) -> dict[str, Any]:
    """Create a server by hand, as someone clicking in the console would: no ownership marks
    unless ``tags`` carries some. Returns it."""
    now = (clock or Clock.from_env()).now()
    request = CreateRequest(
        owner="", key="", name=name, token="", generation=0, spec_hash="", image=image, size=size, flavor=None
    )
    conn = connect(db_path(state_dir, state_file))
    try:
        with transaction(conn, write=True):
            seq = insert_servers(conn, provider, [request], now, tags=dict(tags or {}))
            return _reread(conn, seq)
    finally:
        conn.close()


@contextmanager
def _server_by_key(
    state_dir: Path, key: str, state_file: str
) -> Iterator[tuple[sqlite3.Connection, ServerRow]]:
    """The newest generation of ``key``, inside a write transaction."""
    conn = _open_existing(state_dir, state_file)
    if conn is None:
        raise _unknown_key(key)
    try:
        with transaction(conn, write=True):
            found = conn.execute(
                f"SELECT {SERVER_COLUMNS} FROM servers WHERE key = ? "
                "ORDER BY generation DESC, seq DESC LIMIT 1",
                (key,),
            ).fetchone()
            if found is None:
                raise _unknown_key(key)
            yield conn, ServerRow.of(found)
    finally:
        conn.close()


def _reread(conn: sqlite3.Connection, seq: int) -> dict[str, Any]:
    row = conn.execute(f"SELECT {SERVER_COLUMNS} FROM servers WHERE seq = ?", (seq,)).fetchone()
    return _row_dict(ServerRow.of(row))


def admin_fail(
    state_dir: Path, key: str, *, state_file: str = DEFAULT_STATE_FILE, clock: Clock | None = None
) -> dict[str, Any]:
    """Put the server with ``key`` into ``error`` status (a crashed machine); returns it."""
    now = (clock or Clock.from_env()).now()
    with _server_by_key(state_dir, key, state_file) as (conn, row):
        set_status(conn, row, ServerStatus.ERROR, now)
        return _reread(conn, row.seq)


def admin_stop(
    state_dir: Path, key: str, *, state_file: str = DEFAULT_STATE_FILE, clock: Clock | None = None
) -> dict[str, Any]:
    """Stop the server with ``key`` behind the reconciler's back; returns it."""
    now = (clock or Clock.from_env()).now()
    with _server_by_key(state_dir, key, state_file) as (conn, row):
        set_status(conn, row, ServerStatus.STOPPED, now)
        return _reread(conn, row.seq)


def admin_delete(state_dir: Path, key: str, *, state_file: str = DEFAULT_STATE_FILE) -> dict[str, Any]:
    """Make the server with ``key`` vanish behind the reconciler's back; returns what it was."""
    with _server_by_key(state_dir, key, state_file) as (conn, row):
        conn.execute("DELETE FROM servers WHERE seq = ?", (row.seq,))
        return _row_dict(row)


def admin_edit(
    state_dir: Path,
    key: str,
    *,
    cpus: int | None = None,
    memory_mb: int | None = None,
    state_file: str = DEFAULT_STATE_FILE,
    clock: Clock | None = None,
) -> dict[str, Any]:
    """Change a server's size behind the reconciler's back (drift); returns it."""
    for label, value in (("cpus", cpus), ("memory_mb", memory_mb)):
        if value is not None and value < 1:
            raise UserError(f"simcloud edit: {label} must be at least 1, not {value}")
    now = (clock or Clock.from_env()).now()
    with _server_by_key(state_dir, key, state_file) as (conn, row):
        settled_at, run, cpu = settle(row, now)
        conn.execute(
            "UPDATE servers SET cpus = ?, memory_mb = ?, settled_at = ?, run_seconds = ?, cpu_seconds = ? "
            "WHERE seq = ?",
            (
                row.cpus if cpus is None else cpus,
                row.memory_mb if memory_mb is None else memory_mb,
                settled_at,
                run,
                cpu,
                row.seq,
            ),
        )
        return _reread(conn, row.seq)


def admin_inject_faults(
    state_dir: Path,
    *,
    provider: str = "*",
    operation: str = "*",
    kind: str,
    count: int,
    state_file: str = DEFAULT_STATE_FILE,
) -> None:
    """Make the next ``count`` matching API calls fail with a transient or permanent error.

    ``provider`` is a Provider document name and ``operation`` an API operation
    (``create_server``, ``list_servers``…) or provider method (``create``, ``observe``…);
    ``*`` matches any. Faults are shared by every process using the same state file.
    """
    if kind not in FAULT_KINDS:
        raise UserError(f"simcloud fault kind must be one of {', '.join(FAULT_KINDS)}, not {kind!r}")
    if count < 1:
        raise UserError(f"simcloud fault count must be at least 1, not {count}")
    conn = connect(db_path(state_dir, state_file))
    try:
        with transaction(conn, write=True):
            conn.execute(
                "INSERT INTO faults (provider, operation, kind, remaining) VALUES (?, ?, ?, ?)",
                (provider, operation, kind, count),
            )
    finally:
        conn.close()


def take_fault(conn: sqlite3.Connection, provider: str, names: tuple[str, ...]) -> str | None:
    """Consume one injected fault matching this call, returning its kind, or None.

    A quick read first (the common case: no faults at all), then a tiny write transaction
    to decrement, so two processes never consume the same fault twice.
    """
    placeholders = ", ".join("?" for _ in names)
    query = (
        "SELECT id, kind FROM faults WHERE remaining > 0 AND provider IN ('*', ?) "
        f"AND operation IN ('*', {placeholders}) ORDER BY id LIMIT 1"
    )
    while True:
        found = conn.execute(query, (provider, *names)).fetchone()
        if found is None:
            return None
        with transaction(conn, write=True):
            taken = conn.execute(
                "UPDATE faults SET remaining = remaining - 1 WHERE id = ? AND remaining > 0", (found[0],)
            ).rowcount
            conn.execute("DELETE FROM faults WHERE remaining <= 0")
        if taken:
            return str(found[1])
