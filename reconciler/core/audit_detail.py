"""audit_detail: the typed ``detail`` of every kind of audit entry, and its codec.

An audit entry's ``detail`` is text in the ledger: JSON for most kinds, a human sentence for
a few. Each kind here is a frozen dataclass with

* ``encode()`` — the exact text the ledger has always held for it (same keys in the same
  order, ``sort_keys`` where it was used, the same sentences), so old and new entries read
  alike and the hash chain covers the same bytes; and
* ``decode(text)`` — the typed detail again, or ``None`` for text that is not one (an
  older, foreign or damaged entry: a reader skips it, it never crashes on it).

``decode_detail(record)`` picks the kind from the entry's action and outcome.
``detail_generation`` is the one reader the store needs: the integer ``"generation"`` of an
intent's JSON detail, by the same rule as SQLite's ``json_type(detail, '$.generation')``.

The kinds of the engine's entries are here, the daemon's in ``audit_detail_daemon`` (and
re-exported here, so every kind is imported from this module). Which entries carry which
detail (action: outcome → kind):

* ``create``: intent → ``CreateIntent`` (a restore's names its backup); a restore's
  success → ``RestoredFrom``
* ``update``: intent → ``Resize``; ``stop``/``start`` around a backup: intent → ``QuiesceDetail``
* ``snapshot``: intent and success → ``SnapshotDetail``; ``delete-snapshot``: intent → ``PruneDetail``
* ``delete`` by a restore: intent → ``ReplacedByRestore``
* any action: recovered or abandoned → ``IntentSettled``
* ``run.start``/``run.end`` → ``ApplyStarted``/``ApplyEnded`` or ``DaemonStarted``/``DaemonStopped``
* ``observe.gone`` → ``ServerGone``; ``scale`` → ``ScaleDetail``; ``failover`` → ``FailoverDetail``;
  ``failure.seen`` → ``FailureSighting``; ``alert`` → ``AlertDetail``; ``commit`` → ``CommitAdopted``
* ``rejected``: failed → ``CommitRejected`` (an invalid commit) or ``PolicyDenied`` (a commit a
  deny Policy refuses), info → ``PlanRefused``
* ``window.override`` → ``WindowOverride`` (``apply --override-window``)
* ``adopt``: intent and success → ``AdoptDetail``; ``forget``: intent → ``ForgetDetail``
  (both in ``audit_detail_adopt``, re-exported here)
* ``console`` → ``ConsoleRequest`` (a request made in the web console; ``audit_detail_console``)
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar, Self

from reconciler.core.audit_detail_adopt import AdoptDetail, ForgetDetail
from reconciler.core.audit_detail_base import (
    JsonDetail,
    TextDetail,
    int_field,
    json_object,
    moment_field,
    number,
    optional_text,
    size_from_object,
    size_from_text,
    text_field,
)
from reconciler.core.audit_detail_console import ConsoleRequest
from reconciler.core.audit_detail_daemon import (
    AlertDetail,
    CommitAdopted,
    CommitRejected,
    DaemonStarted,
    DaemonStopped,
    FailoverDetail,
    FailureSighting,
    PlanRefused,
    PolicyDenied,
    ScaleDetail,
    WindowOverride,
)
from reconciler.core.backups import BackupKind
from reconciler.core.clock import isoformat
from reconciler.core.model import BackupMethod, Quiesce, Size
from reconciler.core.records import AuditAction, AuditRecord, Outcome

# Every kind is imported from here, the daemon's too.
__all__ = [
    "AdoptDetail",
    "AlertDetail",
    "ApplyEnded",
    "ApplyStarted",
    "AuditDetail",
    "CommitAdopted",
    "CommitRejected",
    "ConsoleRequest",
    "CreateIntent",
    "DaemonStarted",
    "DaemonStopped",
    "FailoverDetail",
    "FailureSighting",
    "ForgetDetail",
    "IntentSettled",
    "PlanRefused",
    "PolicyDenied",
    "PruneDetail",
    "QuiesceDetail",
    "ReplacedByRestore",
    "Resize",
    "RestoredFrom",
    "ScaleDetail",
    "ServerGone",
    "SnapshotDetail",
    "WindowOverride",
    "decode_detail",
    "detail_generation",
    "encode_detail",
]

_INT64 = 2**63


# --- server changes ----------------------------------------------------------------------------
@dataclass(frozen=True)
class CreateIntent(JsonDetail):
    """A create's (or replace's) intent: the generation, spec hash and size of the new server.

    ``restore_from``: the backup a restore creates it from (absent for a plain create)."""

    generation: int
    spec_hash: str
    size: Size
    restore_from: str | None = None

    def _fields(self) -> dict[str, object]:
        fields: dict[str, object] = {
            "generation": self.generation,
            "spec_hash": self.spec_hash,
            "size": str(self.size),
        }
        if self.restore_from is not None:
            fields["restore_from"] = self.restore_from
        return fields

    @classmethod
    def _from_fields(cls, data: dict[str, Any]) -> Self:
        return cls(
            generation=int_field(data, "generation"),
            spec_hash=text_field(data, "spec_hash"),
            size=size_from_text(data["size"], "size"),
            restore_from=optional_text(data, "restore_from"),
        )


@dataclass(frozen=True)
class RestoredFrom(JsonDetail):
    """A restore's create outcome: the backup the server was created from."""

    snapshot_id: str

    def _fields(self) -> dict[str, object]:
        return {"restored_from": self.snapshot_id}

    @classmethod
    def _from_fields(cls, data: dict[str, Any]) -> Self:
        return cls(snapshot_id=text_field(data, "restored_from"))


