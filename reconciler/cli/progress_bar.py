"""cli.progress_bar: the live progress bar of an apply on a terminal (``cli.progress`` picks it).

Apart from ``cli.progress`` so that rich is imported only when a bar is shown: an apply in a
pipe or a CI log prints plain lines and never loads it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
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

_ALL = "\0all"  # the overall bar's key among the providers' (no provider is named so)


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
