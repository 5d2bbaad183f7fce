"""cli.common: what every command handler shares — exit codes, where state lives, output helpers."""

from __future__ import annotations

import argparse
import os
import sys
from datetime import UTC, datetime
from pathlib import Path

from reconciler.core.clock import Clock
from reconciler.run.files import write_atomic
from reconciler.run.workspace import Workspace

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_CHANGES = 2
EXIT_BUDGET = 3  # plan --detailed-exitcode: changes that break a Budget


def state_dir(args: argparse.Namespace) -> Path:
    return Path(getattr(args, "state_dir", None) or os.environ.get("RECONCILER_STATE_DIR") or ".reconciler")


def workspace(args: argparse.Namespace) -> Workspace:
    return Workspace(
        state_dir=state_dir(args),
        clock=Clock.from_env(getattr(args, "now", None)),
        store_url=getattr(args, "store", None),
    )


def tty() -> bool:
    return sys.stdout.isatty()


def write_out(path: Path, text: str) -> None:
    """Write a file whole or not at all (``run.files.write_atomic``: temp file, fsync, rename)."""
    write_atomic(path, text)


def month_start(now: datetime) -> datetime:
    return now.astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
