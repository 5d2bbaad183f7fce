"""providers.simcloud.admin: the admin side of ``reconciler simcloud`` — the world behind our back.

The admin functions fail, stop, edit, delete or create a server directly in simcloud's
file (``providers.simcloud.storage``), without counting API calls or honouring injected
faults, so that tests and demos can create drift and failures for the reconciler to heal;
``admin_inject_faults`` queues failures for the provider's next API calls. They name
servers by key (``shop/web/0``); when several generations share a key, the newest wins.
Every one takes the state file's name (``state_file``), checked as the provider checks it.

``SimcloudFaults`` offers the ones behind ``reconciler simcloud list|fail|stop|delete|edit|create``
as the provider type's ``FaultInjector`` (``reconciler.core.provider``), on the default
state file, so the CLI reaches them through the registry and never imports this module.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from providers.simcloud.dbfile import refusals
from providers.simcloud.spec import DEFAULT_STATE_FILE
from providers.simcloud.storage import (
    SERVER_COLUMNS,
    ServerRow,
    connect,
    db_path,
    insert_servers,
    set_status,
    settle,
    transaction,
)
from reconciler.core.clock import Clock
from reconciler.core.errors import UserError
from reconciler.core.limits import size_problem
from reconciler.core.model import TAG_KEY, CreateRequest, ServerStatus, Size

FAULT_KINDS = ("transient", "permanent")
HANDMADE_SIZE = Size(cpus=1, memory_mb=1024, disk_gb=10)


def _open_existing(state_dir: Path, state_file: str) -> sqlite3.Connection | None:
    path = db_path(state_dir, state_file)
    return connect(path) if path.exists() else None


@contextmanager
def _refusals(state_dir: Path, state_file: str) -> Iterator[None]:
    """What SQLite refuses on the file (damage, a full disk, read-only) as one UserError naming it."""
    with refusals(db_path(state_dir, state_file)):
        yield


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
        with _refusals(state_dir, state_file):
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
    flavor: str | None = None,
    tags: dict[str, str] | None = None,
    state_file: str = DEFAULT_STATE_FILE,
    clock: Clock | None = None,
) -> dict[str, Any]:
    """Create a server by hand, as someone clicking in the console would: no ownership marks
    unless ``tags`` carries some. Returns it."""
    now = (clock or Clock.from_env()).now()
    request = CreateRequest(
        owner="", key="", name=name, token="", generation=0, spec_hash="", image=image, size=size,
        flavor=flavor,
    )
    problem = size_problem(size)
    if problem is not None or not name.strip() or not image.strip():
        raise UserError(f"simcloud create: {problem or 'a server needs a name and an image'}")
    conn = connect(db_path(state_dir, state_file))
    try:
        with _refusals(state_dir, state_file), transaction(conn, write=True):
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
        with _refusals(state_dir, state_file), transaction(conn, write=True):
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
        with _refusals(state_dir, state_file), transaction(conn, write=True):
            conn.execute(
                "INSERT INTO faults (provider, operation, kind, remaining) VALUES (?, ?, ?, ?)",
                (provider, operation, kind, count),
            )
    finally:
        conn.close()


class SimcloudFaults:
    """simcloud's ``FaultInjector``: the admin functions above, on the default state file."""

    def list_servers(self, state_dir: Path) -> list[dict[str, Any]]:
        return admin_list(state_dir)

    def fail(self, state_dir: Path, key: str) -> dict[str, Any]:
        return admin_fail(state_dir, key)

    def stop(self, state_dir: Path, key: str) -> dict[str, Any]:
        return admin_stop(state_dir, key)

    def delete(self, state_dir: Path, key: str) -> dict[str, Any]:
        return admin_delete(state_dir, key)

    def edit(self, state_dir: Path, key: str, *, cpus: int | None, memory_mb: int | None) -> dict[str, Any]:
        return admin_edit(state_dir, key, cpus=cpus, memory_mb=memory_mb)

    def create(
        self, state_dir: Path, *, provider: str, name: str, image: str, size: Size, flavor: str | None
    ) -> dict[str, Any]:
        return admin_create(state_dir, provider=provider, name=name, image=image, size=size, flavor=flavor)
