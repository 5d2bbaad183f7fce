"""cli.show: ``reconciler show PLAN`` — a saved plan file, verified, rendered for people.

CI plans once, to the signed JSON it uploads and later applies; the comment a reviewer reads
is rendered from that very file (``show plan.json --format markdown``), so what is reviewed,
what is uploaded and what ``apply --plan`` applies are one plan. The file is read as
``apply --plan`` reads it: refused unless its signature by the plan key holds.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from reconciler.cli.common import EXIT_OK, color, emit, format_option, out_option, workspace


def add_commands(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    help_text = "render a saved plan file (its signature checked) as text or pull-request markdown"
    p = sub.add_parser("show", help=help_text, parents=[common], description=help_text)
    p.add_argument("plan_file", type=Path, metavar="PLAN", help="a plan file written by plan --format json")
    format_option(p, ["text", "markdown"], "text, or the pull-request comment (markdown)")
    out_option(p, "the rendering")
    p.add_argument(
        "--full-plan",
        metavar="WHERE",
        help="markdown: where reviewers find the full plan when the comment leaves some out "
        "(e.g. the URL of the CI run that uploaded plan.json)",
    )
    p.set_defaults(handler=cmd_show)


def cmd_show(args: argparse.Namespace) -> int:
    from reconciler.cli import render, review
    from reconciler.cli.commands import read_plan_file
    from reconciler.core.plan_codec import load_signed_plan
    from reconciler.run.keys import plan_key

    ws = workspace(args)
    try:
        source = str(args.plan_file)
        plan = load_signed_plan(read_plan_file(args.plan_file), plan_key(ws.state_dir), source=source)
    finally:
        ws.close()
    if args.format == "markdown":
        text = review.render_markdown(plan, where=args.full_plan or review.DEFAULT_WHERE)
    else:
        text = render.render_text(plan, color=args.out is None and color(args))
    emit(args, text)
    return EXIT_OK
