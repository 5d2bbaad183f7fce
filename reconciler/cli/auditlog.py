"""cli.auditlog: renders the audit ledger for people (a table that fits the terminal) and machines
(JSON lines), and turns ``audit log``'s filters into a ``core.records.AuditQuery``.

Every entry names two people: the operator who ran it (``actor``) and the author of the
change (``author``, with the ``committer``); entries written before authors were recorded
(state schema 2 and older) say ``unknown``. JSON lines keep their shape — one object an
entry, ``actor`` as before — with ``author`` and ``committer`` added (null when unknown).
"""

from __future__ import annotations

import argparse
import json
import shutil
from collections.abc import Iterable
from dataclasses import asdict
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from reconciler.cli.common import LazyChoices
from reconciler.core.clock import isoformat, parse_timestamp
from reconciler.core.errors import UserError

if TYPE_CHECKING:  # ``add_filters`` builds part of every command's parser: it must not import the records
    from reconciler.core.records import AuditEntry, AuditQuery

UNKNOWN = "unknown"
DEFAULT_WIDTH = 100  # when the width cannot be told (not a terminal, no $COLUMNS)
MIN_WIDTH = 60


def _actions() -> list[str]:
    from reconciler.core.records import AuditAction

    return [a.value for a in AuditAction]


def add_filters(parser: argparse.ArgumentParser) -> None:
    """``audit log``'s filters."""
    parser.add_argument(
        "--key", help="entries of this key, or of every key below it (shop/web: shop/web/0, …)"
    )
    parser.add_argument(
        "--action",
        action="append",
        choices=LazyChoices(_actions),
        metavar="ACTION",
        help="entries of this action (repeat for several): %(choices)s",
    )
    parser.add_argument(  # here a filter: the log parser takes no operator --actor
        "--actor", dest="who", metavar="TEXT",
        help="entries whose operator or author contains TEXT (case ignored)",
    )
    parser.add_argument("--commit", metavar="SHA", help="entries of commits starting with SHA")
    parser.add_argument(
        "--since", metavar="TIME", help="entries at or after TIME (ISO 8601, or a date: 2026-11-01)"
    )
    parser.add_argument(
        "--until", metavar="TIME", help="entries before TIME (ISO 8601, or a date: that whole day)"
    )
    parser.add_argument(
        "--limit", type=int, metavar="N", help="only the newest N entries (still oldest first)"
    )


def _moment(text: str | None, option: str) -> datetime | None:
    if text is None:
        return None
    try:
        return parse_timestamp(text if "T" in text or " " in text else f"{text}T00:00:00Z")
    except (UserError, ValueError):
        raise UserError(
            f"{option} {text!r}: give an ISO 8601 time (2026-11-01T12:00:00Z) or a date"
        ) from None


def query_of(args: argparse.Namespace) -> AuditQuery:
    """The filters given to ``audit log`` as one query (``--until DATE`` takes in that whole day)."""
    from reconciler.core.records import AuditAction, AuditQuery

    if args.limit is not None and args.limit < 1:
        raise UserError(f"--limit {args.limit}: give a number of entries, 1 or more")
    until = _moment(args.until, "--until")
    if until is not None and args.until is not None and "T" not in args.until and " " not in args.until:
        until += timedelta(days=1)
    return AuditQuery(
        deployment=args.deployment,
        key=args.key,
        actions=tuple(AuditAction(a) for a in args.action or ()),
        actor=args.who,
        commit=args.commit,
        since=_moment(args.since, "--since"),
        until=until,
        limit=args.limit,
    )


def entry_to_dict(entry: AuditEntry) -> dict[str, object]:
    data: dict[str, object] = {"seq": entry.seq, "at": isoformat(entry.at)}
    record = asdict(entry.record)
    record["action"] = entry.record.action.value
    record["outcome"] = entry.record.outcome.value
    data.update(record)
    data["prev_hash"] = entry.prev_hash
    data["hash"] = entry.hash
    return data


def format_json(entries: Iterable[AuditEntry]) -> str:
    return "".join(json.dumps(entry_to_dict(e), sort_keys=True) + "\n" for e in entries)


def _author(entry: AuditEntry) -> str:
    record = entry.record
    if record.author is None:
        return UNKNOWN
    if record.committer and record.committer != record.author:
        return f"{record.author} (committed by {record.committer})"
    return record.author


def terminal_width() -> int:
    """The terminal's width ($COLUMNS first), else ``DEFAULT_WIDTH``; never under ``MIN_WIDTH``."""
    return max(MIN_WIDTH, shutil.get_terminal_size((DEFAULT_WIDTH, 24)).columns)


def format_table(entries: Iterable[AuditEntry], *, color: bool = False, width: int | None = None) -> str:
    """The entries as a table ``width`` columns wide (the terminal's), two lines an entry: when and
    which commit, the operator and the author, the action and its key, the resource and the detail.
    Long cells fold within their column; the table never grows wider than ``width``."""
    from rich.console import Console  # here: building the parser (``add_filters``) must not import rich
    from rich.table import Table

    table = Table(box=None, pad_edge=False, show_lines=False)
    table.add_column("seq", no_wrap=True, justify="right")
    table.add_column("at\ncommit", no_wrap=True, min_width=19)
    table.add_column("operator\nauthor", overflow="fold", ratio=2)
    table.add_column("action\nkey", overflow="fold", ratio=2)
    table.add_column("resource\ndetail", overflow="fold", ratio=3)
    for e in entries:
        r = e.record
        resource = "/".join(part for part in (r.provider, r.resource_id) if part)
        table.add_row(
            str(e.seq),
            f"{e.at.strftime('%Y-%m-%d %H:%M:%S')}\n{r.commit[:12] or '-'}",
            f"{r.actor}\n{_author(e) or '-'}",
            f"{r.action.value} {r.outcome.value}\n{r.key or '-'}",
            f"{resource or '-'}\n{r.error or r.detail or '-'}",
        )
    console = Console(
        width=width or terminal_width(), record=True, force_terminal=color,
        color_system="standard" if color else None,
    )
    with console.capture() as capture:
        console.print(table)
    return capture.get()
