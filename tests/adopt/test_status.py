"""``core.status`` through ``run.status`` on simcloud: power and sync state per key, the last
change from the ledger, cost per hour, counts per cluster — from one observation; drift that
``drift: warn`` or ``ignore`` holds back shows as drift, with the policy; pending creates and
deletes in text and JSON; a server still being built is pending, not running."""

from __future__ import annotations

import re
from decimal import Decimal

from providers.simcloud.admin import admin_create, admin_edit, admin_stop
from reconciler.cli.adopt import render_status_text, status_json
from reconciler.core.model import DriftMode, ServerStatus, Size
from reconciler.core.plan import Plan
from reconciler.core.status import Power, Sync, cluster_counts, key_statuses
from reconciler.run.apply import apply_plan
from reconciler.run.audit import new_run
from reconciler.run.planning import plan_path
from reconciler.run.status import Status, status
from reconciler.run.workspace import Workspace
from tests.adopt.conftest import Write
from tests.engine.factories import NOW, desired, observed

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


DRIFT = """\
apiVersion: reconciler/v1
kind: Cluster
metadata: {name: shop}
spec:
  provider: sim
  members:
    web: {template: web, count: 3, drift: warn}
    db: {template: db, count: 1, drift: ignore}
"""


def test_drift_held_back_by_warn_or_ignore_shows_as_drifted(folder: Write, ws: Workspace) -> None:
    path = folder(DRIFT)
    assert apply_plan(plan_path(path, ws), ws, new_run("alice", None)).ok
    admin_stop(ws.state_dir, "shop/web/1")
    admin_edit(ws.state_dir, "shop/web/2", cpus=4)
    admin_edit(ws.state_dir, "shop/db/0", cpus=8)
    assert plan_path(path, ws).changes == ()  # nothing is healed: warn and ignore leave it alone

    report = status(path, ws)
    rows = {r.key: r for r in report.servers}
    assert [(k, r.power, r.sync, r.drift, r.drift_policy) for k, r in rows.items()] == [
        ("shop/db/0", Power.RUNNING, Sync.DRIFTED, "cpus", DriftMode.IGNORE),
        ("shop/web/0", Power.RUNNING, Sync.SYNCED, "", None),
        ("shop/web/1", Power.STOPPED, Sync.DRIFTED, "status", DriftMode.WARN),
        ("shop/web/2", Power.RUNNING, Sync.DRIFTED, "cpus", DriftMode.WARN),
    ]
    text = render_status_text(report)
    assert "drifted (cpus, held by drift: ignore)" in text and "drifted (status, held by drift: warn)" in text
    assert "1 synced, 3 drifted" in text
    shown = {s["key"]: s for s in status_json(report)["servers"]}
    assert (shown["shop/db/0"]["sync"], shown["shop/db/0"]["drift"], shown["shop/db/0"]["drift_policy"]) == (
        "drifted", "cpus", "ignore")
    assert (shown["shop/web/1"]["power"], shown["shop/web/1"]["drift_policy"]) == ("stopped", "warn")
    assert (shown["shop/web/0"]["sync"], shown["shop/web/0"]["drift_policy"]) == ("synced", None)
    assert shown["shop/db/0"]["held"] == ["cpus"] and shown["shop/web/0"]["held"] == []


def test_a_planned_change_and_held_drift_are_told_apart(folder: Write, ws: Workspace) -> None:
    path = folder(DRIFT)
    assert apply_plan(plan_path(path, ws), ws, new_run("alice", None)).ok
    admin_edit(ws.state_dir, "shop/web/2", cpus=4)  # held back by drift: warn
    base = path / "base.yaml"  # a reviewed change the plan makes: a new tag on web's template
    text = base.read_text(encoding="utf-8")
    base.write_text(text.replace("tags: {role: web}", "tags: {role: web, tier: front}"), encoding="utf-8")
    report = status(path, ws)
    [row] = [r for r in report.servers if r.key == "shop/web/2"]
    assert (row.sync, row.healed, row.held, row.drift_policy) == (Sync.DRIFTED, "tags.tier", ("cpus",),
                                                                  DriftMode.WARN)
    assert row.drift == "tags.tier, cpus"
    assert "drifted (tags.tier; cpus, held by drift: warn)" in render_status_text(report)


def test_pending_create_and_delete_in_text_and_json(folder: Write, ws: Workspace) -> None:
    ws.state_dir.mkdir(parents=True)
    db = admin_create(ws.state_dir, provider="sim", name="db-1", image="debian-12-postgres",
                      size=Size(2, 4096, 40))["resource_id"]
    path = folder(SHOP.format(web=2, db=db))
    assert apply_plan(plan_path(path, ws), ws, new_run("alice", None)).ok
    report = status(folder(SHOP.format(web=1, db=db).replace("count: 1, adopt", "count: 2, adopt")), ws)
    shown = {s["key"]: (s["power"], s["sync"], s["resource_id"]) for s in status_json(report)["servers"]}
    assert shown["shop/db/1"] == ("missing", "pending create", "")  # not yet created: no power state
    assert shown["shop/web/1"][:2] == ("running", "pending delete") and shown["shop/web/1"][2]
    text = render_status_text(report)
    assert re.search(r"shop/db/1 +sim +- +missing +pending create", text), text
    assert re.search(r"shop/web/1 +sim +\S+ +running +pending delete", text), text
    [cluster] = [line for line in text.splitlines() if line.startswith("Cluster shop:")]
    assert "1 missing" in cluster and "0 pending" not in cluster  # pending power is shown when there is one


def test_a_server_still_being_built_is_pending_not_running() -> None:
    want = desired("shop/web/0")
    plan = Plan(deployment="shop", created_at=NOW, changes=(), providers=(), basis=(), noop_count=1)
    [row] = key_statuses([want], [observed(want, status=ServerStatus.PENDING)], plan, {}, lambda _: None)
    assert (row.power, row.sync) == (Power.PENDING, Sync.SYNCED)
    assert "0 running, 1 pending" in render_status_text(Status("shop", (row,), tuple(cluster_counts([row]))))
