"""providers.simcloud.storage: simcloud's world — one SQLite file in the state directory.

The simulated cloud keeps its whole world in one SQLite file in the state directory, so
separate ``reconciler`` processes (and the admin functions in ``providers.simcloud.admin``)
see the same servers. The file runs in WAL mode with a busy timeout; every API call is one
short transaction. Its name (``spec.state_file``) is a plain ``.db`` file name in that
directory and never the ledger's (``state.db``): ``db_path`` refuses anything else, whoever
asks (``SimCloud``, an admin function, a config read back from a plan file), and the
provider's spec schema says the same at ``validate``. A symbolic link the operator puts
there is followed, which is how reconcilers with state directories of their own can share
one world.

Besides the file (schema, connections, transactions, never-reused ids), this module holds
the rows every side reads and writes: server rows and their inserts (creates and restores),
status changes, the injected faults the provider's calls consume, and the synthetic usage
counters (deterministic per server key) behind ``metrics``.
"""
from __future__ import annotations

import functools
import hashlib
import json
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from providers.simcloud import dbfile
from providers.simcloud.spec import DEFAULT_STATE_FILE, state_file_problem
from reconciler.core.clock import isoformat
from reconciler.core.errors import NotFoundError, PermanentError, UserError
from reconciler.core.model import (
    GUARD_TAGS,
    TAG_GENERATION,
    TAG_KEY,
    TAG_OWNER,
    TAG_PREFIX,
    TAG_SPEC_HASH,
    TAG_TOKEN,
    CreateRequest,
    ServerStatus,
)
from reconciler.core.provider import ownership_tags, read_guard_marks, user_tags

SOURCE_SIZE_TAG = "reconciler:source-size"  # on a snapshot: "cpus/memory_mb/disk_gb" of its server
RESTORED_FROM_TAG = "reconciler:restored-from"  # on a server: the snapshot it was restored from
BUSY_TIMEOUT_MS = dbfile.BUSY_TIMEOUT_MS

# --- the file's tables -------------------------------------------------------------------
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
# listing thousands of servers parses no JSON beyond the (usually tiny) user tags, which
# carry the guard marks too (see ``user_tags_json``).
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
    """Where simcloud keeps its world: the file ``state_file`` in the state directory.

    Anything but a plain ``.db`` file name other than the ledger's is a ``UserError``.
    """
    problem = state_file_problem(state_file)
    if problem is not None:
        raise UserError(f"simcloud spec.state_file {state_file!r} {problem}")
    return state_dir / state_file


def connect(path: Path) -> sqlite3.Connection:
    """Open (creating if needed) a simcloud database in WAL mode with a busy timeout; read-only where
    it may only be read. What SQLite refuses is one ``UserError`` (``providers.simcloud.dbfile``)."""
    return dbfile.connect(path, _SCHEMA)


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
    return _rates(identity)[0]


@functools.lru_cache(maxsize=1 << 17)
def _rates(identity: str) -> tuple[float, float, float]:
    """(CPU utilisation, rx bytes a second, tx bytes a second) of a server identity: hashes, so
    worked out once per server, not at each of its samples."""
    return (
        0.05 + 0.9 * unit_fraction("cpu", identity),
        2_000 + 200_000 * unit_fraction("rx", identity),
        1_000 + 100_000 * unit_fraction("tx", identity),
    )


def _identity(row: ServerRow) -> str:
    return row.tag_map().get(TAG_KEY) or row.resource_id


def settle(row: ServerRow, now: datetime, identity: str | None = None) -> tuple[str, float, float]:
    """Accrue running time and CPU seconds up to ``now``: (settled_at, run_seconds, cpu_seconds).

    Called before anything that changes status or size, so the cumulative counters stay
    monotonic whatever happens to the server. ``identity``: the row's, when the caller has it.
    """
    settled = datetime.fromisoformat(row.settled_at)
    elapsed = (now - settled).total_seconds()
    if elapsed <= 0:
        return row.settled_at, row.run_seconds, row.cpu_seconds
    if row.status != ServerStatus.RUNNING.value:
        return isoformat(now), row.run_seconds, row.cpu_seconds
    utilisation = cpu_utilisation(identity or _identity(row))
    return isoformat(now), row.run_seconds + elapsed, row.cpu_seconds + elapsed * row.cpus * utilisation


