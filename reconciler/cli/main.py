"""cli.main: the ``reconciler`` command — parses arguments, calls the engine, prints, sets exit codes.

Nothing is decided here: every command is a thin shell over the steps of ``reconciler.run``
(and ``backup``, ``billing``, ``daemon`` above them), so CI plans and daemon runs share one
code path.

Exit codes: 0 success (``plan --detailed-exitcode``: no changes), 1 error (a deny Policy's
violation too), 2 changes present, 3 changes present that break a Budget.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NoReturn

from reconciler import __version__
from reconciler.cli.common import EXIT_ERROR, PATH_HELP, format_option, out_option
from reconciler.core.errors import LeaseLostError, ProviderError, UserError

# Feature modules that bring their own commands, with the top-level commands each adds. Each
# defines
#   add_commands(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None
# and gives every parser it adds a handler: ``parser.set_defaults(handler=fn)``, where
# fn(args) -> exit code. ``tests/cli/test_cli_consistency.py`` checks the names.
EXTENSIONS: dict[str, tuple[str, ...]] = {
    "reconciler.cli.daemon": ("run", "diff"),
    "reconciler.cli.backup": ("backup", "restore"),
    "reconciler.cli.usage": ("usage",),
    "reconciler.cli.adopt": ("generate", "forget", "status"),
    "reconciler.cli.console": ("console", "hash-password"),
    "reconciler.cli.show": ("show",),
}
_BUILT_IN = ("validate", "plan", "apply", "destroy", "graph", "inputs", "audit", "simcloud")
COMMANDS = frozenset(_BUILT_IN).union(*EXTENSIONS.values())  # every top-level command
_SKIP_FINAL_BACKUP = "delete or replace servers under a backup policy without taking their final backup"


def _global_options(parser: argparse.ArgumentParser, *, suppress: bool, actor: bool = True) -> None:
    """Options accepted before or after the subcommand (``actor=False``: all but ``--actor``)."""
    default = argparse.SUPPRESS if suppress else None
    parser.add_argument(
        "--state-dir",
        default=default,
        help="local state folder (env RECONCILER_STATE_DIR, default ./.reconciler)",
    )
    parser.add_argument(
        "--store",
        default=default,
        help="store URL: sqlite:///path (default: the state dir's state.db) or postgresql://…",
    )
    parser.add_argument(
        "--now", default=default, help="fix the clock to this ISO 8601 time (env RECONCILER_NOW)"
    )
    if actor:
        parser.add_argument(
            "--actor",
            default=default,
            help="who runs this (the operator), for the audit ledger; default: the CI job ($GITHUB_ACTOR "
            "and its run, GitLab CI, Jenkins), else the OS user. The change's author is recorded apart",
        )
    parser.add_argument(
        "--log-format", choices=["console", "json"], default=default,
        help="logs on stderr: console (default) or JSON lines (no progress bar either)",
    )
    parser.add_argument(
        "-v", "--verbose", action="count", default=argparse.SUPPRESS if suppress else 0,
        help="more logs: -v info, -vv debug",
    )
    parser.add_argument(
        "--no-color", action="store_true", default=argparse.SUPPRESS if suppress else False,
        help="no colour in the output, even on a terminal (as NO_COLOR=1 does)",
    )


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The whole command line. With ``only`` (a top-level command), one holding that command and
    the few built beside it, which parses that command's arguments exactly as the whole one does:
    ``main`` asks for it when ``command_of`` is sure which command the arguments name, since
    building every parser costs more than most commands take to run."""

    def wanted(*names: str) -> bool:
        return only is None or only in names

    common = argparse.ArgumentParser(add_help=False)
    _global_options(common, suppress=True)
    parser = argparse.ArgumentParser(prog="reconciler", description="GitOps infrastructure reconciler.")
    parser.add_argument("--version", action="version", version=f"reconciler {__version__}")
    _global_options(parser, suppress=False)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, help_text: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=help_text, parents=[common], description=help_text)

    if wanted("validate"):
        p = add("validate", "check the desired state (YAML) without touching any cloud")
        p.add_argument("path", type=Path, help=PATH_HELP)
        p.add_argument("--deployment", help="owner mark (default: the folder's name)")
    if wanted("plan", "apply", "destroy", "graph"):
        _add_changing(add, sub)
    if wanted("inputs", "audit", "simcloud"):
        _add_inspecting(add, common)
    for module, names in EXTENSIONS.items():
        if wanted(*names):
            importlib.import_module(module).add_commands(sub, common)
    return parser


