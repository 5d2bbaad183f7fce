"""store.audit_query: ``audit log``'s filters (``core.records.AuditQuery``) as one SQL WHERE clause.

Both stores run it (``SQLStore.audit_search``). Written with ``?`` placeholders and without a
literal ``%`` (see ``store.sqlstore``): every LIKE pattern is a parameter, its ``%`` and ``_``
escaped with ``!`` so that text a user filters by matches literally.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from reconciler.core.records import AuditQuery

_ESCAPE = "!"


def _literal(text: str) -> str:
    """``text`` for a LIKE pattern, matching itself only."""
    return text.replace(_ESCAPE, _ESCAPE * 2).replace("%", _ESCAPE + "%").replace("_", _ESCAPE + "_")


def audit_filter(
    query: AuditQuery,
    to_db: Callable[[datetime], Any],
    member: Callable[[str, Sequence[Any]], tuple[str, list[Any]]],
) -> tuple[str, list[Any]]:
    """``WHERE …`` and its parameters ("" and [] when nothing is filtered).

    ``to_db`` turns a time into the store's form; ``member`` is the store's ``col IN (…)``.
    """
    clauses: list[str] = []
    params: list[Any] = []
    like = f"LIKE ? ESCAPE '{_ESCAPE}'"
    if query.deployment is not None:
        clauses.append("deployment = ?")
        params.append(query.deployment)
    if query.key is not None:
        clauses.append(f"(key = ? OR key {like})")
        params += [query.key, _literal(query.key.rstrip("/")) + "/%"]
    if query.actions:
        clause, values = member("action", sorted({a.value for a in query.actions}))
        clauses.append(clause)
        params += values
    if query.actor is not None:
        pattern = "%" + _literal(query.actor.lower()) + "%"
        clauses.append(f"(LOWER(actor) {like} OR LOWER(COALESCE(author, '')) {like})")
        params += [pattern, pattern]
    if query.commit is not None:
        clauses.append(f"commit_id {like}")
        params.append(_literal(query.commit.lower()) + "%")
    if query.since is not None:
        clauses.append("at >= ?")
        params.append(to_db(query.since))
    if query.until is not None:
        clauses.append("at < ?")
        params.append(to_db(query.until))
    return ("WHERE " + " AND ".join(clauses), params) if clauses else ("", [])
