"""store.common: what every Store implementation shares — the hash chain, its walk, fencing.

Both stores (SQLite and PostgreSQL) must produce the same chain for the same entries, so
the hash, the chain walk behind ``verify`` and the fencing rule live here once:

* ``audit_hash`` — ``sha256(prev_hash + canonical JSON of seq, time and record)``; the
  first entry's ``prev_hash`` is ``GENESIS_HASH``.
* ``verify_chain`` — walks rows in ``seq`` order against the recorded chain head and
  reports the first entry edited, removed, inserted or reordered.
* ``fence_problem`` — why a write fenced by some leases must be refused, given the lease
  rows as stored now (``None`` when every lease is still current).

* ``meta_value`` — a value read from the ``meta`` table (schema version, chain head),
  checked: anything else than what the store writes there means the state is damaged,
  and is a ``UserError`` saying so, never a traceback or a silently wrong chain.

What an intent's ``detail`` says (its ``"generation"`` among it) is read through
``core.audit_detail``.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from reconciler.core.clock import isoformat
from reconciler.core.errors import Diagnostic, UserError
from reconciler.core.records import AuditEntry, AuditRecord, AuditVerification, Lease

GENESIS_HASH = "0" * 64


def audit_hash(prev_hash: str, seq: int, at: datetime, record: AuditRecord) -> str:
    """The chain hash of one entry: sha256(prev_hash + canonical JSON of seq, time and record)."""
    material: dict[str, Any] = {
        "seq": seq,
        "at": isoformat(at),
        "deployment": record.deployment,
        "run_id": record.run_id,
        "actor": record.actor,
        "action": record.action.value,
        "outcome": record.outcome.value,
        "key": record.key,
        "provider": record.provider,
        "resource_id": record.resource_id,
        "token": record.token,
        "commit": record.commit,
        "detail": record.detail,
        "error": record.error,
        "intent_seq": record.intent_seq,
    }
    # recorded since schema 3; an entry without them (written before) hashes as it always did
    if record.author is not None:
        material["author"] = record.author
    if record.committer is not None:
        material["committer"] = record.committer
    blob = json.dumps(material, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256((prev_hash + blob).encode()).hexdigest()


_META_FORMS: dict[str, tuple[re.Pattern[str], str]] = {
    "schema_version": (re.compile(r"[1-9][0-9]{0,8}"), "a schema version (a whole number from 1)"),
    "audit_head_seq": (re.compile(r"0|[1-9][0-9]{0,17}"), "an entry number (a whole number from 0)"),
    "audit_head_hash": (re.compile(r"[0-9a-f]{64}"), "a SHA-256 hash (64 lowercase hex digits)"),
}


def meta_value(label: str, name: str, value: object) -> str | None:
    """A ``meta`` value as stored (None when absent), after checking it has the form the store writes.

    Raises ``UserError`` naming the store (``label``) when it does not: the state is damaged.
    """
    if value is None:
        return None
    form, what = _META_FORMS[name]
    if isinstance(value, str) and form.fullmatch(value):
        return value
    shown = repr(value) if len(repr(value)) <= 40 else repr(value)[:40] + "…"
    raise UserError(
        Diagnostic(
            label,
            None,
            f"the state database is damaged: its meta table holds {shown} as {name}, which should be "
            f"{what}; restore the state database from a backup (do not edit its meta table by hand)",
        )
    )


def meta_int(label: str, name: str, value: object, default: int) -> int:
    """``meta_value`` as a number (``default`` when absent)."""
    text = meta_value(label, name, value)
    return default if text is None else int(text)


def utc(moment: datetime) -> datetime:
    """An aware UTC datetime; a naive one is taken as UTC."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def verify_chain(
    rows: Iterable[Sequence[Any]],
    *,
    head_seq: int,
    head_hash: str,
    seq_of: Callable[[Sequence[Any]], int],
    prev_hash_of: Callable[[Sequence[Any]], str],
    parse: Callable[[Sequence[Any]], AuditEntry],
) -> AuditVerification:
    """Walk stored audit rows (in seq order) and the recorded head; the first problem wins.

    ``parse`` turns a row into an entry and raises ``UserError`` for an unreadable one.
    """
    count, expected_seq, prev_hash = 0, 1, GENESIS_HASH

    def bad(seq: int, problem: str) -> AuditVerification:
        return AuditVerification(ok=False, entries=count, first_bad_seq=seq, problem=problem)

    for row in rows:
        seq = seq_of(row)
        if seq != expected_seq and expected_seq <= head_seq:
            return bad(expected_seq, f"entry {expected_seq} is missing (the chain jumps to {seq})")
        if seq > head_seq:
            return bad(seq, f"entry {seq} lies beyond the recorded head {head_seq} (inserted?)")
        if prev_hash_of(row) != prev_hash:
            return bad(seq, f"entry {seq} does not follow entry {seq - 1} (previous hash differs)")
        try:
            entry = parse(row)
        except UserError as exc:
            return bad(seq, str(exc))
        if audit_hash(prev_hash, seq, entry.at, entry.record) != entry.hash:
            return bad(seq, f"entry {seq} was altered (its content does not match its hash)")
        count += 1
        prev_hash, expected_seq = entry.hash, seq + 1
    last = expected_seq - 1
    if last < head_seq:
        return bad(last + 1, f"entries {last + 1}..{head_seq} are missing (removed from the end)")
    if prev_hash != head_hash:
        return bad(last, f"entry {last} does not match the recorded head of the chain")
    return AuditVerification(ok=True, entries=count)


def fence_problem(fences: Sequence[Lease], current: Mapping[str, tuple[str, int]]) -> str | None:
    """Why a write fenced by ``fences`` must be refused; ``current`` maps scope → (holder, epoch).

    A lease is current while its scope's row names the same holder and epoch. A new
    holder always moves the epoch up, so an older epoch means someone took over.
    """
    for lease in fences:
        row = current.get(lease.scope)
        if row is None:
            return f"the lease of {lease.scope} no longer exists (this writer held epoch {lease.epoch})"
        holder, epoch = row
        if (holder, epoch) != (lease.holder, lease.epoch):
            return (
                f"the lease of {lease.scope} moved to {holder} at epoch {epoch}; "
                f"this writer's epoch {lease.epoch} may no longer write"
            )
    return None