@dataclass(frozen=True)
class Resize(JsonDetail):
    """An update's intent: the size before and the size asked for."""

    before: Size
    after: Size

    def _fields(self) -> dict[str, object]:
        return {"from": str(self.before), "to": str(self.after)}

    @classmethod
    def _from_fields(cls, data: dict[str, Any]) -> Self:
        return cls(before=size_from_text(data["from"], "from"), after=size_from_text(data["to"], "to"))


@dataclass(frozen=True)
class ReplacedByRestore(TextDetail):
    """A delete's intent when a restore replaces the server."""

    TEXT: ClassVar[str] = "replaced by a restore"

    def encode(self) -> str:
        return self.TEXT

    @classmethod
    def _parse(cls, text: str) -> Self | None:
        return cls() if text == cls.TEXT else None


@dataclass(frozen=True)
class IntentSettled(TextDetail):
    """How an intent a killed run left open was settled: found by its token (a create, an
    adopt); observed to have taken effect (``effect``: the server observed stopped, running,
    gone, or no longer ours after a forget); or neither."""

    found: bool
    effect: str = ""  # "stopped", "running", "gone" or "released": what observation showed took effect

    FOUND: ClassVar[str] = "found by its idempotency token after an interrupted run"
    OBSERVED: ClassVar[str] = "settled by observation after an interrupted run"
    EFFECTS: ClassVar[tuple[str, ...]] = ("stopped", "running", "gone", "released")

    def encode(self) -> str:
        if self.found:
            return self.FOUND
        if self.effect:
            return f"it took effect: observed {self.effect} after an interrupted run"
        return self.OBSERVED

    @classmethod
    def _parse(cls, text: str) -> Self | None:
        effects = {cls(found=False, effect=e).encode(): cls(found=False, effect=e) for e in cls.EFFECTS}
        return {cls.FOUND: cls(found=True), cls.OBSERVED: cls(found=False), **effects}.get(text)


@dataclass(frozen=True)
class ServerGone(TextDetail):
    """``observe.gone``: a server vanished behind our back; its usage interval was closed."""

    TEXT: ClassVar[str] = "no longer observed; usage interval closed"

    def encode(self) -> str:
        return self.TEXT

    @classmethod
    def _parse(cls, text: str) -> Self | None:
        return cls() if text == cls.TEXT else None


