"""run.anchor: signed checkpoints of the ledgers, kept outside the store, so tampering is detected.

The audit ledger's hash chain is public SHA-256: whoever can write the database can edit an
entry and recompute the chain, or cut off the tail. A checkpoint fixes the chain's head
with a key the database does not hold (after AWS CloudTrail's signed digest files):

    {"seq": 41, "hash": "<entry 41's chain hash>", "at": "...", "usage": "<digest>",
     "usage_rows": 12, "prev": "<previous checkpoint's mac>", "mac": "<HMAC-SHA256>"}

One line is added to the anchor file after every run that wrote to the ledgers (every
``ProviderSession`` that held leases, so apply, destroy, backups, restore and each daemon
cycle), unless nothing it covers changed since the newest line (no audit entry appended, no
usage interval closed: a converged daemon's cycles add none). Checkpoints chain to each
other through ``prev``. ``verify`` then detects: any edit, insertion or removal of an audit
entry up to the newest checkpoint (its hash at ``seq`` differs), a truncated tail (the
ledger ends before ``seq``), an edited or removed closed usage interval — its rate, currency
or billing terms too (``usage`` is a digest of every usage interval closed by the
checkpoint's time), and an edited, removed or reordered checkpoint (a MAC or ``prev``
mismatch). What a run writes after the newest checkpoint is covered from its own checkpoint on.

The file is rewritten whole for each new line (``run.files.write_atomic``) under a lock beside
it (``<file>.lock``), so a full disk leaves the file as it was, never half a line.

Where things live (each settable, none inside the state dir or in git):

* the key: ``RECONCILER_AUDIT_KEY`` (at least 32 characters), else the file named by
  ``RECONCILER_AUDIT_KEY_FILE``, else ``audit.key`` in the anchor dir (made on first use, 0600);
* the anchor dir: ``RECONCILER_ANCHOR_DIR``, else ``$XDG_STATE_HOME/reconciler/anchors``
  (``~/.local/state/reconciler/anchors``); one file per store, named by a hash of its location.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from reconciler.core.clock import isoformat, parse_timestamp
from reconciler.core.errors import UserError, write_refused
from reconciler.core.records import AuditQuery, UsageInterval
from reconciler.run.files import write_atomic
from reconciler.run.keys import AUDIT_KEY
from reconciler.store.base import Store

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: checkpoints are not locked there
    fcntl = None  # type: ignore[assignment]

ENV_DIR = "RECONCILER_ANCHOR_DIR"
_FIELDS = ("seq", "hash", "at", "usage", "usage_rows", "prev")


@dataclass(frozen=True)
class AnchorReport:
    """What ``verify`` found: ``ok`` with how much it covered, or the first problem."""

    ok: bool
    checkpoints: int
    covered_seq: int = 0
    problem: str = ""


def anchor_dir() -> Path:
    named = os.environ.get(ENV_DIR)
    if named:
        return Path(named)
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "reconciler" / "anchors"


def anchor_file(location: str) -> Path:
    """The anchor file of the store at ``location`` (a resolved path or a URL without password)."""
    return anchor_dir() / (hashlib.sha256(location.encode("utf-8")).hexdigest()[:24] + ".jsonl")


def audit_key() -> bytes:
    """The anchor key (``audit.key`` in the anchor dir when none is configured; see ``run.keys``)."""
    return AUDIT_KEY.load(anchor_dir())


def _mac(key: bytes, point: dict[str, Any]) -> str:
    body = json.dumps({k: point[k] for k in _FIELDS}, sort_keys=True, separators=(",", ":"))
    return hmac.new(key, body.encode("utf-8"), hashlib.sha256).hexdigest()


def _usage_row(i: UsageInterval, end: datetime) -> tuple[str, ...]:
    """What of a closed interval the digest covers: everything it bills by, terms included.

    The billing terms are appended only when recorded, so an interval closed before they
    were (state schema 1) digests as it did then and older checkpoints still verify; adding,
    changing or removing the terms of any interval changes its row.
    """
    row = (
        i.provider, i.resource_id, i.key, i.deployment, i.flavor or "", str(i.size),
        isoformat(i.start), isoformat(end), str(i.hourly_rate), i.currency, i.price_list,
    )
    if i.granularity is None and i.billing is None:
        return row
    granularity = "" if i.granularity is None else i.granularity.value
    return (*row, granularity, "" if i.billing is None else i.billing.value)


def usage_digest(intervals: Iterable[UsageInterval], at: datetime) -> tuple[str, int]:
    """A digest of every usage interval closed by ``at`` (closed intervals never change)."""
    rows = sorted(_usage_row(i, i.end) for i in intervals if i.end is not None and i.end <= at)
    digest = hashlib.sha256(json.dumps(rows, separators=(",", ":")).encode("utf-8")).hexdigest()
    return digest, len(rows)


def _text(path: Path) -> str:
    """The anchor file's text ('' when there is none yet)."""
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return ""
    except OSError as exc:
        raise UserError(f"cannot read the audit checkpoint file {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise UserError(f"{path}: not a checkpoint file (not UTF-8 text)") from None


def _read(path: Path, text: str | None = None) -> list[dict[str, Any]]:
    points: list[dict[str, Any]] = []
    for number, line in enumerate((_text(path) if text is None else text).splitlines(), start=1):
        try:
            point = json.loads(line)
        except ValueError:
            raise UserError(f"{path}:{number}: not a checkpoint (not JSON)") from None
        if not isinstance(point, dict) or any(k not in point for k in (*_FIELDS, "mac")):
            raise UserError(f"{path}:{number}: not a checkpoint (fields missing)")
        points.append(point)
    return points


def checkpoint(store: Store, location: str, at: datetime) -> dict[str, Any] | None:
    """Append a signed checkpoint of the ledgers' head, and return it; None when the audit ledger
    is empty. When nothing changed since the newest checkpoint, that one is returned, no line added."""
    path = anchor_file(location)
    with _locked(path):
        return _checkpoint(store, path, at)


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock beside the anchor file: two runs checkpointing one store at once take
    turns, so each chains to the other's line and neither line is lost."""
    lock = path.with_name(path.name + ".lock")
    try:
        lock.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(lock, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o600)
    except OSError as exc:
        raise write_refused(lock, exc, "audit checkpoint lock") from None
    try:
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def _checkpoint(store: Store, path: Path, at: datetime) -> dict[str, Any] | None:
    text = _text(path)
    points = _read(path, text)
    last = points[-1] if points else None
    head = next(iter(store.audit_search(AuditQuery(limit=1))), None)  # the newest entry
    if head is None:
        return None
    if last is not None and _unchanged(store, last, head.seq, head.hash, at):
        return last
    usage, rows = usage_digest(store.intervals(), at)
    point: dict[str, Any] = {
        "seq": head.seq, "hash": head.hash, "at": isoformat(at), "usage": usage, "usage_rows": rows,
        "prev": last["mac"] if last else "",
    }
    point["mac"] = _mac(audit_key(), point)
    kept = text if not text or text.endswith("\n") else text + "\n"
    # The whole file again, renamed into place: a full disk leaves the old file, never half a line.
    write_atomic(path, kept + json.dumps(point, sort_keys=True) + "\n", what="audit checkpoint file")
    return point


def _unchanged(store: Store, last: dict[str, Any], seq: int, digest: str, at: datetime) -> bool:
    """Nothing a new checkpoint would fix has changed since ``last``: no audit entry appended and
    no usage interval closed (closed ones never change, so the count says). A converged daemon's
    cycles then add no line (the file, rewritten whole each time, would grow by one a cycle)."""
    if (last["seq"], last["hash"]) != (seq, digest):
        return False
    return bool(store.closed_intervals(by=at) == last["usage_rows"])


def verify(store: Store, location: str) -> AnchorReport:
    """Check the ledgers against every checkpoint of the store's anchor file (see the module text)."""
    path = anchor_file(location)
    points = _read(path)
    if not points:
        return AnchorReport(ok=True, checkpoints=0)
    key = audit_key()
    prev = ""
    for number, point in enumerate(points, start=1):
        if point["prev"] != prev or not hmac.compare_digest(str(point["mac"]), _mac(key, point)):
            return AnchorReport(
                False, number - 1, problem=f"checkpoint {number} of {path} is not signed by the audit key "
                "or not chained to the one before it (edited, removed or reordered)"
            )
        prev = str(point["mac"])
    wanted = {int(p["seq"]): str(p["hash"]) for p in points}
    found: dict[int, str] = {}
    last_seq = 0
    for entry in store.audit_log():
        last_seq = entry.seq
        if entry.seq in wanted:
            found[entry.seq] = entry.hash
    for point in points:
        seq = int(point["seq"])
        if seq > last_seq:
            return AnchorReport(
                False, len(points), problem=f"the audit ledger ends at entry {last_seq}, but a signed "
                f"checkpoint of {point['at']} saw entry {seq}: its tail was cut off"
            )
        if found.get(seq) != point["hash"]:
            return AnchorReport(
                False, len(points), problem=f"audit entry {seq} (or one before it) differs from what the "
                f"signed checkpoint of {point['at']} recorded: the ledger was edited and re-chained"
            )
    newest = points[-1]
    intervals = store.intervals()
    usage, rows = usage_digest(intervals, parse_timestamp(str(newest["at"])))
    if (usage, rows) != (newest["usage"], newest["usage_rows"]):
        return AnchorReport(
            False, len(points), problem=f"the usage ledger's closed intervals differ from what the signed "
            f"checkpoint of {newest['at']} recorded ({rows} rows now, {newest['usage_rows']} then)"
        )
    return AnchorReport(ok=True, checkpoints=len(points), covered_seq=int(newest["seq"]))
