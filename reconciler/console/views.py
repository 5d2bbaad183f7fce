"""console.views: what a page shows of a snapshot — query parameters checked, filters, paging, order.

Query parameters are checked like any other input: a bad one is a ``BadRequest`` naming the
parameter and what it accepts (answered 400), never a traceback. Lists keep the snapshot's
natural key order (``web/2`` before ``web/10``); the plan shows destructive changes first
(delete, replace, then update and create), each group in natural key order. Paging is
server-side: a page of a 10,000-server list renders only its own rows.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Generic, TypeVar
from urllib.parse import urlencode

from reconciler.console.snapshot import STATUSES, SYNC_STATES, ServerRow
from reconciler.core.changes import Change
from reconciler.core.clock import parse_timestamp
from reconciler.core.errors import UserError
from reconciler.core.keys import natural_key
from reconciler.core.model import Action

T = TypeVar("T")
PER_PAGE = 50
MAX_PER_PAGE = 500
MAX_TEXT = 200
_DESTRUCTIVE_FIRST = {Action.DELETE: 0, Action.REPLACE: 1, Action.UPDATE: 2, Action.CREATE: 3, Action.NOOP: 4}


class BadRequest(Exception):
    """A query parameter or form field that is not what the page accepts (answered 400)."""


def text_param(params: Mapping[str, str], name: str, *, choices: Sequence[str] | None = None) -> str:
    value = params.get(name, "").strip()
    if len(value) > MAX_TEXT:
        raise BadRequest(f"{name} is longer than {MAX_TEXT} characters")
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise BadRequest(f"{name} holds a control character")
    if value and choices is not None and value not in choices:
        raise BadRequest(f"{name} {value!r} is not one of: {', '.join(choices)}")
    return value


def int_param(params: Mapping[str, str], name: str, default: int, *, low: int = 1, high: int = 10**9) -> int:
    raw = params.get(name, "").strip()
    if not raw:
        return default
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise BadRequest(f"{name} must be a whole number from {low} to {high}, not {raw[:20]!r}")
    return int(raw)


def time_param(params: Mapping[str, str], name: str) -> datetime | None:
    raw = text_param(params, name)
    if not raw:
        return None
    try:
        return parse_timestamp(raw, what=name)
    except UserError as exc:
        raise BadRequest(exc.diagnostics[0].message) from None


@dataclass(frozen=True)
class Page(Generic[T]):
    items: tuple[T, ...]
    number: int
    per_page: int
    total: int | None  # None: not counted (the audit ledger); ``more`` says whether a next page exists
    more: bool

    @property
    def pages(self) -> int | None:
        return None if self.total is None else max(1, math.ceil(self.total / self.per_page))

    @property
    def first_index(self) -> int:
        return (self.number - 1) * self.per_page


def paginate(items: Sequence[T], number: int, per_page: int) -> Page[T]:
    start = (number - 1) * per_page
    return Page(
        tuple(items[start : start + per_page]), number, per_page, len(items), start + per_page < len(items)
    )


def page_params(params: Mapping[str, str]) -> tuple[int, int]:
    return int_param(params, "page", 1), int_param(params, "per_page", PER_PAGE, high=MAX_PER_PAGE)


@dataclass(frozen=True)
class ServerFilter:
    provider: str = ""
    cluster: str = ""
    status: str = ""
    sync: str = ""
    q: str = ""  # part of the key

    @classmethod
    def parse(cls, params: Mapping[str, str]) -> ServerFilter:
        return cls(
            provider=text_param(params, "provider"),
            cluster=text_param(params, "cluster"),
            status=text_param(params, "status", choices=STATUSES),
            sync=text_param(params, "sync", choices=SYNC_STATES),
            q=text_param(params, "q"),
        )

    def keep(self, row: ServerRow) -> bool:
        return (
            (not self.provider or row.provider == self.provider)
            and (not self.cluster or row.cluster == self.cluster)
            and (not self.status or row.status == self.status)
            and (not self.sync or row.sync == self.sync)
            and (not self.q or self.q in row.key)
        )

    def query(self, **extra: object) -> str:
        """The query string of this filter (and ``extra``), for links to other pages of it."""
        values = {k: v for k, v in vars(self).items() if v}
        values.update({k: str(v) for k, v in extra.items() if v not in (None, "")})
        return urlencode(values)


def filter_rows(rows: Sequence[ServerRow], wanted: ServerFilter) -> list[ServerRow]:
    if wanted == ServerFilter():
        return list(rows)
    return [row for row in rows if wanted.keep(row)]


def destructive_first(changes: Sequence[Change]) -> list[Change]:
    return sorted(changes, key=lambda c: (_DESTRUCTIVE_FIRST[c.action], natural_key(c.key), c.id))


def age(since: datetime | None, now: datetime) -> str:
    """``3d 4h``, ``5h 2m``, ``40s``: how long ago, for people."""
    if since is None:
        return ""
    seconds = max(0, int((now - since.astimezone(UTC)).total_seconds()))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    return f"{minutes}m {secs}s" if minutes else f"{secs}s"


def within(moment: datetime, since: datetime | None, until: datetime | None) -> bool:
    return (since is None or moment >= since) and (until is None or moment < until)


def window(days: int, now: datetime) -> tuple[datetime, datetime]:
    return now - timedelta(days=days), now