# --- backups ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SnapshotDetail(JsonDetail):
    """A backup's snapshot intent, and (with ``size_gb``) its outcome.

    ``server_size`` is the size the server had when it was backed up (a restore reads it
    back). ``method`` is absent in entries written before backups had methods."""

    kind: BackupKind
    name: str
    policy: str
    method: BackupMethod | None
    server: str  # the resource id of the server backed up
    server_size: Size
    image: str
    size_gb: float | None = None  # the outcome: the backup's size

    def _fields(self) -> dict[str, object]:
        size = self.server_size
        fields: dict[str, object] = {"backup": self.kind.value, "name": self.name, "policy": self.policy}
        if self.method is not None:
            fields["method"] = self.method.value
        fields["server"] = self.server
        fields["server_size"] = {"cpus": size.cpus, "memory_mb": size.memory_mb, "disk_gb": size.disk_gb}
        fields["image"] = self.image
        if self.size_gb is not None:
            fields["size_gb"] = self.size_gb
        return fields

    @classmethod
    def _from_fields(cls, data: dict[str, Any]) -> Self:
        method = optional_text(data, "method")
        size_gb = data.get("size_gb")
        return cls(
            kind=BackupKind(text_field(data, "backup")),
            name=text_field(data, "name"),
            policy=text_field(data, "policy"),
            method=None if method is None else BackupMethod(method),
            server=text_field(data, "server"),
            server_size=size_from_object(data["server_size"], "server_size"),
            image=text_field(data, "image"),
            size_gb=None if size_gb is None else number(size_gb, "size_gb"),
        )


@dataclass(frozen=True)
class QuiesceDetail(JsonDetail):
    """The stop before a backup (and the start after it) of a ``quiesce: shutdown`` policy."""

    backup: str  # the backup's name
    quiesce: Quiesce = Quiesce.SHUTDOWN

    def _fields(self) -> dict[str, object]:
        return {"backup": self.backup, "quiesce": self.quiesce.value}

    @classmethod
    def _from_fields(cls, data: dict[str, Any]) -> Self:
        return cls(backup=text_field(data, "backup"), quiesce=Quiesce(text_field(data, "quiesce")))


@dataclass(frozen=True)
class RestartedAfterBackup(TextDetail):
    """A start of a server that a backup stopped and whose run was killed before it started it."""

    TEXT: ClassVar[str] = "started again: a backup stopped it and its run was interrupted before starting it"

    def encode(self) -> str:
        return self.TEXT

    @classmethod
    def _parse(cls, text: str) -> Self | None:
        return cls() if text == cls.TEXT else None


@dataclass(frozen=True)
class PruneDetail(JsonDetail):
    """A prune's (``delete-snapshot``) intent: which backup, taken when, how big, and why."""

    name: str
    taken_at: datetime | None
    size_gb: float
    reason: str

    def _fields(self) -> dict[str, object]:
        return {
            "name": self.name,
            "taken_at": isoformat(self.taken_at) if self.taken_at else None,
            "size_gb": self.size_gb,
            "reason": self.reason,
        }

    @classmethod
    def _from_fields(cls, data: dict[str, Any]) -> Self:
        taken = optional_text(data, "taken_at")
        return cls(
            name=text_field(data, "name"),
            taken_at=None if taken is None else moment_field(taken),
            size_gb=number(data["size_gb"], "size_gb"),
            reason=text_field(data, "reason"),
        )


# --- runs ---------------------------------------------------------------------------------------
_APPLY_STARTED = re.compile(r"(\d+) changes from (.*?)(?:; commit message: (.*))?", re.DOTALL)
_APPLY_ENDED = re.compile(r"(\d+) succeeded, (\d+) failed or skipped")


@dataclass(frozen=True)
class ApplyStarted(TextDetail):
    """An apply's ``run.start``: how many changes, from where, and the commit's message."""

    changes: int
    source: str  # the plan's source path, or "a plan file"
    message: str = ""

    def encode(self) -> str:
        text = f"{self.changes} changes from {self.source}"
        return text + (f"; commit message: {self.message}" if self.message else "")

    @classmethod
    def _parse(cls, text: str) -> Self | None:
        match = _APPLY_STARTED.fullmatch(text)
        if match is None:
            return None
        return cls(changes=int(match[1]), source=match[2], message=match[3] or "")


