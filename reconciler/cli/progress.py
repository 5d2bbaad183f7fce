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
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from reconciler.core.changes import Change
from reconciler.core.keys import natural_key
from reconciler.run.executor import ChangeResult, ChangeStatus

OnResult = Callable[[ChangeResult], None]
_ALL = "\0all"  # the overall bar's key among the providers' (no provider is named so)


def plain_line(result: ChangeResult) -> str:
    """``+ shop/web/0 succeeded (sim-00000004)``, ``- shop/db/1 failed: quota``."""
    change = result.change
    suffix = f" ({result.resource_id})" if result.resource_id else ""
    message = f": {result.message}" if result.message else ""
    return f"{change.action.symbol} {change.key} {result.status.value}{suffix}{message}"


def _print_plain(result: ChangeResult) -> None:
    print(plain_line(result), flush=True)


@dataclass
class LiveProgress:
    """The bar (or bars) of one apply on ``console``; ``on_result`` as each change finishes."""

    changes: Sequence[Change]
    console: Console
    progress: Progress = field(init=False)
    _tasks: dict[str, TaskID] = field(init=False, default_factory=dict)
    _counts: Counter[tuple[str, ChangeStatus]] = field(init=False, default_factory=Counter)

    def __post_init__(self) -> None:
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[failed]} failed, {task.fields[skipped]} skipped"),
            TextColumn("elapsed"),
            TimeElapsedColumn(),
            TextColumn("left"),
            TimeRemainingColumn(),
            console=self.console,
            redirect_stdout=False,
            redirect_stderr=False,
        )
        self._tasks[_ALL] = self.progress.add_task("applying", total=len(self.changes), failed=0, skipped=0)
        per_provider = Counter(c.provider for c in self.changes)
        if len(per_provider) > 1:
            for provider in sorted(per_provider, key=natural_key):
                self._tasks[provider] = self.progress.add_task(
                    f"  {escape(provider)}", total=per_provider[provider], failed=0, skipped=0
                )
        self.progress.start()

    def on_result(self, result: ChangeResult) -> None:
        change = result.change
        if result.status is ChangeStatus.FAILED:
            where = f" ({result.resource_id})" if result.resource_id else ""
            self.progress.console.print(
                f"[bold red]failed[/] {escape(change.action.symbol)} {escape(change.key + where)}: "
                + escape(result.message)
            )
        for scope in (_ALL, change.provider):
            task = self._tasks.get(scope)
            if task is None:
                continue
            self._counts[(scope, result.status)] += 1
            self.progress.update(
                task,
                advance=1,
                failed=self._counts[(scope, ChangeStatus.FAILED)],
                skipped=self._counts[(scope, ChangeStatus.SKIPPED)],
            )

    def stop(self) -> None:
        self.progress.stop()


def reporter(
    changes: Sequence[Change], *, live: bool, color: bool = True, console: Console | None = None
) -> tuple[OnResult, Callable[[], None]]:
    """(what to call as each change finishes, what to call when the apply is over).

    ``live``: a terminal that may show a bar (not ``--log-format json``); else plain lines.
    ``color``: false for a bar without colour (``--no-color``, ``NO_COLOR``).
    """
    if not live or not changes:
        return _print_plain, lambda: None
    bar = LiveProgress(changes, console or Console(file=sys.stdout, no_color=not color))
    return bar.on_result, bar.stop