def usage_counters(row: ServerRow, now: datetime) -> tuple[float, int, int, int]:
    """Synthetic cumulative usage at ``now``: (cpu_seconds, memory_mb in use, net rx bytes, net tx bytes).

    Deterministic per server: utilisation and traffic rates derive from a hash of its key.
    """
    identity = _identity(row)
    _, run_seconds, cpu_seconds = settle(row, now, identity)
    utilisation, rx_rate, tx_rate = _rates(identity)
    memory_mb = int(row.memory_mb * (0.3 + 0.6 * utilisation))
    return round(cpu_seconds, 3), memory_mb, int(run_seconds * rx_rate), int(run_seconds * tx_rate)


def user_tags_json(tags: dict[str, str]) -> str:
    """The ``user_tags`` column for a tag map, as sorted JSON pairs: its non-reconciler tags and
    the guard marks (``GUARD_TAGS``), which observe must report too."""
    listed = [*user_tags(tags), *sorted((k, v) for k, v in tags.items() if k in GUARD_TAGS)]
    return json.dumps([list(pair) for pair in listed])


def listed_tags(tag_json: str) -> dict[str, Any]:
    """``ObservedServer`` keyword arguments from the ``user_tags`` column: user tags and guard marks."""
    if tag_json == "[]":
        return {}
    pairs = [(str(k), str(v)) for k, v in json.loads(tag_json)]
    marks = {k: v for k, v in pairs if k.startswith(TAG_PREFIX)}
    return {"tags": tuple(p for p in pairs if p[0] not in marks), **read_guard_marks(marks)}


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


def insert_server(conn: sqlite3.Connection, provider: str, request: CreateRequest, now: datetime) -> Any:
    """Insert one running server for ``request`` (inside a write transaction); its row as listed
    (``OBSERVE_COLUMNS``), without reading it back."""
    seq = next_id(conn, "server")
    values = _server_values(seq, provider, request, ownership_tags(request), isoformat(now))
    return conn.execute(f"{_INSERT_SERVER} RETURNING {OBSERVE_COLUMNS}", values).fetchone()


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


def rows_by_id(conn: sqlite3.Connection, provider: str, ids: Sequence[str]) -> dict[str, ServerRow]:
    """resource_id → row of those of ``ids`` that exist, 500 a query."""
    rows: dict[str, ServerRow] = {}
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        marks = ", ".join("?" for _ in chunk)
        # ``+provider``: looked up by the unique resource_id, not by scanning every row of the
        # provider for each chunk (SQLite otherwise picks the provider index: quadratic)
        for found in conn.execute(
            f"SELECT {SERVER_COLUMNS} FROM servers WHERE +provider = ? AND resource_id IN ({marks})",
            (provider, *chunk),
        ):
            row = ServerRow.of(found)
            rows[row.resource_id] = row
    return rows


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


# --- faults -----------------------------------------------------------------------------
def take_fault(
    conn: sqlite3.Connection, provider: str, names: tuple[str, ...], *, writing: bool
) -> str | None:
    """Consume one injected fault matching this call, returning its kind, or None.

    ``writing``: the caller's write transaction is open, and the fault is consumed in it (the
    caller commits it, whether or not the call goes on). Otherwise a quick read first (the
    common case: no faults at all), then a tiny write transaction to decrement, so two
    processes never consume the same fault twice.
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
        with nullcontext() if writing else transaction(conn, write=True):
            taken = conn.execute(
                "UPDATE faults SET remaining = remaining - 1 WHERE id = ? AND remaining > 0", (found[0],)
            ).rowcount
            conn.execute("DELETE FROM faults WHERE remaining <= 0")
        if taken:
            return str(found[1])