@dataclass(frozen=True)
class ApplyEnded(TextDetail):
    """An apply's ``run.end``: changes that succeeded, and those that failed or were skipped."""

    succeeded: int
    failed: int

    def encode(self) -> str:
        return f"{self.succeeded} succeeded, {self.failed} failed or skipped"

    @classmethod
    def _parse(cls, text: str) -> Self | None:
        match = _APPLY_ENDED.fullmatch(text)
        return None if match is None else cls(succeeded=int(match[1]), failed=int(match[2]))


AuditDetail = (
    CreateIntent
    | RestoredFrom
    | Resize
    | ReplacedByRestore
    | IntentSettled
    | ServerGone
    | SnapshotDetail
    | QuiesceDetail
    | RestartedAfterBackup
    | PruneDetail
    | ApplyStarted
    | ApplyEnded
    | DaemonStarted
    | DaemonStopped
    | ScaleDetail
    | FailoverDetail
    | FailureSighting
    | AlertDetail
    | CommitAdopted
    | CommitRejected
    | PlanRefused
    | PolicyDenied
    | WindowOverride
    | AdoptDetail
    | ForgetDetail
    | ConsoleRequest
)

_KINDS: dict[AuditAction, tuple[type[AuditDetail], ...]] = {
    AuditAction.CREATE: (CreateIntent, RestoredFrom),
    AuditAction.UPDATE: (Resize,),
    AuditAction.DELETE: (ReplacedByRestore,),
    AuditAction.START: (QuiesceDetail, RestartedAfterBackup),
    AuditAction.STOP: (QuiesceDetail,),
    AuditAction.SNAPSHOT: (SnapshotDetail,),
    AuditAction.DELETE_SNAPSHOT: (PruneDetail,),
    AuditAction.RUN_START: (ApplyStarted, DaemonStarted),
    AuditAction.RUN_END: (ApplyEnded, DaemonStopped),
    AuditAction.OBSERVE_GONE: (ServerGone,),
    AuditAction.REJECTED: (CommitRejected, PolicyDenied, PlanRefused),
    AuditAction.ALERT: (AlertDetail,),
    AuditAction.SCALE: (ScaleDetail,),
    AuditAction.FAILOVER: (FailoverDetail,),
    AuditAction.FAILURE_SEEN: (FailureSighting,),
    AuditAction.COMMIT: (CommitAdopted,),
    AuditAction.WINDOW_OVERRIDE: (WindowOverride,),
    AuditAction.ADOPT: (AdoptDetail,),
    AuditAction.FORGET: (ForgetDetail,),
    AuditAction.CONSOLE: (ConsoleRequest,),
}


def decode_detail(record: AuditRecord) -> AuditDetail | None:
    """The typed detail of an entry, by its action and outcome (None: none, or unreadable)."""
    if record.outcome in (Outcome.RECOVERED, Outcome.ABANDONED):
        return IntentSettled.decode(record.detail)
    for kind in _KINDS.get(record.action, ()):
        found = kind.decode(record.detail)
        if found is not None:
            return found
    return None


def encode_detail(detail: AuditDetail | str) -> str:
    """The ledger text of a typed detail; plain text as it is."""
    return detail if isinstance(detail, str) else detail.encode()


def detail_generation(detail: str) -> int | None:
    """The integer ``generation`` of a JSON-object ``detail`` (None for anything else).

    The store derives ``max_generation`` from it for every intent (a ``CreateIntent`` carries
    one). Mirrors SQLite's ``json_type(detail, '$.generation') = 'integer'``: booleans,
    floats, strings and numbers beyond 64 bits do not count.
    """
    parsed = json_object(detail)
    if parsed is None:
        return None
    value = parsed.get("generation")
    if isinstance(value, bool) or not isinstance(value, int) or not -_INT64 <= value < _INT64:
        return None
    return value
