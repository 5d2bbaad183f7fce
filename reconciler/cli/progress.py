"""cli.progress: how an apply reports each change as it finishes — a live bar on a terminal, plain
lines anywhere else.

On a terminal (and not under ``--log-format json``) a rich progress bar shows done/total, the
failed and skipped counts, the elapsed time and an estimate of the time left — one bar in all
and, when the plan touches several providers, one per provider below it — and a line is
printed for each failure the moment it happens. Anywhere else (a pipe, a CI log, JSON logs)
nothing of it appears: one plain line per change, as it finishes. The summary after the apply
is the command's, the same either way.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from reconciler.core.changes import Change
from reconciler.run.executor import ChangeResult

if TYPE_CHECKING:
    from rich.console import Console

OnResult = Callable[[ChangeResult], None]


def plain_line(result: ChangeResult) -> str:
    """``+ shop/web/0 succeeded (sim-00000004)``, ``- shop/db/1 failed: quota``."""
    change = result.change
    suffix = f" ({result.resource_id})" if result.resource_id else ""
    message = f": {result.message}" if result.message else ""
    return f"{change.action.symbol} {change.key} {result.status.value}{suffix}{message}"


def _print_plain(result: ChangeResult) -> None:
    print(plain_line(result), flush=True)


def reporter(
    changes: Sequence[Change], *, live: bool, color: bool = True, console: Console | None = None
) -> tuple[OnResult, Callable[[], None]]:
    """(what to call as each change finishes, what to call when the apply is over).

    ``live``: a terminal that may show a bar (not ``--log-format json``); else plain lines.
    ``color``: false for a bar without colour (``--no-color``, ``NO_COLOR``).
    """
    if not live or not changes:
        return _print_plain, lambda: None
    from rich.console import Console

    from reconciler.cli.progress_bar import LiveProgress

    bar = LiveProgress(changes, console or Console(file=sys.stdout, no_color=not color))
    return bar.on_result, bar.stop
