"""audit_detail_base: the two shapes of an audit entry's detail, and the checked field readers.

A detail is one JSON object (``JsonDetail``: its fields in the order they are written,
``sort_keys`` where the ledger has always used it) or one sentence for people
(``TextDetail``). Both decode to ``None`` on anything that is not theirs; the field readers
raise ``Malformed`` (a ``ValueError``) on a missing or mistyped field, which ``decode``
turns into ``None``. The kinds themselves are in ``audit_detail`` and ``audit_detail_daemon``.
"""

from __future__ import annotations

import json
import re
from abc import ABC, abstractmethod
from datetime import UTC, datetime
from typing import Any, ClassVar, Self

from reconciler.core.model import Size


class Malformed(ValueError):
    """A field of a detail is missing or of the wrong type."""


# --- field readers ------------------------------------------------------------------------------
def json_object(text: str) -> dict[str, Any] | None:
    try:
        parsed = json.loads(text)
    except (ValueError, RecursionError):
        return None
    return parsed if isinstance(parsed, dict) else None


def text_field(data: dict[str, Any], key: str) -> str:
    value = data[key]
    if not isinstance(value, str):
        raise Malformed(key)
    return value


def optional_text(data: dict[str, Any], key: str) -> str | None:
    return None if data.get(key) is None else text_field(data, key)


def int_field(data: dict[str, Any], key: str) -> int:
    value = data[key]
    if isinstance(value, bool) or not isinstance(value, int):
        raise Malformed(key)
    return value


def number(value: object, what: str) -> float:
    """An int or float as JSON gave it (kept as is, so it encodes to the same text again)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise Malformed(what)
    return value


_SIZE_TEXT = re.compile(r"(\d+) vCPU, (\d+) MB, (\d+) GB")


def size_from_text(text: object, what: str) -> Size:
    """A Size from its ``str()``: ``2 vCPU, 4096 MB, 40 GB``."""
    match = _SIZE_TEXT.fullmatch(text) if isinstance(text, str) else None
    if match is None:
        raise Malformed(what)
    return Size(int(match[1]), int(match[2]), int(match[3]))


def size_from_object(value: object, what: str) -> Size:
    """A Size from ``{"cpus": …, "memory_mb": …, "disk_gb": …}``."""
    if not isinstance(value, dict):
        raise Malformed(what)
    return Size(int_field(value, "cpus"), int_field(value, "memory_mb"), int_field(value, "disk_gb"))


def moment_field(text: str) -> datetime:
    """An aware UTC time from the ISO 8601 text the ledgers write (``…Z``)."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise Malformed("a time without a zone")
    return moment.astimezone(UTC)


# --- the two shapes of detail -------------------------------------------------------------------
class JsonDetail(ABC):
    """A detail written as one JSON object."""

    _sort_keys: ClassVar[bool] = False

    @abstractmethod
    def _fields(self) -> dict[str, object]:
        """The JSON object, its keys in the order they are written."""

    @classmethod
    @abstractmethod
    def _from_fields(cls, data: dict[str, Any]) -> Self:
        """The detail from its JSON object; raises KeyError, TypeError or ValueError."""

    def encode(self) -> str:
        return json.dumps(self._fields(), sort_keys=self._sort_keys)

    @classmethod
    def decode(cls, text: str) -> Self | None:
        data = json_object(text)
        if data is None:
            return None
        try:
            return cls._from_fields(data)
        except (KeyError, TypeError, ValueError):
            return None


class TextDetail(ABC):
    """A detail written as a sentence for people."""

    @abstractmethod
    def encode(self) -> str: ...

    @classmethod
    @abstractmethod
    def _parse(cls, text: str) -> Self | None:
        """The detail from its sentence; None when it is not one of this kind."""

    @classmethod
    def decode(cls, text: str) -> Self | None:
        try:
            return cls._parse(text)
        except ValueError:
            return None
