"""audit_detail_console: the typed detail of a ``console`` audit entry — a request made in the web console.

Every state-changing request of the console (sync now, run due backups, retry a failed
server, acknowledge an alert) is one ``console`` entry, its actor ``console:<user>``, with
this detail: what was asked, of what, by which role and how the user signed in. Encodes to
the exact text the ledger holds, decodes to None on anything else (see ``audit_detail``).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any, ClassVar, Self

from reconciler.core.audit_detail_base import JsonDetail, text_field


class ConsoleRequestKind(StrEnum):
    """What a console user asked for (closed set)."""

    SYNC = "sync"  # a fetch and a cycle now
    RUN_BACKUPS = "run-backups"  # a cycle now, which takes every backup that is due
    RETRY = "retry"  # forget a failed server's backoff, and a cycle now
    ACKNOWLEDGE = "acknowledge"  # an alert (its audit seq) is seen and handled


@dataclass(frozen=True)
class ConsoleRequest(JsonDetail):
    """One request made in the console: the kind, its target ('' for none), the role, the sign-in."""

    _sort_keys: ClassVar[bool] = True

    request: ConsoleRequestKind
    target: str
    role: str
    via: str

    def _fields(self) -> dict[str, object]:
        return {"request": self.request.value, "target": self.target, "role": self.role, "via": self.via}

    @classmethod
    def _from_fields(cls, data: dict[str, Any]) -> Self:
        return cls(
            request=ConsoleRequestKind(text_field(data, "request")),
            target=text_field(data, "target"),
            role=text_field(data, "role"),
            via=text_field(data, "via"),
        )
