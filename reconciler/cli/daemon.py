"""cli.daemon: the ``run`` (the GitOps daemon) and ``diff`` (two commits, no cloud) commands.

``reconciler run --source REPO [--branch main] [--path clusters/]`` starts the daemon
(see ``reconciler.daemon.loop``) with its HTTP listener and signal handling; ``reconciler diff
--base REV [--head REV] PATH`` compares the desired state of two commits of the git
repository holding PATH (see ``reconciler.cli.statediff``). Also ``from_source``, which lets
``plan`` and ``apply`` take ``--source/--branch/--rev`` to work on a commit checked out
into a temporary folder.
"""

from __future__ import annotations

import argparse
import math
import os
import signal
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

from reconciler.cli import logs
from reconciler.cli.common import (
    EXIT_CHANGES,
    EXIT_ERROR,
    EXIT_OK,
    emit,
    format_option,
    out_option,
    workspace,
)
from reconciler.core.errors import Diagnostic, UserError

if TYPE_CHECKING:
    from reconciler.core.model import DesiredState

log = logs.logger("reconciler.daemon")

# daemon.http.DEFAULT_LISTEN, written out so that parsing the command line (for every
# command) does not import the daemon and prometheus-client.
DEFAULT_LISTEN = "127.0.0.1:9108"


def _seconds(text: str) -> float:
    from reconciler.core.limits import MAX_INTERVAL_SECONDS  # here: parsers are built for every command

    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number of seconds")
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be more than 0 seconds")
    if value > MAX_INTERVAL_SECONDS:
        raise argparse.ArgumentTypeError(f"{text!r} must be at most {MAX_INTERVAL_SECONDS} seconds (a day)")
    return value


