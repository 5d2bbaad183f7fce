"""cli.usage: the ``reconciler usage`` commands — report, collect, export.

``usage report`` prices the usage ledger for a window, by instance-hours (the intervals),
by measured use (the samples) or both side by side, as a table, CSV, JSON or a
self-contained HTML page; backup storage is in every mode. ``usage collect PATH`` samples
every provider's metrics once (``apply`` also does, once per run). ``usage export`` writes
one CSV row per server (or backup), per day, per resource. The store is asked for the
window only: its intervals, its backups, and its samples plus each server's baseline
(``read_ledger``). Handlers only parse, fetch from the store and print; the work is in
``billing.usage``, ``billing.measured``, ``billing.compare``, ``billing.export``, ``cli.report_html`` and
``measure``.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from reconciler.cli.common import (
    EXIT_ERROR,
    EXIT_OK,
    PATH_HELP,
    LazyChoices,
    color,
    format_option,
    month_start,
    out_option,
    workspace,
    write_out,
)
from reconciler.core.clock import parse_timestamp
from reconciler.core.errors import UserError

if TYPE_CHECKING:  # the handlers import what they run: building the parser must not import billing
    from reconciler.billing.measured import PriceListFor
    from reconciler.billing.modes import Ledger
    from reconciler.billing.usage import UsageReport

FORMATS = ("text", "csv", "json", "html")
DEFAULT_MODE = "billed"  # billing.modes.BILLED (a test holds them equal)


# ``LazyChoices`` with a metavar: argparse lists choices without one as each option is added.
def _groupings() -> tuple[str, ...]:
    from reconciler.billing.usage import GROUPINGS

    return GROUPINGS


def _report_modes() -> tuple[str, ...]:
    from reconciler.billing.modes import REPORT_MODES

    return REPORT_MODES


def _export_modes() -> tuple[str, ...]:
    from reconciler.billing.export import EXPORT_MODES

    return EXPORT_MODES


def add_commands(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    help_text = "usage and cost reports from the usage ledger"
    p = sub.add_parser("usage", help=help_text, parents=[common], description=help_text)
    usage_sub = p.add_subparsers(dest="usage_command", required=True, metavar="SUBCOMMAND")

    q = usage_sub.add_parser("report", parents=[common],
                             help="cost per group: instance-hours, measured or both",
                             description="Price the usage ledger for a window, grouped.")
    _window(q)
    q.add_argument("--by", choices=LazyChoices(_groupings), default="cluster", metavar="GROUP",
                   help="one row per this: %(choices)s (default cluster)")
    q.add_argument("--mode", choices=LazyChoices(_report_modes), default=DEFAULT_MODE, metavar="MODE",
                   help="billed (default: as each PriceList bills), instance-hours (time × rate), measured "
                        "(use × unit rates), or both side by side with the saving")
    format_option(q, FORMATS, "a table (text), CSV, JSON or one HTML page with charts")
    out_option(q, "the report")
    q.set_defaults(handler=cmd_report)

    q = usage_sub.add_parser("collect", parents=[common], help="sample every provider's usage counters once",
                             description="Observe every provider of the desired state and store its metrics.")
    q.add_argument("path", type=Path, help=PATH_HELP)
    q.add_argument("--deployment", help="owner mark (default: the folder's name)")
    q.set_defaults(handler=cmd_collect)

    q = usage_sub.add_parser("export", parents=[common], help="one CSV row per server, per day, per resource",
                             description="Export usage for a spreadsheet or a billing system.")
    _window(q)
    q.add_argument("--mode", choices=LazyChoices(_export_modes), default="instance-hours", metavar="MODE",
                   help="which rows: instance-hours, measured, or both (a 'mode' column tells them apart)")
    format_option(q, ["csv"], "CSV (the only one)", default="csv")
    out_option(q, "the CSV")
    q.set_defaults(handler=cmd_export)


def _window(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--from", dest="start", help="start (ISO 8601, default: first of this month)")
    parser.add_argument("--to", dest="end", help="end, exclusive (ISO 8601, default: now)")
    parser.add_argument("--deployment", help="only this deployment (default: every one in the ledger)")
    parser.add_argument("--prices", type=Path,
                        help="price with the PriceLists of this desired state (needed for measured costs)")


def read_ledger(args: argparse.Namespace, *, samples: bool) -> Ledger:
    """The window asked for, and what the store holds for it.

    Intervals overlap the window (when measuring: every one up to its end, as a server's
    creation is where its counters start); samples are those of the window plus, per
    server, its last one before it (``Store.window_samples``) — never the whole history;
    backups are those kept during the window.
    """
    from reconciler.billing.modes import Ledger

    ws = workspace(args)
    now = ws.clock.now()
    start = parse_timestamp(args.start, what="--from") if args.start else month_start(now)
    end = parse_timestamp(args.end, what="--to") if args.end else now
    if end <= start:
        raise UserError(f"--to ({end.isoformat()}) must be after --from ({start.isoformat()})")
    prices: PriceListFor | None = None
    if args.prices is not None:
        from reconciler.config import load_desired_state

        prices = load_desired_state(args.prices).price_list_for
    try:
        store = ws.existing_store()
        if store is None:
            return Ledger(start, end, now, [], [], prices)
        backups = store.backup_intervals(start=start, end=end, deployment=args.deployment)
        if samples:
            found = store.intervals(end=end, deployment=args.deployment)
            taken = store.window_samples(start=start, end=end, deployment=args.deployment)
            return Ledger(start, end, now, found, taken, prices, backups)
        found = store.intervals(start=start, end=end, deployment=args.deployment)
        return Ledger(start, end, now, found, [], prices, backups)
    finally:
        ws.close()


def _emit(args: argparse.Namespace, text: str) -> None:
    if args.out is not None:
        write_out(args.out, text)
        print(f"wrote {args.out}", file=sys.stderr)
    else:
        sys.stdout.write(text)


def cmd_report(args: argparse.Namespace) -> int:
    from reconciler.billing import compare, usage
    from reconciler.billing.modes import BILLED, BOTH, MEASURED, main_report

    if args.mode == BOTH and args.prices is None:
        raise UserError("--mode both compares costs priced the same way: pass --prices PATH, the folder "
                        "whose PriceLists price both the instance-hours and the measured use")
    needs_samples = args.mode in (MEASURED, BOTH) or (args.mode == BILLED and args.prices is not None)
    ledger = read_ledger(args, samples=needs_samples)
    if args.format == "html":
        from reconciler.cli.report_html import build_page

        title = f"Usage report: {args.deployment or 'all deployments'}"
        _emit(args, build_page(ledger, by=args.by, mode=args.mode, title=title))
        return EXIT_OK
    report, measured = main_report(ledger, args.by, args.mode)
    if args.mode == BOTH:
        assert measured is not None
        comparison = compare.compare(report, measured)
        text = {"text": lambda: compare.format_comparison_table(comparison, color=_color(args)),
                "csv": lambda: compare.format_comparison_csv(comparison),
                "json": lambda: compare.format_comparison_json(comparison)}[args.format]()
        _emit(args, text)
        return EXIT_OK
    if args.mode == MEASURED and ledger.prices is None:
        report = _with_note(report, "measured use is priced by PriceLists: pass --prices PATH for costs")
    if args.format == "json" and measured is not None:
        text = compare.format_measured_json(replace(measured, report=report))
    else:
        text = {"text": lambda: usage.format_table(report, color=_color(args)),
                "csv": lambda: usage.format_csv(report),
                "json": lambda: usage.format_json(report)}[args.format]()
    _emit(args, text)
    return EXIT_OK


def _color(args: argparse.Namespace) -> bool:
    return args.out is None and color(args)


def _with_note(report: UsageReport, note: str) -> UsageReport:
    return replace(report, notes=(note, *report.notes))


def cmd_collect(args: argparse.Namespace) -> int:
    from reconciler.run.measure import collect_path

    ws = workspace(args)
    try:
        result = collect_path(args.path, ws, deployment=args.deployment)
    finally:
        ws.close()
    for line in result.lines():
        print(line, file=sys.stderr if line.startswith("not sampled") else sys.stdout)
    return EXIT_ERROR if result.failed else EXIT_OK


def cmd_export(args: argparse.Namespace) -> int:
    from reconciler.billing.export import export_rows, format_export_csv

    ledger = read_ledger(args, samples=args.mode != "instance-hours")
    rows = export_rows(ledger.intervals, ledger.samples, start=ledger.start, end=ledger.end, now=ledger.now,
                       mode=args.mode, prices=ledger.prices, backups=ledger.backups)
    _emit(args, format_export_csv(rows))
    return EXIT_OK
