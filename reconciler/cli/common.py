"""cli.common: what every command handler shares — exit codes, where state lives, output helpers,
and the options every command spells the same way.

One language across commands: the human format is ``text`` everywhere (``table``, its old name
in some commands, is still accepted: ``format_option``); ``--out FILE`` always writes the file
*instead of* stdout; colour appears only on a terminal, and never with ``--no-color`` or
``NO_COLOR`` set (``color``).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # imported by ``workspace``: building the parser must not import the engine
    from reconciler.run.workspace import Workspace

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_CHANGES = 2
EXIT_BUDGET = 3  # plan --detailed-exitcode: changes that break a Budget


def state_dir(args: argparse.Namespace) -> Path:
    return Path(getattr(args, "state_dir", None) or os.environ.get("RECONCILER_STATE_DIR") or ".reconciler")


def workspace(args: argparse.Namespace) -> Workspace:
    from reconciler.core.clock import Clock
    from reconciler.run.workspace import Workspace

    return Workspace(
        state_dir=state_dir(args),
        clock=Clock.from_env(getattr(args, "now", None)),
        store_url=getattr(args, "store", None),
    )


PATH_HELP = "the desired state: a folder of YAML files (or one YAML file)"
FORMAT_ALIASES = {"table": "text"}  # old names still accepted
OUT_HELP = "write the output to this file instead of stdout"


def format_option(
    parser: argparse.ArgumentParser, choices: Sequence[str], help_text: str, *, default: str = "text"
) -> None:
    """``--format``: ``choices`` (the human one named ``text``), ``table`` accepted for ``text``."""
    aliases = " (table: the same as text)" if "text" in choices else ""
    parser.add_argument(
        "--format",
        type=lambda value: FORMAT_ALIASES.get(value, value) if "text" in choices else value,
        choices=list(choices),
        default=default,
        help=f"{help_text}; default {default}{aliases}",
    )


class LazyChoices(Sequence[str]):
    """An option's ``choices`` computed when first needed (a value checked, a help page shown),
    for choices named by a module the parser must not import: every command builds the whole
    parser, and the enums behind these (``core.records``, ``billing``) take long to import."""

    def __init__(self, load: Callable[[], Sequence[str]]) -> None:
        self._load = load
        self._values: tuple[str, ...] | None = None

    def _all(self) -> tuple[str, ...]:
        if self._values is None:
            self._values = tuple(self._load())
        return self._values

    def __getitem__(self, index: int) -> str:  # type: ignore[override]
        return self._all()[index]

    def __len__(self) -> int:
        return len(self._all())

    def __iter__(self) -> Iterator[str]:
        return iter(self._all())

    def __contains__(self, value: object) -> bool:
        return value in self._all()


def out_option(parser: argparse.ArgumentParser, what: str = "the output") -> None:
    """``--out FILE``: the one meaning everywhere — the file instead of stdout."""
    help_text = f"write {what} to this file instead of stdout"
    parser.add_argument("--out", type=Path, metavar="FILE", help=help_text)


def tty() -> bool:
    return sys.stdout.isatty()


def color(args: argparse.Namespace | None = None) -> bool:
    """Colour on stdout: only on a terminal, and not with ``--no-color`` or ``NO_COLOR`` set."""
    if os.environ.get("NO_COLOR") or getattr(args, "no_color", False):
        return False
    return tty()


def emit(args: argparse.Namespace, text: str) -> None:
    """``text`` to ``--out`` when given, else to stdout."""
    if getattr(args, "out", None) is not None:
        write_out(args.out, text)
    else:
        sys.stdout.write(text)


def write_out(path: Path, text: str) -> None:
    """Write a file whole or not at all (``run.files.write_atomic``: temp file, fsync, rename)."""
    from reconciler.run.files import write_atomic

    write_atomic(path, text)


def month_start(now: datetime) -> datetime:
    return now.astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
