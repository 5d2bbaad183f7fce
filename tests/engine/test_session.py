"""ProviderSession: providers opened once and closed once, listings counted, leases held and
released with the session, intents settled once — on the simulated cloud (a real provider)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from reconciler.config import load_desired_state
from reconciler.core.clock import Clock
from reconciler.core.errors import LeaseLostError, StalePlanError, UserError
from reconciler.core.records import AuditAction, AuditRecord, Outcome
from reconciler.run.apply import apply_in_session, apply_plan
from reconciler.run.audit import new_run
from reconciler.run.planning import plan_in_session, plan_path
from reconciler.run.session import ProviderSession
from reconciler.run.workspace import Workspace

DESIRED = """\
apiVersion: reconciler/v1
kind: Provider
metadata: {name: sim}
spec: {type: simcloud, page_size: 2}
---
apiVersion: reconciler/v1
kind: ServerTemplate
metadata: {name: node}
spec:
  image: {simcloud: debian-12}
  size: {cpus: 1, memory_mb: 1024, disk_gb: 10}
---
apiVersion: reconciler/v1
kind: Cluster
metadata: {name: shop}
spec:
  provider: sim
  members:
    web: {template: node, count: 3}
"""


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    path = tmp_path / "desired"
    path.mkdir()
    (path / "shop.yaml").write_text(DESIRED, encoding="utf-8")
    return path


@pytest.fixture
def ws(tmp_path: Path) -> Iterator[Workspace]:
    workspace = Workspace(state_dir=tmp_path / "state", clock=Clock())
    yield workspace
    workspace.close()


def test_one_session_serves_a_plan_and_its_apply(folder: Path, ws: Workspace) -> None:
    state = load_desired_state(folder)
    run = new_run("tester", None)
    with ProviderSession(ws, state.providers) as session:
        provider = session.providers["sim"]
        plan = plan_in_session(state, session)
        assert len(plan.changes) == 3 and provider.calls["list_servers"] == 1
        session.hold(run)
        report = apply_in_session(plan, session, run)
        assert report.ok and len(report.observed) == 3
        assert session.providers["sim"] is provider  # the same provider object throughout
        assert provider.calls["list_servers"] == 1 + 1 + 2  # plan, stale check, verify (2 pages)
    assert session.providers == {}  # closed
    assert ws.calls["create_server"] == 3 and ws.calls["list_servers"] == 4  # tallied at close


def test_leases_are_held_for_the_session_and_released_with_it(folder: Path, ws: Workspace) -> None:
    state = load_desired_state(folder)
    store = ws.store()
    with ProviderSession(ws, state.providers) as session:
        [lease] = session.hold(new_run("first", None))
        assert session.held_providers() == {"sim"}
        assert store.current_lease("provider/sim") == lease
        with ProviderSession(ws, state.providers) as other, pytest.raises(LeaseLostError, match="another"):
            other.hold(new_run("second", None))
        assert session.hold(new_run("first", None)) == [lease]  # holding again changes nothing
    with ProviderSession(ws, state.providers) as later:  # released with the first session
        [taken] = later.hold(new_run("third", None))
        assert taken.holder != lease.holder and taken.epoch > lease.epoch


def test_apply_refuses_a_session_without_the_plans_leases(folder: Path, ws: Workspace) -> None:
    plan = plan_path(folder, ws)
    with ProviderSession(ws, plan.providers) as session:
        with pytest.raises(LeaseLostError, match="holds no lease"):
            apply_in_session(plan, session, new_run("tester", None))
    assert ws.calls["create_server"] == 0


def test_a_stale_plan_raises_stale_plan_error_and_changes_nothing(folder: Path, ws: Workspace) -> None:
    stale = plan_path(folder, ws)
    apply_plan(plan_path(folder, ws), ws, new_run("first", None))  # the clouds move on
    created = ws.calls["create_server"]
    with pytest.raises(StalePlanError, match="the plan is stale"):
        apply_plan(stale, ws, new_run("second", None))
    assert ws.calls["create_server"] == created


def test_intents_are_settled_once_per_session(folder: Path, ws: Workspace) -> None:
    state = load_desired_state(folder)
    store = ws.store()
    run = new_run("tester", None)
    store.append(
        AuditRecord(
            deployment=state.deployment, run_id="killed", actor="tester", action=AuditAction.CREATE,
            outcome=Outcome.INTENT, key="shop/web/0", provider="sim", token="never-made",
        ),
        at=ws.clock.now(),
    )
    with ProviderSession(ws, state.providers) as session:
        session.hold(run)
        first = session.settle(state.deployment, run)
        assert len(first) == 1 and "abandoned" in first[0]
        assert session.settle(state.deployment, run) == first
    assert store.unresolved_intents(state.deployment) == []
    settled = store.recent_audit(state.deployment, [AuditAction.CREATE], limit=10)
    assert [e.record.outcome for e in settled].count(Outcome.ABANDONED) == 1


def test_apply_re_checks_ownership_and_keys_against_what_it_observes(folder: Path, ws: Workspace) -> None:
    """An in-process plan (no file, no signature) still may not act on a server under another key."""
    import dataclasses

    apply_plan(plan_path(folder, ws), ws, new_run("first", None))
    (folder / "shop.yaml").write_text(DESIRED.replace("count: 3", "count: 2"), encoding="utf-8")
    plan = plan_path(folder, ws)
    [delete] = plan.changes
    other = next(s for s in plan.basis if s.key == "shop/web/0")
    forged = dataclasses.replace(plan, changes=(dataclasses.replace(delete, before=other),))
    with pytest.raises(UserError, match="does not own under those keys now"):
        apply_plan(forged, ws, new_run("second", None))
    assert ws.calls["delete_server"] == 0
    with pytest.raises(UserError, match="not a whole number or a percentage"):
        apply_plan(plan, ws, new_run("third", None), max_deletes="inf%")
    with pytest.raises(UserError, match="more than --max-deletes 0%"):
        apply_plan(plan, ws, new_run("fourth", None), max_deletes="0%")
    assert ws.calls["delete_server"] == 0
