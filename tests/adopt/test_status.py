"""``core.status`` through ``run.status`` on simcloud: power and sync state per key, the last
change from the ledger, cost per hour, counts per cluster — from one observation."""

from __future__ import annotations

from decimal import Decimal

from providers.simcloud.admin import admin_create, admin_edit, admin_stop
from reconciler.core.model import Size
from reconciler.core.status import Power, Sync
from reconciler.run.apply import apply_plan
from reconciler.run.audit import new_run
from reconciler.run.planning import plan_path
from reconciler.run.status import status
from reconciler.run.workspace import Workspace
from tests.adopt.conftest import Write

SHOP = """\
apiVersion: reconciler/v1
kind: Cluster
metadata: {{name: shop}}
spec:
  provider: sim
  members:
    web: {{template: web, count: {web}}}
    db: {{template: db, count: 1, adopt: {{0: {db}}}}}
"""


def test_every_state_a_key_can_be_in(folder: Write, ws: Workspace) -> None:
    ws.state_dir.mkdir(parents=True)
    db = admin_create(ws.state_dir, provider="sim", name="db-1", image="debian-12-postgres",
                      size=Size(2, 4096, 40))["resource_id"]
    path = folder(SHOP.format(web=3, db=db))
    before = status(path, ws)
    rows = {r.key: r for r in before.servers}
    assert (rows["shop/db/0"].sync, rows["shop/db/0"].power, rows["shop/db/0"].resource_id) == (
        Sync.PENDING_ADOPT, Power.RUNNING, db
    )
    assert {rows[k].sync for k in ("shop/web/0", "shop/web/1", "shop/web/2")} == {Sync.PENDING_CREATE}
    assert rows["shop/web/0"].power is Power.MISSING and rows["shop/web/0"].hourly is None

    assert apply_plan(plan_path(path, ws), ws, new_run("alice", None)).ok
    admin_stop(ws.state_dir, "shop/web/1")
    admin_edit(ws.state_dir, "shop/web/2", cpus=4)
    fewer = folder(SHOP.format(web=2, db=db))
    report = status(fewer, ws)
    rows = {r.key: r for r in report.servers}
    assert (rows["shop/web/0"].power, rows["shop/web/0"].sync) == (Power.RUNNING, Sync.SYNCED)
    assert (rows["shop/web/1"].power, rows["shop/web/1"].sync, rows["shop/web/1"].drift) == (
        Power.STOPPED, Sync.DRIFTED, "status"
    )
    assert (rows["shop/web/2"].sync, rows["shop/web/2"].power) == (Sync.PENDING_DELETE, Power.RUNNING)
    last = rows["shop/db/0"].last_change
    assert last is not None and (last.action, last.outcome, last.actor) == ("adopt", "succeeded", "alice")
    assert rows["shop/web/0"].hourly == Decimal("0.01") + Decimal("0.005")
    assert rows["shop/web/0"].currency == "USD"
    [counts] = report.clusters
    assert counts.servers == 4 and counts.power[Power.STOPPED] == 1 and counts.sync[Sync.PENDING_DELETE] == 1

    only = status(fewer, ws, targets=["shop/db"])
    assert [r.key for r in only.servers] == ["shop/db/0"] and only.targets == ("shop/db",)
