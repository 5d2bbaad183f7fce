"""audit_detail_adopt: the typed details of taking over servers and letting them go.

``adopt``: intent and success → ``AdoptDetail`` (which server, as which generation and spec
hash, at what size); ``forget``: intent → ``ForgetDetail`` (which server, under which name).
Each encodes to the exact text the ledger holds and decodes to None on anything else (see
``audit_detail``, which dispatches on the entry's action). ``AdoptDetail`` carries the
integer ``generation`` the store reads for ``max_generation``, like a create's intent.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Self

from reconciler.core.audit_detail_base import JsonDetail, int_field, size_from_text, text_field
from reconciler.core.model import Size


@dataclass(frozen=True)
class AdoptDetail(JsonDetail):
    """An adoption: the server taken over, the generation and spec hash written on it, its size."""

    server: str  # the resource id
    generation: int
    spec_hash: str
    size: Size

    def _fields(self) -> dict[str, object]:
        return {
            "adopt": self.server,
            "generation": self.generation,
            "spec_hash": self.spec_hash,
            "server_size": str(self.size),  # not "size": a create's intent is not to read it as its own
        }

    @classmethod
    def _from_fields(cls, data: dict[str, Any]) -> Self:
        return cls(
            server=text_field(data, "adopt"),
            generation=int_field(data, "generation"),
            spec_hash=text_field(data, "spec_hash"),
            size=size_from_text(data["server_size"], "server_size"),
        )


@dataclass(frozen=True)
class ForgetDetail(JsonDetail):
    """A ``forget``: the server whose marks are removed, and its name (it keeps running)."""

    server: str  # the resource id
    name: str

    def _fields(self) -> dict[str, object]:
        return {"forget": self.server, "name": self.name}

    @classmethod
    def _from_fields(cls, data: dict[str, Any]) -> Self:
        return cls(server=text_field(data, "forget"), name=text_field(data, "name"))