def add_commands(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:  # type: ignore[type-arg]
    text = "keep every cloud converged to a git branch (the GitOps daemon)"
    p = sub.add_parser("run", parents=[common], help=text, description=text)
    p.add_argument(
        "--source",
        required=True,
        metavar="REPO",
        help="git repository: a local path or a URL (file://, https://, ssh://)",
    )
    p.add_argument("--branch", default="main", help="branch to follow (default main)")
    p.add_argument(
        "--path", default="", help="folder of desired state inside the repository (default: its root)"
    )
    p.add_argument(
        "--deployment", help="owner mark (default: the --path folder's name, else the repository's)"
    )
    p.add_argument("--interval", type=_seconds, default=60.0, help="seconds between cycles (default 60)")
    p.add_argument("--git-poll", type=_seconds, default=15.0, help="seconds between fetches (default 15)")
    p.add_argument(
        "--listen",
        default=DEFAULT_LISTEN,
        help=f"HOST:PORT for the web console at / and /healthz, /readyz, /metrics, POST /hooks/git "
        f"(default {DEFAULT_LISTEN}; 'off' for none)",
    )
    p.add_argument("--tls-cert", type=Path, help="serve --listen over https with this certificate (PEM)")
    p.add_argument("--tls-key", type=Path, help="… and this private key (PEM)")
    p.add_argument("--max-deletes", default="10", help="refuse plans deleting more servers (N or N%%)")
    p.add_argument("--allow-mass-delete", action="store_true", help="lift the --max-deletes limit")
    p.add_argument(
        "--lease-ttl", type=_seconds, help="provider lease time-to-live (default 3 intervals, ≥ 30 s)"
    )
    p.add_argument(
        "--shutdown-timeout",
        type=_seconds,
        default=30.0,
        help="seconds in-flight work may take after SIGTERM (default 30)",
    )
    p.add_argument("--once", action="store_true", help="run one cycle and exit (0 unless it failed)")
    p.set_defaults(handler=cmd_run)

    text = "compare the desired state of two commits (no cloud access)"
    p = sub.add_parser("diff", parents=[common], help=text, description=text)
    p.add_argument("path", type=Path, help="the desired-state folder, inside a git work tree")
    p.add_argument("--base", required=True, help="the commit to compare from (a sha, branch or tag)")
    p.add_argument("--head", help="the commit to compare to (default: the files in PATH as they are)")
    p.add_argument("--deployment", help="owner mark (default: the folder's name)")
    format_option(p, ["text", "json", "markdown"], "text, JSON or the pull-request comment (markdown)")
    out_option(p, "the comparison")
    p.add_argument("--detailed-exitcode", action="store_true", help="exit 0 no differences, 2 differences")
    p.set_defaults(handler=cmd_diff)


# --- run --------------------------------------------------------------------------------------------
def cmd_run(args: argparse.Namespace) -> int:
    from reconciler.daemon.context import CycleOutcome, DaemonOptions
    from reconciler.daemon.http import start_server
    from reconciler.daemon.loop import Daemon

    if getattr(args, "now", None) or os.environ.get("RECONCILER_NOW"):
        raise UserError("run keeps real time: drop --now and unset RECONCILER_NOW")
    logs.configure(fmt=args.log_format or "json", verbosity=max(args.verbose or 0, 1))
    options = DaemonOptions(
        source=args.source,
        branch=args.branch,
        path=args.path,
        deployment=args.deployment,
        interval=args.interval,
        git_poll=args.git_poll,
        listen=None if args.listen == "off" else args.listen,
        max_deletes=args.max_deletes,
        allow_mass_delete=args.allow_mass_delete,
        lease_ttl=args.lease_ttl,
        shutdown_timeout=args.shutdown_timeout,
        once=args.once,
    )
    ws = workspace(args)
    daemon = Daemon(options, ws)
    tip = daemon.source.fetch()  # a wrong URL or branch fails now, not in a log line every cycle
    server = console = None
    if options.listen:
        from reconciler.cli.console import tls_files, usage_fragment
        from reconciler.daemon.console_port import daemon_console

        tls = tls_files(args)
        console = daemon_console(daemon, tip, options.listen, usage_html=usage_fragment)
        server = start_server(options.listen, daemon.metrics, daemon.probes(), app=console.app, tls=tls)
        log.info("listening", url=server.url, console=f"{server.url}/")

    def on_signal(signum: int, frame: FrameType | None) -> None:
        daemon.request_stop()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    loop = threading.Thread(target=daemon.run, name="reconcile", daemon=True)
    loop.start()
    clean = True
    try:
        while loop.is_alive() and not daemon.stopping.wait(0.5):
            pass
        loop.join(options.shutdown_timeout)
        clean = not loop.is_alive()
        if not clean:
            log.error(
                "in-flight work did not finish in time; exiting anyway "
                "(the next start settles whatever was left open)"
            )
        daemon.finish(clean=clean)
    finally:
        if console is not None:
            console.stop()
        if server is not None:
            server.shutdown()
            server.server_close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if clean:
            ws.close()
    log.info("stopped", clean=clean)
    if not clean:
        return EXIT_ERROR
    if not daemon.stopping.is_set() and not options.once:
        log.error("the reconcile loop ended without being asked to stop")
        return EXIT_ERROR
    if options.once:
        report = daemon.last_report
        return EXIT_OK if report is not None and report.outcome is not CycleOutcome.FAILED else EXIT_ERROR
    return EXIT_OK


# --- diff ---------------------------------------------------------------------------------------------
def cmd_diff(args: argparse.Namespace) -> int:
    import git

    from reconciler.cli import statediff
    from reconciler.config import deployment_name, load_desired_state
    from reconciler.daemon.source import export_tree, relative_diagnostics

    try:
        repo = git.Repo(args.path, search_parent_directories=True)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        raise UserError(
            f"{args.path} is not inside a git work tree; diff compares two commits of one"
        ) from None
    root = Path(repo.working_tree_dir or ".").resolve()
    try:
        rel = args.path.resolve().relative_to(root).as_posix()
    except ValueError:
        raise UserError(f"{args.path} is not inside the work tree {root}") from None
    rel = "" if rel == "." else rel
    deployment = args.deployment or deployment_name(args.path)

    def at(rev: str, tmp: Path) -> tuple[str, DesiredState]:
        try:
            sha = repo.commit(rev).hexsha
        except (git.BadName, ValueError):
            raise UserError(f"{rev!r} is not a commit, branch or tag of {root}") from None
        folder = tmp / sha / root.name
        export_tree(repo, sha, folder, rel)
        target = folder / rel if rel else folder
        if not target.exists():
            raise UserError(f"commit {sha[:12]} ({rev}) has no folder {rel or '.'}")
        try:
            return sha, load_desired_state(target, deployment=deployment)
        except UserError as exc:
            rewritten = relative_diagnostics(exc, folder)
            raise UserError(
                [Diagnostic(f"{rev}:{d.file}", d.line, d.message) for d in rewritten.diagnostics]
            ) from None

    with tempfile.TemporaryDirectory(prefix="reconciler-diff-") as tmp:
        _, base = at(args.base, Path(tmp))
        if args.head:
            _, head = at(args.head, Path(tmp))
            head_name = args.head
        else:
            head = load_desired_state(args.path, deployment=deployment)
            head_name = "working tree"
    result = statediff.compare(base, head, base_name=args.base, head_name=head_name)
    rendered = {
        "text": statediff.render_text,
        "json": statediff.render_json,
        "markdown": statediff.render_markdown,
    }[args.format](result)
    emit(args, rendered)
    return EXIT_CHANGES if args.detailed_exitcode and result.has_changes else EXIT_OK


# --- plan / apply --source ------------------------------------------------------------------------
@contextmanager
def from_source(args: argparse.Namespace) -> Iterator[None]:
    """With ``--source``: check the commit out into a temporary folder and point ``args.path`` into it.

    The commit's sha, author and committer then stand for the plan's commit and the change's
    people (the operator stays who ran it); diagnostics name files relative to the repository.
    """
    source = getattr(args, "source", None)
    if source is None:
        if getattr(args, "rev", None):
            raise UserError("--rev needs --source REPO (the repository to take the commit from)")
        yield
        return
    if args.path is None:
        raise UserError(
            "--source needs PATH, the desired-state folder inside the repository (. for its root)"
        )
    from reconciler.daemon.source import temporary_checkout

    with temporary_checkout(source, branch=args.branch, rev=args.rev, path=str(args.path)) as (
        folder,
        commit,
        tree,
        tree_path,
    ):
        args.path = folder
        args.source_commit = commit.sha
        args.source_people = (commit.author, commit.committer)  # of the change; the operator stays
        args.source_tree = (tree, tree_path)  # recorded in the plan (apply --plan --expect-tree)
        yield
