"""Adoption end to end in the engine, on simcloud: plan, apply through the audit writer, the
usage interval opened at the adoption, nothing else about the server touched, then no-ops —
and a saved plan whose server changed since refused."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime, timedelta

import pytest

from providers.simcloud.admin import admin_create
from reconciler.core.audit_detail import AdoptDetail, decode_detail
from reconciler.core.clock import Clock
from reconciler.core.errors import UserError
from reconciler.core.model import TAG_KEY, TAG_OWNER, Action, Size
from reconciler.core.plan_codec import dump_signed_plan, load_signed_plan
from reconciler.core.records import AuditAction, Outcome
from reconciler.run.apply import apply_plan
from reconciler.run.audit import adopted, new_run
from reconciler.run.planning import plan_path
from reconciler.run.workspace import Workspace
from tests.adopt.conftest import Write

T0 = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)
CLUSTER = """\
apiVersion: reconciler/v1
kind: Cluster
metadata: {{name: shop}}
spec:
  provider: sim
  members:
    web:
      template: web
      count: 2
      adopt: {{0: {a}, 1: {b}}}
"""


def _made_by_hand(ws: Workspace, name: str, **tags: str) -> str:
    row = admin_create(
        ws.state_dir, provider="sim", name=name, image="debian-12", size=Size(1, 1024, 10),
        tags={"role": "web", **tags}, clock=Clock(fixed=T0 - timedelta(days=30)),
    )
    return str(row["resource_id"])


def _rows(ws: Workspace) -> dict[str, dict[str, object]]:
    conn = sqlite3.connect(ws.state_dir / "simcloud.db")
    try:
        query = "SELECT resource_id, tags, status, cpus, created_at, name FROM servers"
        rows = conn.execute(query).fetchall()
    finally:
        conn.close()
    return {r[0]: {"tags": json.loads(r[1]), "status": r[2], "cpus": r[3], "created_at": r[4], "name": r[5]}
            for r in rows}


@pytest.fixture
def at_t0(ws: Workspace) -> Workspace:
    ws.clock = Clock(fixed=T0)
    ws.state_dir.mkdir(parents=True, exist_ok=True)
    return ws


def test_adopt_then_no_op(folder: Write, at_t0: Workspace) -> None:
    ws = at_t0
    a, b = _made_by_hand(ws, "web-a"), _made_by_hand(ws, "web-b", extra="yes")
    path = folder(CLUSTER.format(a=a, b=b))
    before = _rows(ws)
    plan = plan_path(path, ws)
    assert [(c.action, c.key) for c in plan.changes] == [
        (Action.ADOPT, "shop/web/0"), (Action.ADOPT, "shop/web/1"), (Action.UPDATE, "shop/web/1"),
    ]  # web-b's extra tag is not the template's: an in-place update follows its adopt
    assert plan.summary()["adopt"] == 2 and plan.summary()["create"] == 0

    report = apply_plan(plan, ws, new_run("tester", None))
    assert report.ok, report
    after = _rows(ws)
    assert set(after) == {a, b}  # nothing created, nothing deleted
    for rid in (a, b):
        assert after[rid]["status"] == "running" and after[rid]["created_at"] == before[rid]["created_at"]
        assert after[rid]["name"] == before[rid]["name"] and after[rid]["cpus"] == before[rid]["cpus"]
    tags = after[a]["tags"]
    assert isinstance(tags, dict) and tags[TAG_OWNER] == path.name and tags[TAG_KEY] == "shop/web/0"
    assert tags["role"] == "web"

    store = ws.store()
    entries = [e for e in store.audit_log(deployment=path.name) if e.record.action is AuditAction.ADOPT]
    assert sorted(e.record.outcome for e in entries) == sorted([Outcome.INTENT, Outcome.SUCCEEDED] * 2)
    detail = decode_detail(entries[0].record)
    assert isinstance(detail, AdoptDetail) and detail.server in (a, b) and detail.size == Size(1, 1024, 10)
    intervals = {i.resource_id: i for i in store.open_intervals(path.name)}
    assert set(intervals) == {a, b} and all(i.start == T0 for i in intervals.values())  # not 30 days ago
    assert intervals[a].hourly_rate is not None
    assert adopted(store, path.name) == {"shop/web/0": a, "shop/web/1": b}

    again = plan_path(path, ws)
    assert again.changes == () and again.noop_count == 2
    assert sum("can be removed" in d for d in again.diagnostics) == 2


def test_a_saved_plan_whose_server_changed_since_is_refused(folder: Write, at_t0: Workspace) -> None:
    ws = at_t0
    a, b = _made_by_hand(ws, "web-a"), _made_by_hand(ws, "web-b")
    plan = plan_path(folder(CLUSTER.format(a=a, b=b)), ws)
    key = b"k" * 32
    saved = load_signed_plan(dump_signed_plan(plan, key), key, source="plan.json")
    assert [c.action for c in saved.changes] == [Action.ADOPT, Action.ADOPT]
    assert saved.changes[0].after is not None and saved.changes[0].after.adopt_id == a
    conn = sqlite3.connect(ws.state_dir / "simcloud.db")
    conn.execute("UPDATE servers SET status = 'stopped' WHERE resource_id = ?", (a,))
    conn.commit()
    conn.close()
    with pytest.raises(UserError, match="gone, taken or changed since"):
        apply_plan(saved, ws, new_run("tester", None))
    assert all(TAG_OWNER not in r["tags"] for r in _rows(ws).values())  # type: ignore[operator]


def test_a_server_another_deployment_owns_is_refused(folder: Write, at_t0: Workspace) -> None:
    ws = at_t0
    a = _made_by_hand(ws, "web-a", **{TAG_OWNER: "elsewhere", TAG_KEY: "x/y/0"})
    b = _made_by_hand(ws, "web-b")
    with pytest.raises(UserError, match="owned by deployment 'elsewhere'"):
        plan_path(folder(CLUSTER.format(a=a, b=b)), ws)


def test_a_kill_between_the_adopt_and_its_outcome_is_recovered(
    folder: Write, at_t0: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The adopt lands but the run dies before writing the outcome: the next apply finds it by token."""
    ws = at_t0
    a, b = _made_by_hand(ws, "web-a"), _made_by_hand(ws, "web-b")
    path = folder(CLUSTER.format(a=a, b=b))
    plan = plan_path(path, ws)
    from reconciler.run.audit import AuditWriter

    real = AuditWriter.mutate

    def dies_after_the_call(self: AuditWriter, key: str, provider: object, action: AuditAction,
                            call: object, **kw: object) -> object:
        if action is AuditAction.ADOPT and key == "shop/web/1":
            self.record(key, "sim", action, Outcome.INTENT, resource_id=b, token=str(kw["token"]),
                        detail=kw["detail"])  # type: ignore[arg-type]
            call()  # type: ignore[operator]
            raise KeyboardInterrupt  # the process is gone before the outcome
        return real(self, key, provider, action, call, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(AuditWriter, "mutate", dies_after_the_call)
    with pytest.raises(KeyboardInterrupt):
        apply_plan(plan, ws, new_run("tester", None))
    monkeypatch.setattr(AuditWriter, "mutate", real)
    ws.close()
    later = Clock(fixed=T0 + timedelta(hours=1))
    ws2 = Workspace(state_dir=ws.state_dir, clock=later)
    try:
        again = plan_path(path, ws2)
        report = apply_plan(again, ws2, new_run("tester", None))
        assert report.ok and any("recovered" in m for m in report.recovered)
        intervals = {i.resource_id: i for i in ws2.store().open_intervals(path.name)}
        assert intervals[b].start == T0  # opened at the intent, as if the outcome had been written
        assert plan_path(path, ws2).changes == ()
    finally:
        ws2.close()
