"""Fixtures for the backup tests: the e2e `cli` runner (real subprocesses) and a desired state."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.backup.support import write_desired
from tests.e2e.conftest import cli, state_dir  # noqa: F401 - fixtures reused as they are


@pytest.fixture
def desired(tmp_path: Path) -> Path:
    """One server (vault/db/0) on simcloud under a nightly policy: keep 3 last, 7 daily, 4 weekly."""
    return write_desired(tmp_path)
