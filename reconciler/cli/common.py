"""cli.common: what every command handler shares — exit codes, where state lives, output helpers."""

from __future__ import annotations

import argparse
import os
import sys
from datetime import UTC, datetime
from pathlib import Path

from reconciler.core.clock import Clock
from reconciler.core.errors import UserError
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
    """Write a file whole or not at all (a temp file renamed into place)."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
    except OSError as exc:
        raise UserError(f"cannot write {path}: {exc.strerror}") from None


def month_start(now: datetime) -> datetime:
    return now.astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
