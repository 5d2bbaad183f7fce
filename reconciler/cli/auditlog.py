"""cli.auditlog: renders the audit ledger for people (table) and machines (JSON lines)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict

from rich.console import Console
from rich.table import Table

from reconciler.core.clock import isoformat
from reconciler.core.records import AuditEntry


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


def format_table(entries: Iterable[AuditEntry], *, color: bool = False) -> str:
    table = Table(box=None, pad_edge=False)
    for column in (
        "seq",
        "at",
        "actor",
        "commit",
        "action",
        "outcome",
        "key",
        "provider",
        "resource",
        "detail",
    ):
        table.add_column(column, overflow="fold")
    for e in entries:
        r = e.record
        table.add_row(
            str(e.seq),
            isoformat(e.at),
            r.actor,
            r.commit[:10],
            r.action.value,
            r.outcome.value,
            r.key,
            r.provider,
            r.resource_id,
            r.error or r.detail,
        )
    console = Console(
        width=200, record=True, force_terminal=color, color_system="standard" if color else None
    )
    with console.capture() as capture:
        console.print(table)
    return capture.get()
