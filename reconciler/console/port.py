"""console.port: what the console asks of the reconcile loop, and what a console without one answers.

The daemon (``reconciler run``) implements ``DaemonPort`` (``daemon.console_port``): its
status for the pages and the live stream, the checkout of the commit it converges (whose
desired state the pages show), and the requests an operator may make. ``reconciler console``
has no loop: ``Standalone`` reads the folder it was given and refuses every request.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol


@dataclass(frozen=True)
class CommitInfo:
    sha: str
    author: str = ""
    message: str = ""

    @property
    def short(self) -> str:
        return self.sha[:12]


@dataclass(frozen=True)
class LoopStatus:
    """The reconcile loop as the console shows it."""

    present: bool  # False: a console without a loop (``reconciler console``)
    running: bool = False  # a cycle is running now
    cycles: int = 0  # cycles finished since the daemon started
    outcome: str = ""  # of the last cycle: converged, progressing, failed, idle, denied
    message: str = ""
    changes: int = 0
    applied: int = 0
    failed: int = 0
    held: int = 0
    finished_at: datetime | None = None
    ready: bool = False
    ready_reason: str = ""
    commit: CommitInfo | None = None
    held_keys: tuple[str, ...] = ()  # keys in backoff after failures (an operator may retry them)


@dataclass(frozen=True)
class Desired:
    """Where the desired state to show lives: a folder, and the commit it is (None: a plain folder)."""

    path: Path
    commit: CommitInfo | None = None
    deployment: str | None = None
    shown_root: Path | None = None  # file names in problems are shown relative to it (a checkout)


class DaemonPort(Protocol):
    def status(self) -> LoopStatus: ...

    def desired(self) -> Desired | None:
        """The checkout of the commit being converged (None before a valid commit was found)."""

    def sync_now(self) -> None:
        """Fetch and run a cycle now."""

    def run_backups(self) -> None:
        """Run a cycle now: it takes every backup that is due."""

    def retry(self, key: str) -> bool:
        """Forget ``key``'s backoff and run a cycle now; False when the key was not held back."""


class NoLoopError(Exception):
    """The console runs without the reconcile loop: there is nobody to ask."""


@dataclass(frozen=True)
class Standalone:
    """``reconciler console PATH``: the folder as it is on disk, and no loop to ask."""

    path: Path
    deployment: str | None = None

    def status(self) -> LoopStatus:
        return LoopStatus(present=False, message="no reconcile loop: reconciler console is read-only")

    def desired(self) -> Desired | None:
        return Desired(self.path, None, self.deployment)

    def sync_now(self) -> None:
        raise NoLoopError

    def run_backups(self) -> None:
        raise NoLoopError

    def retry(self, key: str) -> bool:
        raise NoLoopError
