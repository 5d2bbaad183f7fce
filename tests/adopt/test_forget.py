"""``forget``: the marks of one key's server come off through the audit writer, its usage
interval closes, the server keeps running; an interrupted forget is settled by observation."""

from __future__ import annotations

import pytest

from reconciler.core.errors import UserError
from reconciler.core.records import AuditAction, Outcome
from reconciler.run.adoption import forget
from reconciler.run.apply import apply_plan
from reconciler.run.audit import AuditWriter, new_run
from reconciler.run.planning import plan_path
from reconciler.run.workspace import Workspace
from tests.adopt.conftest import Write

SHOP = """\
apiVersion: reconciler/v1
kind: Cluster
metadata: {name: shop}
spec:
  provider: sim
  members:
    web: {template: web, count: 2}
"""
ONE = SHOP.replace("count: 2", "count: 1")


def test_forget_lets_the_server_go(folder: Write, ws: Workspace) -> None:
    path = folder(SHOP)
    assert apply_plan(plan_path(path, ws), ws, new_run("t", None)).ok
    path = folder(ONE)  # shop/web/1 is no longer declared: forget it rather than delete it
    done = forget(path, "shop/web/1", ws, new_run("t", None))
    assert [s.key for s in done.servers] == ["shop/web/1"] and not done.still_declared
    assert plan_path(path, ws).changes == ()  # nothing to delete: it is not ours any more
    store = ws.store()
    entries = [e.record for e in store.audit_log(deployment=path.name)
               if e.record.action is AuditAction.FORGET]
    assert [e.outcome for e in entries] == [Outcome.INTENT, Outcome.SUCCEEDED]
    assert {i.key for i in store.open_intervals(path.name)} == {"shop/web/0"}
    with pytest.raises(UserError, match="owns no server under this key"):
        forget(path, "shop/web/1", ws, new_run("t", None))
    with pytest.raises(UserError, match="is not a server key"):
        forget(path, "shop/web", ws, new_run("t", None))


def test_an_interrupted_forget_is_settled_by_observation(
    folder: Write, ws: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = folder(SHOP)
    assert apply_plan(plan_path(path, ws), ws, new_run("t", None)).ok
    real = AuditWriter.mutate

    def dies_after_the_call(self: AuditWriter, key: str, provider: object, action: AuditAction,
                            call: object, **kw: object) -> object:
        self.record(key, "sim", action, Outcome.INTENT, resource_id=str(kw["resource_id"]))
        call()  # type: ignore[operator]
        raise KeyboardInterrupt

    monkeypatch.setattr(AuditWriter, "mutate", dies_after_the_call)
    with pytest.raises(KeyboardInterrupt):
        forget(folder(ONE), "shop/web/1", ws, new_run("t", None))
    monkeypatch.setattr(AuditWriter, "mutate", real)
    report = apply_plan(plan_path(folder(ONE), ws), ws, new_run("t", None))
    assert report.ok and any("forget shop/web/1: recovered" in m for m in report.recovered)
    assert {i.key for i in ws.store().open_intervals(path.name)} == {"shop/web/0"}
