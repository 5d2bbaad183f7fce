"""The snapshot: one read of the desired state, the clouds and the ledgers — sync states and costs."""

from __future__ import annotations

from datetime import UTC, datetime
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


def test_the_usage_page_shows_the_report_with_its_charts_and_csv(
    write_state: WriteState, hash_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from starlette.testclient import TestClient

    from reconciler.cli.console import usage_fragment
    from reconciler.config import load_with_console
    from reconciler.console.setup import make_console
    from tests.console.support import FakeLoop, login

    monkeypatch.delenv("RECONCILER_NOW", raising=False)
    folder = write_state(web=2)
    state = tmp_path / "state"
    _run(state, "--now", "2026-11-02T10:00:00Z", "apply", str(folder), "--yes")
    _, spec = load_with_console(folder)
    ws = Workspace(state_dir=state, clock=Clock(fixed=datetime(2026, 11, 3, 10, tzinfo=UTC)))
    console = make_console(
        FakeLoop(folder), ws, "127.0.0.1:0", known_access=spec, writable=True, usage_html=usage_fragment
    )
    with TestClient(console.app) as client:
        login(client, "victor")
        page = client.get("/usage?period=custom&from=2026-11-02T00:00:00Z&to=2026-11-03T00:00:00Z&by=server")
        assert page.status_code == 200, page.text[:1000]
        assert "<svg" in page.text and "shop/web/1" in page.text
        assert "<style" not in page.text and " style=" not in page.text  # the CSP allows no inline style
        csv = client.get(
            "/usage.csv?period=custom&from=2026-11-02T00:00:00Z&to=2026-11-03T00:00:00Z&by=server"
        )
        lines = csv.text.splitlines()
        assert lines[0].startswith("group,") and any(line.startswith("shop/web/1,") for line in lines)
        data = client.get(
            "/api/v1/usage?period=custom&from=2026-11-02T00:00:00Z&to=2026-11-03T00:00:00Z"
        ).json()
        assert data["by"] == "cluster" and data["rows"][0]["group"] == "shop"


BACKED_UP = """\
apiVersion: reconciler/v1
kind: Cluster
metadata:
  name: shop
spec:
  provider: sim
  members:
    db: {template: web, count: 1, backup_policy: nightly}
    web: {template: web, count: 2}
---
apiVersion: reconciler/v1
kind: BackupPolicy
metadata:
  name: nightly
spec:
  schedule: "0 2 * * *"
  retention: {keep_last: 3}
  max_age_hours: 26
"""


def test_backups_per_server_restore_points_next_due_and_overdue(
    write_state: WriteState, hash_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from starlette.testclient import TestClient

    from reconciler.config import load_with_console
    from reconciler.console.setup import make_console
    from tests.console.support import FakeLoop, login

    monkeypatch.delenv("RECONCILER_NOW", raising=False)
    folder = write_state(files={"shop.yaml": BACKED_UP})
    state = tmp_path / "state"
    _run(state, "--now", "2026-11-02T10:00:00Z", "apply", str(folder), "--yes")
    _run(state, "--now", "2026-11-02T10:05:00Z", "backup", "run", str(folder), "--force")
    on_time = build_snapshot(
        Desired(folder), Workspace(state_dir=state, clock=Clock(fixed=datetime(2026, 11, 2, 12, tzinfo=UTC)))
    )
    (row,) = on_time.backups
    assert (row.key, row.policy, len(row.points)) == ("shop/db/0", "nightly", 1)
    assert row.status is not None and not row.status.overdue
    assert row.status.next_due == datetime(2026, 11, 3, 2, tzinfo=UTC)
    late = build_snapshot(
        Desired(folder), Workspace(state_dir=state, clock=Clock(fixed=datetime(2026, 11, 4, 12, tzinfo=UTC)))
    )
    assert late.backups[0].status is not None and late.backups[0].status.overdue

    _, spec = load_with_console(folder)
    ws = Workspace(state_dir=state, clock=Clock(fixed=datetime(2026, 11, 4, 12, tzinfo=UTC)))
    console = make_console(FakeLoop(folder), ws, "127.0.0.1:0", known_access=spec, writable=True)
    with TestClient(console.app) as client:
        login(client, "victor")
        page = client.get("/backups?show=overdue")
        assert page.status_code == 200 and "shop/db/0" in page.text and "overdue" in page.text
        assert "shop/db/0" in client.get("/clusters/shop").text
