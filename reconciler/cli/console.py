"""cli.console: ``reconciler console PATH --listen ADDR`` and ``reconciler hash-password``.

``console`` serves the web console (``reconciler.console``) without the reconcile loop:
read-only over the store and the clouds, with a plan preview of PATH as it is on disk.
Who may sign in is PATH's ``Console`` document; without one it listens on a loopback
address only. ``hash-password`` reads a password or token on stdin and prints its
argon2id hash, for a Console document's ``password_hash`` or ``token_hash``.

``usage_fragment`` is how the console shows the usage report: the page ``usage report
--format html`` writes (``cli.report_html``), its body only, inside the console's page.
"""

from __future__ import annotations

import argparse
import getpass
import signal
import sys
import threading
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

from reconciler.cli import logs
from reconciler.cli.common import EXIT_ERROR, EXIT_OK, workspace
from reconciler.core.errors import UserError

if TYPE_CHECKING:
    from reconciler.billing.modes import Ledger

log = logs.logger("reconciler.console")
DEFAULT_CONSOLE_LISTEN = "127.0.0.1:9110"
MAX_FRAGMENT = 150_000  # characters of the usage report in a console page (pages stay under 200 KB)
_DETAIL_HEADINGS = ("<h2>Breakdown by ", "<h2>Instance-hours and measured</h2>", "<h2>Line items</h2>")


def add_commands(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:  # type: ignore[type-arg]
    text = "serve the web console without the reconcile loop (read-only, with a plan preview)"
    p = sub.add_parser("console", parents=[common], help=text, description=text)
    p.add_argument(
        "path", type=Path, help="the desired-state folder (its Console document says who may sign in)"
    )
    p.add_argument(
        "--listen",
        default=DEFAULT_CONSOLE_LISTEN,
        help=f"HOST:PORT to serve on (default {DEFAULT_CONSOLE_LISTEN})",
    )
    p.add_argument("--deployment", help="owner mark (default: the folder's name)")
    p.add_argument("--tls-cert", type=Path, help="serve https with this certificate (PEM)")
    p.add_argument("--tls-key", type=Path, help="… and this private key (PEM)")
    p.set_defaults(handler=cmd_console)

    text = "print the argon2id hash of a password or token read on stdin (for a Console document)"
    p = sub.add_parser("hash-password", parents=[common], help=text, description=text)
    p.set_defaults(handler=cmd_hash_password)


def usage_fragment(ledger: Ledger, by: str, mode: str) -> str:
    """The usage report's HTML (charts, totals, line items), without its page around it.

    A report too long for one page (thousands of servers' line items) keeps its totals and
    charts, and says that the line items are in the CSV."""
    from reconciler.cli.report_html import build_page

    html = build_page(ledger, by=by, mode=mode, title="Usage report")
    start, end = html.find("<body>"), html.rfind("</body>")
    body = html[start + len("<body>") : end] if start >= 0 and end > start else html
    if len(body) <= MAX_FRAGMENT:
        return body
    cuts = sorted(i for i in (body.find(m) for m in _DETAIL_HEADINGS) if i > 0)
    fitting = [i for i in cuts if i <= MAX_FRAGMENT]
    cut = fitting[-1] if fitting else cuts[0] if cuts else MAX_FRAGMENT
    return body[:cut] + (
        '<p class="note" id="report-cut">The groups are too many to show here: '
        "download the CSV for every one of them.</p>"
    )


def tls_files(args: argparse.Namespace) -> tuple[str | None, str | None]:
    cert, key = getattr(args, "tls_cert", None), getattr(args, "tls_key", None)
    if (cert is None) != (key is None):
        raise UserError("--tls-cert and --tls-key go together: give both, or neither")
    for given in (cert, key):
        if given is not None and not given.is_file():
            raise UserError(f"{given} is not a file; give the PEM file")
    return (str(cert), str(key)) if cert is not None and key is not None else (None, None)


def cmd_console(args: argparse.Namespace) -> int:
    from reconciler.config import load_with_console
    from reconciler.console import serve
    from reconciler.console.port import Standalone
    from reconciler.console.setup import make_console

    logs.configure(fmt=args.log_format or "console", verbosity=max(args.verbose or 0, 1))
    cert, key = tls_files(args)
    _, spec = load_with_console(args.path, deployment=args.deployment)  # bad YAML: located, now
    ws = workspace(args)
    console = make_console(
        Standalone(args.path, args.deployment),
        ws,
        args.listen,
        known_access=spec,
        writable=False,
        usage_html=usage_fragment,
    )
    server = serve.start(console.app, args.listen, tls_cert=cert, tls_key=key)
    log.info("console listening", url=server.url, users=len(spec.users) if spec else 0)
    print(f"console: {server.url}/", file=sys.stderr)
    done = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        done.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        done.wait()
    finally:
        console.stop()
        server.shutdown()
        server.server_close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        ws.close()
    return EXIT_OK


def cmd_hash_password(args: argparse.Namespace) -> int:
    from reconciler.console.access import hash_secret

    if sys.stdin.isatty():
        text = getpass.getpass("password or token: ")
    else:
        text = sys.stdin.readline().rstrip("\r\n")
    if not text:
        print("Error: nothing was read on stdin; give the password or token on one line", file=sys.stderr)
        return EXIT_ERROR
    print(hash_secret(text))
    return EXIT_OK