_Add = Callable[[str, str], argparse.ArgumentParser]


def _add_changing(add: _Add, sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``plan``, ``apply``, ``destroy`` and ``graph``: the commands that compute changes."""
    p = add("plan", "show what apply would change")
    p.add_argument("path", type=Path, help=PATH_HELP)
    p.add_argument("--deployment", help="owner mark (default: the folder's name)")
    format_option(p, ["text", "json", "markdown"], "text, the signed plan file (json) or the PR comment")
    out_option(p, "the plan")
    p.add_argument(
        "--detailed-exitcode",
        action="store_true",
        help="exit 0 no changes, 2 changes, 3 changes that break a budget, 1 error",
    )
    p.add_argument("--skip-final-backup", action="store_true", help=_SKIP_FINAL_BACKUP)
    p.add_argument(
        "--full-plan",
        metavar="WHERE",
        help="markdown: where reviewers find the full plan when the comment leaves some out "
        "(e.g. the URL of the CI run that uploaded plan.json)",
    )

    for name, help_text in (
        ("apply", "make the clouds match the desired state"),
        ("destroy", "delete every server this deployment owns (protected ones stay)"),
    ):
        p = add(name, help_text)
        if name == "apply":
            p.add_argument("path", type=Path, nargs="?", help=PATH_HELP + "; or give --plan FILE instead")
            saved = p.add_mutually_exclusive_group()  # a saved plan already says whether it skips them
            saved.add_argument("--plan", type=Path, dest="plan_file", help="apply this saved plan exactly")
            p.add_argument(
                "--expect-tree",
                metavar="auto|SHA",
                help="with --plan: refuse the plan unless it was made from this git tree of its folder "
                "(auto: the folder's tree at HEAD of the repository apply runs in)",
            )
            saved.add_argument("--skip-final-backup", action="store_true", help=_SKIP_FINAL_BACKUP)
        else:
            p.add_argument("path", type=Path, help=PATH_HELP)
            p.add_argument("--skip-final-backup", action="store_true", help=_SKIP_FINAL_BACKUP)
        p.add_argument("--deployment", help="owner mark (default: the folder's name)")
        p.add_argument("--yes", action="store_true", help="do not ask for confirmation")
        p.add_argument("--max-deletes", default="10", help="refuse plans deleting more servers (N or N%%)")
        p.add_argument("--allow-mass-delete", action="store_true", help="lift the --max-deletes limit")
        p.add_argument(
            "--override-window",
            metavar="REASON",
            help="apply inside a Policy's change window; the reason is recorded in the audit ledger",
        )
    from reconciler.cli.adopt import add_target

    for name in ("plan", "apply", "destroy"):
        add_target(sub.choices[name])
    for name in ("plan", "apply"):  # plan or apply a commit of a git repository (CI)
        q = sub.choices[name]
        q.add_argument("--source", metavar="REPO", help="take PATH from a commit of this git repository")
        q.add_argument("--branch", default="main", help="with --source: the branch whose tip to use")
        q.add_argument("--rev", help="with --source: this commit, tag or branch instead of the branch tip")

    p = add("graph", "print the action graph")
    p.add_argument("path", type=Path, help=PATH_HELP)
    p.add_argument("--deployment", help="owner mark (default: the folder's name)")
    format_option(p, ["text", "dot"], "text (levels) or Graphviz dot")
    add_target(p)  # the graph of the plan `plan --target` makes


def _add_inspecting(add: _Add, common: argparse.ArgumentParser) -> None:
    """``inputs``, ``audit`` and ``simcloud``: the commands that explain, verify or poke."""
    p = add("inputs", "explain where each input value comes from")
    inputs_sub = p.add_subparsers(dest="inputs_command", required=True, metavar="SUBCOMMAND")
    q = inputs_sub.add_parser("explain", parents=[common], help="each input's value and its source level")
    q.add_argument("path", type=Path, help=PATH_HELP)
    q.add_argument("target", help="CLUSTER/MEMBER")

    p = add("audit", "read and verify the audit ledger")
    audit_sub = p.add_subparsers(dest="audit_command", required=True, metavar="SUBCOMMAND")
    q = audit_sub.add_parser("log", help="list audit entries")
    _global_options(q, suppress=True, actor=False)  # its --actor is a filter, not the operator
    format_option(q, ["text", "json"], "a table as wide as the terminal (text) or JSON lines")
    q.add_argument("--deployment", help="only this deployment's entries")
    from reconciler.cli.auditlog import add_filters

    add_filters(q)
    audit_sub.add_parser("verify", parents=[common], help="check the hash chain")

    p = add("simcloud", "inspect and break the built-in simulated cloud on purpose")
    sim_sub = p.add_subparsers(dest="sim_command", required=True, metavar="SUBCOMMAND")
    q = sim_sub.add_parser("list", parents=[common], help="list simulated servers")
    format_option(q, ["text", "json"], "one line a server (text) or JSON")
    for name, help_text in (
        ("fail", "put a server into error state"),
        ("stop", "stop a server"),
        ("delete", "delete a server behind the reconciler's back"),
    ):
        q = sim_sub.add_parser(name, parents=[common], help=help_text)
        q.add_argument("key", help="the server's key, CLUSTER/MEMBER/ORDINAL")
    q = sim_sub.add_parser(
        "create", parents=[common], help="make a server by hand, owned by nobody (as if made in a console)"
    )
    q.add_argument("name", help="the server's name on the cloud (web-a)")
    q.add_argument("--provider", default="sim", help="the Provider document it belongs to (default: sim)")
    q.add_argument("--image", required=True, help="the image it boots (debian-12)")
    q.add_argument("--cpus", type=int, required=True, help="its vCPUs")
    q.add_argument("--memory-mb", type=int, required=True, help="its memory (MB)")
    q.add_argument("--disk-gb", type=int, required=True, help="its disk (GB)")
    q.add_argument("--flavor", help="the flavor it is sold as (sim.small); none by default")
    q = sim_sub.add_parser(
        "edit", parents=[common], help="change a server behind the reconciler's back (drift)"
    )
    q.add_argument("key", help="the server's key, CLUSTER/MEMBER/ORDINAL")
    q.add_argument("--cpus", type=int, help="give it this many vCPUs")
    q.add_argument("--memory-mb", type=int, help="give it this much memory (MB)")


class _Unsure(Exception):
    """The arguments do not plainly name a command: the whole parser must read them."""


class _Peek(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise _Unsure(message)


def command_of(argv: Sequence[str]) -> str | None:
    """The top-level command ``argv`` names, read past the global options as the whole parser
    reads them (values, ``--opt=value``, abbreviations); None when that is not plain (no command,
    an unknown word, ``--help``, ``--version``, a mistake): the whole parser then says why."""
    peek = _Peek(prog="reconciler", add_help=False, allow_abbrev=True)
    _global_options(peek, suppress=False)
    peek.add_argument("rest", nargs=argparse.REMAINDER)
    try:
        known, extra = peek.parse_known_args(list(argv))
    except _Unsure:
        return None
    if extra or not known.rest:
        return None
    word: str = known.rest[0]
    return word if word in COMMANDS else None


def main(argv: Sequence[str] | None = None) -> int:
    words = sys.argv[1:] if argv is None else list(argv)
    args = build_parser(command_of(words)).parse_args(words)
    from reconciler.cli import logs

    logs.configure(fmt=args.log_format or "console", verbosity=args.verbose or 0, color=not args.no_color)
    try:
        from reconciler.cli.commands import COMMANDS

        handler: Callable[[argparse.Namespace], int] = (
            getattr(args, "handler", None) or COMMANDS[args.command]
        )
        return handler(args)
    except UserError as exc:
        for diagnostic in exc.diagnostics:
            print(f"Error: {diagnostic}", file=sys.stderr)
        return EXIT_ERROR
    except LeaseLostError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except ProviderError as exc:
        print(f"Error: the cloud refused: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("Interrupted.", file=sys.stderr)
        return 130
