"""core.changes: one planned action on one server key — what diff decides and the graph orders.

A change says *what* (``action``) and *why* (``cause``), both closed enums that code may
decide on; ``reason`` and ``fields`` say the same for people and are never decided on.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from reconciler.core.keys import cluster_of
from reconciler.core.model import (
    Action,
    DesiredServer,
    ObservedServer,
)


class ChangeCause(StrEnum):
    """Why diff planned a change (closed set). One per change: the first that applies, in this order
    for changes to a running key — failed, stopped, size-changed, tags-changed, marks-changed."""

    NOT_PRESENT = "not-present"  # create: no server has the key
    MOVED = "moved"  # create on the new provider and delete on the old one
    DUPLICATE = "duplicate"  # delete: a second server carries the key
    NO_LONGER_DECLARED = "no-longer-declared"  # delete: the key left the desired state
    SPEC_CHANGED = "spec-changed"  # replace: image, disk, scripts or inputs changed
    FAILED = "failed"  # the server is in error: failover by replace or restart
    STOPPED = "stopped"  # the server is stopped and drift heals it
    SIZE_CHANGED = "size-changed"  # cpus, memory or flavor differ: resize or replace
    TAGS_CHANGED = "tags-changed"  # tags differ: update in place
    MARKS_CHANGED = "marks-changed"  # the protect or backup-policy mark differs: rewrite it in place
    ADOPTED = "adopted"  # adopt: a server that already runs is named by the member's adopt: entry

    @property
    def is_failover(self) -> bool:
        """A server that is not running is being brought back (the daemon's failover guards apply)."""
        return self in (ChangeCause.FAILED, ChangeCause.STOPPED)


@dataclass(frozen=True)
class FieldChange:
    """One attribute that differs between observed and desired, for display."""

    name: str
    before: str
    after: str


@dataclass(frozen=True)
class Change:
    """One action on one server key. ``id`` is unique within the plan."""

    id: str
    action: Action
    key: str
    provider: str
    cause: ChangeCause
    reason: str  # for people: apply and the daemon decide on ``action`` and ``cause``
    before: ObservedServer | None = None
    after: DesiredServer | None = None
    token: str | None = None  # for CREATE / REPLACE: idempotency token of the new server
    generation: int = 0  # generation of the new server (CREATE / REPLACE)
    depends_on: tuple[str, ...] = ()  # ids of changes that must finish first
    fields: tuple[FieldChange, ...] = ()  # for display only

    @property
    def cluster(self) -> str:
        return cluster_of(self.key)
