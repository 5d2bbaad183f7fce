"""Fixtures for end-to-end tests: the real `reconciler` command in subprocesses, on simcloud."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "clusters"
NOW = "2026-11-02T10:00:00Z"


@dataclass
class Result:
    code: int
    out: str
    err: str


Cli = Callable[..., Result]


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """A copy of the example desired state, free to edit, in its own folder."""
    target = tmp_path / "clusters"
    shutil.copytree(EXAMPLE, target)
    return target


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    return tmp_path / "state"


@pytest.fixture
def cli(tmp_path: Path, state_dir: Path) -> Cli:
    def run(
        *args: str,
        env: dict[str, str] | None = None,
        now: str | None = NOW,
        timeout: float = 120,
        preexec_fn: Callable[[], None] | None = None,
    ) -> Result:
        """The command in a subprocess; ``preexec_fn`` runs in the child before it starts (limits)."""
        environment = {k: v for k, v in os.environ.items() if not k.startswith("RECONCILER_")}
        environment["RECONCILER_STATE_DIR"] = str(state_dir)
        environment["PYTHONPATH"] = str(REPO)
        if now is not None:
            environment["RECONCILER_NOW"] = now
        environment.update(env or {})
        proc = subprocess.run(
            [sys.executable, "-m", "reconciler", *args],
            cwd=tmp_path,
            env=environment,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
            preexec_fn=preexec_fn,
        )
        return Result(proc.returncode, proc.stdout, proc.stderr)

    return run
