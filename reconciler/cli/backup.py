"""cli.backup: the ``reconciler backup`` commands and ``reconciler restore``.

* ``backup list [PATH] [--key K] [--format table|json]`` — with PATH, the backups the clouds
  list now, judged against the policies (which the next run prunes, which key is overdue);
  without, the backups the ledger last recorded.
* ``backup run PATH [--key K] [--force]`` — take the due backups now and prune; exit 1 when
  a backup failed. The daemon runs the same cycle (``backup.cycle.backup_cycle_in_session``).
* ``backup usage [--from] [--to] [--format table|json]`` — backup storage per key, priced.
* ``backup delete PATH BACKUP_ID... [--yes]`` — delete backups by id (those no policy prunes:
  of keys removed from the desired state, or no longer under a policy).
* ``restore PATH KEY --from BACKUP_ID [--yes] [--skip-final-backup]`` — a server for KEY
  from one of its backups; a live server of KEY is replaced (after its own final backup).

Handlers only parse, call ``backup_cycle`` and print; everything is in the audit ledger.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reconciler.cli.common import EXIT_ERROR, EXIT_OK, PATH_HELP, color, format_option, month_start, workspace
from reconciler.core.clock import isoformat, parse_timestamp
from reconciler.core.errors import UserError

if TYPE_CHECKING:  # the handlers import what they run: building the parser must not import the engine
    from reconciler.backup.cycle import BackupListing
    from reconciler.core.backups import KeyStatus
    from reconciler.core.model import Snapshot
    from reconciler.run.audit import RunContext

def add_commands(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    help_text = "backups under BackupPolicies: list them, take the due ones now, their storage cost"
    p = sub.add_parser("backup", help=help_text, parents=[common], description=help_text)
    backup_sub = p.add_subparsers(dest="backup_command", required=True, metavar="SUBCOMMAND")

    q = backup_sub.add_parser(
        "list", parents=[common], help="list backups (live from the clouds with PATH, else from the ledger)"
    )
    q.add_argument("path", type=Path, nargs="?", help=PATH_HELP + " (default: the ledger's record)")
    q.add_argument("--deployment", help="owner mark (default: the folder's name)")
    q.add_argument("--key", action="append", help="only this server key (repeatable)")
    format_option(q, ["text", "json"], "a table (text) or JSON")
    q.set_defaults(handler=cmd_list)

    q = backup_sub.add_parser("run", parents=[common], help="take the due backups now and prune old ones")
    q.add_argument("path", type=Path, help=PATH_HELP)
    q.add_argument("--deployment", help="owner mark (default: the folder's name)")
    q.add_argument("--key", action="append", help="only this server key (repeatable)")
    q.add_argument("--force", action="store_true", help="take a backup even when none is due")
    q.set_defaults(handler=cmd_run)

    q = backup_sub.add_parser("usage", parents=[common], help="backup storage (GB-months) per key, priced")
    q.add_argument("--from", dest="start", help="start (ISO 8601, default: first of this month)")
    q.add_argument("--to", dest="end", help="end, exclusive (ISO 8601, default: now)")
    q.add_argument("--deployment", help="only this deployment")
    format_option(q, ["text", "json"], "a table (text) or JSON")
    q.set_defaults(handler=cmd_usage)

    q = backup_sub.add_parser(
        "delete", parents=[common], help="delete backups by id (e.g. the final backups of removed servers)"
    )
    q.add_argument("path", type=Path, help="the desired state (for its providers)")
    q.add_argument("backup_id", nargs="+", help="the backup ids (see `backup list PATH`)")
    q.add_argument("--deployment", help="owner mark (default: the folder's name)")
    q.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    q.set_defaults(handler=cmd_delete)

    help_text = "bring a server back from one of its backups"
    p = sub.add_parser("restore", help=help_text, parents=[common], description=help_text)
    p.add_argument("path", type=Path, help="the desired state (for the server's template)")
    p.add_argument("key", help="the server key, e.g. shop/db/0")
    p.add_argument("--from", dest="backup_id", required=True, help="the backup id (see `backup list`)")
    p.add_argument("--deployment", help="owner mark (default: the folder's name)")
    p.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    p.add_argument(
        "--skip-final-backup", action="store_true", help="replace a live server without its final backup"
    )
    p.set_defaults(handler=cmd_restore)


def _run(args: argparse.Namespace) -> RunContext:
    from reconciler.run.audit import new_run
    from reconciler.run.identity import detect_identity

    identity = detect_identity(args.path, getattr(args, "actor", None))
    return new_run(identity.actor, identity.commit, author=identity.author, committer=identity.committer)


def _hours(value: float | None) -> str:
    return "" if value is None else f"{value:.1f} h"


def _status_line(status: KeyStatus) -> str:
    newest = isoformat(status.newest_at) if status.newest_at else "none yet"
    due = isoformat(status.next_due) if status.next_due else "when its server exists"
    due = f"due since {due}" if status.due else f"next due {due}"
    line = f"{status.key}: policy {status.policy}, {status.backups} backup(s), newest {newest}, {due}"
    if status.overdue:
        line += f" — OVERDUE: {_hours(status.age_hours)} old, max_age_hours {status.max_age_hours:g}"
    return line


# --- backup run -------------------------------------------------------------------------------
def cmd_run(args: argparse.Namespace) -> int:
    from reconciler.backup.cycle import backup_cycle, check_keys
    from reconciler.config import load_desired_state
    from reconciler.core.backups import BackupKind
    from reconciler.run.backups import describe

    state = load_desired_state(args.path, deployment=args.deployment)
    keys = set(args.key) if args.key else None
    if keys is not None:
        check_keys(state, keys)
    ws = workspace(args)
    try:
        report = backup_cycle(state, ws, _run(args), force=args.force, keys=keys)
    finally:
        ws.close()
    for message in report.recovered:
        print(f"Recovered: {message}")
    if not report.results:
        print("No backups due.")
    for result in report.results:
        print(describe(result))
    for note in report.notes:
        print(f"Warning: {note}", file=sys.stderr)
    taken, pruned = report.count(BackupKind.TAKE), report.count(BackupKind.PRUNE)
    print(f"\nBackup run: {taken} taken, {pruned} pruned, {len(report.failures)} failed.")
    for status in report.overdue:
        print(f"Overdue: {_status_line(status)}")
    return EXIT_OK if report.ok else EXIT_ERROR


# --- backup list ------------------------------------------------------------------------------
def _table(columns: list[str], rows: list[list[str]], color: bool) -> str:
    from rich.console import Console
    from rich.table import Table

    table = Table(box=None, pad_edge=False)
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*row)
    console = Console(
        width=200, record=True, force_terminal=color, color_system="standard" if color else None
    )
    with console.capture() as capture:
        console.print(table)
    return "\n".join(line.rstrip() for line in capture.get().splitlines()) + "\n"


def _retention(listing: BackupListing, snap: Snapshot) -> str:
    """keep / prune (by the next run) / unmanaged (no policy of a declared key covers it)."""
    if snap.snapshot_id in listing.prunable:
        return "prune"
    return "keep" if any(st.key == snap.key for st in listing.statuses) else "unmanaged"


def _live(listing: BackupListing, args: argparse.Namespace) -> str:
    backups = [
        {
            "key": s.key,
            "backup_id": s.snapshot_id,
            "name": s.name,
            "taken_at": isoformat(s.created_at),
            "size_gb": s.size_gb,
            "policy": s.policy,
            "provider": s.provider,
            "status": s.status,
            "retention": _retention(listing, s),
        }
        for s in listing.snapshots
    ]
    keys = [
        {
            "key": st.key,
            "policy": st.policy,
            "backups": st.backups,
            "newest_at": isoformat(st.newest_at) if st.newest_at else None,
            "next_due": isoformat(st.next_due) if st.next_due else None,
            "age_hours": st.age_hours,
            "max_age_hours": st.max_age_hours,
            "due": st.due,
            "overdue": st.overdue,
        }
        for st in listing.statuses
        if args.key is None or st.key in args.key
    ]
    if args.format == "json":
        return json.dumps({"source": "clouds", "backups": backups, "keys": keys}, indent=2) + "\n"
    columns = ["key", "backup", "name", "taken at", "size GB", "policy", "provider", "retention"]
    rows = [
        [s.key, s.snapshot_id, s.name, isoformat(s.created_at), f"{s.size_gb:g}", s.policy or "", s.provider,
         _retention(listing, s)]
        for s in listing.snapshots
    ]
    text = _table(columns, rows, color(args)) if rows else "No backups.\n"
    lines = [_status_line(st) for st in listing.statuses if args.key is None or st.key in args.key]
    if any(_retention(listing, s) == "unmanaged" for s in listing.snapshots):
        lines.append("Unmanaged backups belong to no declared server under a policy: nothing prunes them; "
                     "remove them with `reconciler backup delete PATH BACKUP_ID`.")
    return text + ("\n" + "\n".join(lines) + "\n" if lines else "")


def _ledger(args: argparse.Namespace) -> str:
    ws = workspace(args)
    try:
        store = ws.existing_store()
        now = ws.clock.now()
        found = store.backup_intervals(start=now, deployment=args.deployment) if store is not None else []
    finally:
        ws.close()
    rows: list[dict[str, Any]] = [
        {
            "key": i.key,
            "backup_id": i.snapshot_id,
            "provider": i.provider,
            "policy": i.policy,
            "size_gb": i.size_gb,
            "since": isoformat(i.start),
        }
        for i in found
        if i.end is None and (args.key is None or i.key in args.key)
    ]
    if args.format == "json":
        return json.dumps({"source": "ledger", "backups": rows}, indent=2) + "\n"
    columns = ["key", "backup", "provider", "policy", "size GB", "since"]
    cells = [
        [r["key"], r["backup_id"], r["provider"], r["policy"], f"{r['size_gb']:g}", r["since"]] for r in rows
    ]
    text = _table(columns, cells, color(args)) if cells else "No backups recorded.\n"
    return text + "(as last recorded in the ledger; pass PATH to list what the clouds hold now)\n"


def cmd_list(args: argparse.Namespace) -> int:
    from reconciler.backup.cycle import inspect_backups
    from reconciler.config import load_desired_state

    if args.path is None:
        sys.stdout.write(_ledger(args))
        return EXIT_OK
    state = load_desired_state(args.path, deployment=args.deployment)
    ws = workspace(args)
    try:
        listing = inspect_backups(state, ws, keys=set(args.key) if args.key else None)
    finally:
        ws.close()
    sys.stdout.write(_live(listing, args))
    for note in listing.notes:
        print(f"Warning: {note}", file=sys.stderr)
    return EXIT_OK


# --- backup usage -----------------------------------------------------------------------------
def cmd_usage(args: argparse.Namespace) -> int:
    from reconciler.billing import backup_storage, usage

    ws = workspace(args)
    now = ws.clock.now()
    start = parse_timestamp(args.start, what="--from") if args.start else month_start(now)
    end = parse_timestamp(args.end, what="--to") if args.end else now
    if end <= start:
        raise UserError(f"--to ({isoformat(end)}) must be after --from ({isoformat(start)})")
    try:
        store = ws.existing_store()
        found = store.backup_intervals(start=start, end=end, deployment=args.deployment) if store else []
    finally:
        ws.close()
    report = backup_storage.backup_report(found, start=start, end=end, now=now)
    formatter = usage.format_json if args.format == "json" else usage.format_table
    sys.stdout.write(formatter(report))
    return EXIT_OK


# --- backup delete ----------------------------------------------------------------------------
def _confirmed(args: argparse.Namespace, what: str) -> bool:
    """--yes, or a 'yes' typed on a terminal (a UserError when there is no terminal to ask on)."""
    if args.yes:
        return True
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise UserError(f"refusing to {what} without --yes when not run on a terminal")
    return input(f"\nDo you want to {what}? Only 'yes' will be accepted: ").strip() == "yes"


def cmd_delete(args: argparse.Namespace) -> int:
    from reconciler.backup.cycle import delete_backups
    from reconciler.config import load_desired_state
    from reconciler.run.backups import BackupStatus, describe

    state = load_desired_state(args.path, deployment=args.deployment)

    def confirm(chosen: Sequence[Snapshot]) -> bool:
        print(f"{len(chosen)} backup(s) will be deleted for good:")
        for snap in chosen:
            print(f"  - {snap.key} {snap.snapshot_id} ({snap.name}, taken {isoformat(snap.created_at)}, "
                  f"{snap.size_gb:g} GB, on {snap.provider})")
        return _confirmed(args, "delete them")

    ws = workspace(args)
    try:
        results = delete_backups(state, ws, _run(args), args.backup_id, confirm=confirm)
    finally:
        ws.close()
    if results is None:
        print("Cancelled; nothing was deleted.")
        return EXIT_ERROR
    for result in results:
        print(describe(result))
    return EXIT_OK if all(r.status is BackupStatus.SUCCEEDED for r in results) else EXIT_ERROR


# --- restore ----------------------------------------------------------------------------------
def cmd_restore(args: argparse.Namespace) -> int:
    from reconciler.backup.restore import restore
    from reconciler.config import load_desired_state
    from reconciler.run.backups import describe

    state = load_desired_state(args.path, deployment=args.deployment)

    def confirm(description: str) -> bool:
        print(description)
        return _confirmed(args, "restore")

    ws = workspace(args)
    try:
        result = restore(
            state,
            ws,
            _run(args),
            args.key,
            args.backup_id,
            confirm=confirm,
            skip_final_backup=args.skip_final_backup,
        )
    finally:
        ws.close()
    if result.server is None:
        print("Cancelled; nothing was changed.")
        return EXIT_ERROR
    server = result.server
    print(f"Restored {server.key} as {server.resource_id} ({server.name}): {server.size}.")
    for backup in result.backups:
        print(describe(backup))
    for resource_id in result.replaced:
        print(f"Deleted the replaced server {resource_id}.")
    kept = [b for b in result.backups if not b.snapshot_id]
    return EXIT_ERROR if kept else EXIT_OK
