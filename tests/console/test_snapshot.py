"""The snapshot: one read of the desired state, the clouds and the ledgers — sync states and costs."""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.cli.main import main
from reconciler.console.port import Desired
from reconciler.console.snapshot import DRIFTED, PENDING, SYNCED, build_snapshot
from reconciler.core.clock import Clock
from reconciler.run.workspace import Workspace
from tests.console.conftest import WriteState
from tests.daemon.conftest import cluster


def _run(state_dir: Path, *args: str) -> None:
    assert main(["--state-dir", str(state_dir), *args]) == 0


def test_sync_states_costs_and_problems(
    write_state: WriteState, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("RECONCILER_NOW", raising=False)
    folder = write_state(web=3)
    state = tmp_path / "state"
    _run(state, "apply", str(folder), "--yes")
    _run(state, "simcloud", "stop", "shop/web/1")  # drift: stopped behind our back
    _run(state, "simcloud", "delete", "shop/web/2")  # drift: vanished
    (folder / "shop.yaml").write_text(cluster(5), encoding="utf-8")  # pending: two new servers
    ws = Workspace(state_dir=state, clock=Clock())
    snap = build_snapshot(Desired(folder), ws)
    assert snap.problems == () and snap.loaded and snap.console is not None
    sync = {r.key: (r.status, r.sync, r.change) for r in snap.rows}
    assert sync == {
        "shop/db/0": ("running", SYNCED, ""),
        "shop/web/0": ("running", SYNCED, ""),
        "shop/web/1": ("stopped", DRIFTED, "update"),
        "shop/web/2": ("absent", DRIFTED, "create"),
        "shop/web/3": ("absent", PENDING, "create"),
        "shop/web/4": ("absent", PENDING, "create"),
    }
    assert [r.key for r in snap.rows][:3] == ["shop/db/0", "shop/web/0", "shop/web/1"]
    (group,) = snap.groups
    assert (group.provider, group.cluster, group.synced, group.drifted, group.pending) == (
        "sim",
        "shop",
        2,
        2,
        2,
    )
    assert dict(group.statuses)["running"] == 2 and group.servers == 3
    assert str(dict(group.hourly)["USD"]) == "0.0300" and str(dict(group.desired_hourly)["USD"]) == "0.0600"
    web0 = snap.row("shop/web/0")
    assert web0 is not None and web0.last_action == "create" and web0.addresses
    ws.close()

    (folder / "shop.yaml").write_text("kind: Cluster\nbroken: [\n", encoding="utf-8")
    broken = build_snapshot(Desired(folder), Workspace(state_dir=state, clock=Clock()))
    assert not broken.loaded and broken.problems
    assert broken.problems[0].startswith(f"the desired state is invalid: {folder}/shop.yaml:")
