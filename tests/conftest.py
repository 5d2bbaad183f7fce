"""Every test keeps the audit checkpoints it writes (``run.anchor``) in its own folder.

Set through ``XDG_STATE_HOME``, which child processes inherit (the e2e fixtures pass on the
environment less ``RECONCILER_*``), so no test writes into the home directory.
"""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def _anchors_in_tmp(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    state_home = tmp_path_factory.mktemp("xdg-state")
    monkeypatch.setenv("XDG_STATE_HOME", str(state_home))
    monkeypatch.delenv("RECONCILER_ANCHOR_DIR", raising=False)
    monkeypatch.delenv("RECONCILER_AUDIT_KEY", raising=False)
    return state_home
