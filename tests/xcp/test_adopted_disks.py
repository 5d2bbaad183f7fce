"""An adopted VM's own disks are destroyed with it, on the XAPI simulator; shared disks never are.

VMs seeded behind the API (each with its own disks, one disk attached to two VMs, a read-only
and a sharable disk) → adopted through the engine (generate → plan → apply) → the count
lowered → apply: the VM and its own disks are gone, the shared, read-only and sharable disks
and the other VMs' disks are still there. ``forget`` takes the marks off the disks too.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from providers.xcp.provider import XcpProvider
from reconciler.core.clock import Clock
from reconciler.core.model import TAG_KEY, TAG_OWNER, Action
from reconciler.run.adoption import forget
from reconciler.run.apply import apply_plan
from reconciler.run.audit import new_run
from reconciler.run.planning import plan_path
from reconciler.run.workspace import Workspace
from tests.adopt.support import generated_folder
from tests.xcp.conftest import PROVIDER_NOW
from tests.xcp.xapi_db import GIB
from tests.xcp.xapi_sim import XapiSim


def _vdi_names(sim: XapiSim) -> set[str]:
    with sim.lock:
        return {str(r["name_label"]) for r in sim.db.tables["VDI"].values()}


def _vdi(sim: XapiSim, name: str) -> dict[str, Any]:
    with sim.lock:
        return dict(next(r for r in sim.db.tables["VDI"].values() if r["name_label"] == name))


@pytest.fixture
def fleet(sim: XapiSim) -> dict[str, str]:
    """web-a, web-b and legacy (never adopted); name → uuid. web-b and legacy share a disk."""
    uuids = {}
    with sim.lock:
        db = sim.db
        sr = db.by_name("SR", "Local storage")[0]
        refs = {}
        for name in ("web-a", "web-b", "legacy"):
            uuids[name] = sim.add_vm(name)
            refs[name] = db.by_uuid("VM", uuids[name])
            db.attach_new_disk(refs[name], sr, 10 * GIB, "0", name=f"{name} root")
        db.attach_new_disk(refs["web-b"], sr, GIB, "1", name="web-b data")
        shared = db.new_vdi(sr, GIB, name="shared")
        db.attach(refs["web-b"], shared, "2")
        db.attach(refs["legacy"], shared, "1")
        read_only = db.new_vdi(sr, GIB, name="read-only")
        db.get("VDI", read_only)["read_only"] = True
        db.attach(refs["web-b"], read_only, "3")
        sharable = db.new_vdi(sr, GIB, name="sharable")
        db.get("VDI", sharable)["sharable"] = True
        db.attach(refs["web-b"], sharable, "4")
    return uuids


def _folder(tmp_path: Path, provider: XcpProvider) -> Path:
    servers = [s for s in provider.list_unowned() if s.name.startswith("web-")]
    return generated_folder(tmp_path / "lab", provider, servers, "lab")


def test_deleting_an_adopted_vm_destroys_its_own_disks(
    sim: XapiSim, provider: XcpProvider, fleet: dict[str, str], tmp_path: Path
) -> None:
    folder = _folder(tmp_path, provider)
    ws = Workspace(state_dir=tmp_path / "state", clock=Clock(fixed=PROVIDER_NOW))
    try:
        plan = plan_path(folder, ws)
        assert sorted((c.action, c.key) for c in plan.changes) == [
            (Action.ADOPT, "lab/web/0"), (Action.ADOPT, "lab/web/1")]
        assert apply_plan(plan, ws, new_run("tester", None)).ok
        owned = (("web-a root", "lab/web/0"), ("web-b root", "lab/web/1"), ("web-b data", "lab/web/1"))
        for name, key in owned:
            marks = _vdi(sim, name)["other_config"]
            assert (marks.get(TAG_OWNER), marks.get(TAG_KEY)) == ("lab", key), name
        for name in ("shared", "read-only", "sharable", "legacy root"):
            assert TAG_OWNER not in _vdi(sim, name)["other_config"], name
        assert plan_path(folder, ws).changes == ()

        adopted = folder / "adopted.yaml"
        text = adopted.read_text(encoding="utf-8").replace("count: 2", "count: 1")
        adopted.write_text(re.sub(r"\n +1: .*# web-b", "", text), encoding="utf-8")
        fewer = plan_path(folder, ws)
        assert [(c.action, c.key) for c in fewer.changes] == [(Action.DELETE, "lab/web/1")]
        assert apply_plan(fewer, ws, new_run("tester", None)).ok
        assert not sim.vms_named("web-b") and sim.vms_named("web-a")
        names = _vdi_names(sim)
        assert {"web-b root", "web-b data"}.isdisjoint(names)
        assert {"web-a root", "legacy root", "shared", "read-only", "sharable"} <= names

        done = forget(folder, "lab/web/0", ws, new_run("tester", None))
        assert [s.resource_id for s in done.servers] == [fleet["web-a"]]
        assert TAG_OWNER not in _vdi(sim, "web-a root")["other_config"]
    finally:
        ws.close()


def test_a_disk_attached_to_another_vm_since_the_adoption_is_kept(
    sim: XapiSim, provider: XcpProvider, fleet: dict[str, str], tmp_path: Path
) -> None:
    folder = _folder(tmp_path, provider)
    ws = Workspace(state_dir=tmp_path / "state", clock=Clock(fixed=PROVIDER_NOW))
    try:
        assert apply_plan(plan_path(folder, ws), ws, new_run("tester", None)).ok
        with sim.lock:  # someone attaches web-a's disk to legacy as well
            vdi = next(ref for ref, r in sim.db.tables["VDI"].items() if r["name_label"] == "web-a root")
            sim.db.attach(sim.db.by_uuid("VM", fleet["legacy"]), vdi, "5")
        (folder / "adopted.yaml").unlink()
        gone = plan_path(folder, ws)
        assert sorted(c.action for c in gone.changes) == [Action.DELETE, Action.DELETE]
        assert apply_plan(gone, ws, new_run("tester", None)).ok
        assert not sim.vms_named("web-a") and not sim.vms_named("web-b")
        assert "web-a root" in _vdi_names(sim) and "web-b root" not in _vdi_names(sim)
    finally:
        ws.close()
