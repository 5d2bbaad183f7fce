"""changes: one planned action on one server key — what diff decides and the graph orders."""

from __future__ import annotations

from dataclasses import dataclass

from reconciler.core.model import (
    Action,
    DesiredServer,
    ObservedServer,
)


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
    reason: str
    before: ObservedServer | None = None
    after: DesiredServer | None = None
    token: str | None = None  # for CREATE / REPLACE: idempotency token of the new server
    generation: int = 0  # generation of the new server (CREATE / REPLACE)
    depends_on: tuple[str, ...] = ()  # ids of changes that must finish first
    fields: tuple[FieldChange, ...] = ()

    @property
    def cluster(self) -> str:
        return self.key.split("/")[0]
