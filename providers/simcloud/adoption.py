"""providers.simcloud.adoption: taking over simcloud servers that already run, and letting them go.

The bodies of ``SimCloud.describe``, ``adopt`` and ``release``, each run inside one API call
(one transaction of the provider's ``_call``). An adoption writes the ownership and guard
marks into the server's tags and their copies in the ownership columns, and nothing else;
a release removes every ``reconciler:`` mark and clears those columns. Listing unowned
servers is observing the owner "" (``SimCloud.list_unowned``).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from typing import Any

from providers.simcloud.storage import OBSERVE_COLUMNS, SERVER_COLUMNS, ServerRow, user_tags_json
from reconciler.core.errors import NotFoundError, PermanentError
from reconciler.core.model import GUARD_TAGS, TAG_OWNER, ObservedServer
from reconciler.core.provider import AdoptRequest, adoption_conflict, adoption_marks, released_tags

_CHUNK = 500  # ids per SELECT … IN (…)
_SET_MARKS = (
    "UPDATE servers SET owner = ?, key = ?, generation = ?, token = ?, spec_hash = ?, tags = ?, "
    "user_tags = ? WHERE seq = ?"
)


def by_ids(conn: sqlite3.Connection, provider: str, resource_ids: Sequence[str]) -> list[tuple[Any, ...]]:
    """``OBSERVE_COLUMNS`` rows of the servers with these ids, owned or not."""
    rows: list[tuple[Any, ...]] = []
    ids = list(dict.fromkeys(resource_ids))
    for start in range(0, len(ids), _CHUNK):
        chunk = ids[start : start + _CHUNK]
        marks = ", ".join("?" for _ in chunk)
        rows += conn.execute(
            f"SELECT {OBSERVE_COLUMNS} FROM servers WHERE provider = ? AND resource_id IN ({marks}) "
            "ORDER BY seq",
            (provider, *chunk),
        ).fetchall()
    return rows


def _row(conn: sqlite3.Connection, provider: str, resource_id: str) -> ServerRow | None:
    found = conn.execute(
        f"SELECT {SERVER_COLUMNS} FROM servers WHERE provider = ? AND resource_id = ?",
        (provider, resource_id),
    ).fetchone()
    return None if found is None else ServerRow.of(found)


def adopt(conn: sqlite3.Connection, provider: str, server: ObservedServer, request: AdoptRequest) -> int:
    """Write ``request``'s marks on the server; its seq. Refuses one another owner (or key) holds."""
    row = _row(conn, provider, server.resource_id)
    if row is None:
        raise NotFoundError(f"simcloud server {server.resource_id} does not exist (any more)")
    tags = row.tag_map()
    conflict = adoption_conflict(tags, request)
    if conflict is not None:
        raise PermanentError(
            f"simcloud server {server.resource_id} cannot be adopted as {request.key}: {conflict}"
        )
    tags = {k: v for k, v in tags.items() if k not in GUARD_TAGS}
    tags.update(adoption_marks(request))
    values = (request.owner, request.key, request.generation, request.token, request.spec_hash)
    conn.execute(_SET_MARKS, (*values, json.dumps(tags, sort_keys=True), user_tags_json(tags), row.seq))
    return row.seq


def release(conn: sqlite3.Connection, provider: str, server: ObservedServer) -> None:
    """Remove every mark of ours from the server, if ``server.owner`` still owns it."""
    row = _row(conn, provider, server.resource_id)
    if row is None or not server.owner or row.tag_map().get(TAG_OWNER) != server.owner:
        return
    tags = released_tags(row.tag_map())
    marks = ("", "", 0, "", "")
    conn.execute(_SET_MARKS, (*marks, json.dumps(tags, sort_keys=True), user_tags_json(tags), row.seq))
