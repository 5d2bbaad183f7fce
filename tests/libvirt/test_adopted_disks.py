"""An adopted domain's own disks are deleted with it, on the test driver; shared disks never are.

Domains defined by hand with plain libvirt XML (disks by file path and by pool volume, a
read-only CD-ROM, a disk another domain uses too) → adopted through the engine (generate →
plan → apply) → the count lowered → apply: the domain and its own disks are gone, the shared
disk, the CD-ROM's image and the other servers' disks are still there; a replacement (a new
image) removes the adopted domain's own disk too. And through the
provider: a disk detached after the adoption, or attached to another domain since, is kept.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

from providers.libvirt.provider import LibvirtProvider
from providers.libvirt.xml import Marks, VolumeRef
from reconciler.core.clock import Clock
from reconciler.core.model import Action, BackupMethod, SnapshotRequest
from reconciler.core.provider import AdoptRequest
from reconciler.run.apply import apply_plan
from reconciler.run.audit import new_run
from reconciler.run.planning import plan_path
from reconciler.run.workspace import Workspace
from tests.adopt.support import generated_folder
from tests.libvirt.fixtures import NOW
from tests.libvirt.world import TEST_POOL, TestDriverWorld

POOL_PATH = "/" + TEST_POOL


def _volume(world: TestDriverWorld, name: str, mib: int = 16) -> None:
    world.pool().createXML(
        f"<volume><name>{name}</name><capacity unit='MiB'>{mib}</capacity>"
        "<target><format type='qcow2'/></target></volume>", 0)


def _file_disk(name: str, dev: str) -> str:
    return (f"<disk type='file' device='disk'><source file='{POOL_PATH}/{name}'/>"
            f"<target dev='{dev}' bus='virtio'/></disk>")


def _pool_disk(name: str, dev: str) -> str:
    return (f"<disk type='volume' device='disk'><source pool='{TEST_POOL}' volume='{name}'/>"
            f"<target dev='{dev}' bus='virtio'/></disk>")


def _cdrom(name: str) -> str:
    return (f"<disk type='file' device='cdrom'><source file='{POOL_PATH}/{name}'/>"
            "<target dev='sda' bus='sata'/><readonly/></disk>")


def _define(world: TestDriverWorld, name: str, *disks: str, start: bool = True) -> None:
    xml = (f"<domain type='test'><name>{name}</name><memory unit='MiB'>64</memory><vcpu>1</vcpu>"
           f"<os><type>hvm</type></os><devices>{''.join(disks)}</devices></domain>")
    dom = world.conn.defineXML(xml)
    if start:
        dom.create()


@pytest.fixture
def fleet(world: TestDriverWorld) -> TestDriverWorld:
    """web-a (its own disk, a shared one by pool volume), web-b (its own disk by path and by pool
    volume, an install CD, the shared disk by path) and legacy (unmanaged, uses the shared disk)."""
    for name in ("web-a.qcow2", "web-b.qcow2", "web-b-data.qcow2", "shared.qcow2", "install.iso"):
        _volume(world, name)
    _define(world, "web-a", _file_disk("web-a.qcow2", "vda"), _pool_disk("shared.qcow2", "vdb"))
    _define(world, "web-b", _file_disk("web-b.qcow2", "vda"), _pool_disk("web-b-data.qcow2", "vdb"),
            _file_disk("shared.qcow2", "vdc"), _cdrom("install.iso"))
    _define(world, "legacy", _file_disk("shared.qcow2", "vda"), start=False)
    return world


def _folder(tmp_path: Path, provider: LibvirtProvider) -> Path:
    servers = [s for s in provider.list_unowned() if s.name.startswith("web-")]
    return generated_folder(tmp_path / "lab", provider, servers, "lab")


def test_deleting_an_adopted_domain_removes_its_own_disks(
    fleet: TestDriverWorld, provider: LibvirtProvider, tmp_path: Path
) -> None:
    folder = _folder(tmp_path, provider)
    ws = Workspace(state_dir=tmp_path / "state", clock=Clock(fixed=NOW))
    try:
        plan = plan_path(folder, ws)
        assert sorted((c.action, c.key) for c in plan.changes) == [
            (Action.ADOPT, "lab/web/0"), (Action.ADOPT, "lab/web/1")]
        assert apply_plan(plan, ws, new_run("tester", None)).ok
        marks = {name: Marks.from_domain(fleet.xml(name)) for name in ("web-a", "web-b")}
        assert marks["web-a"] is not None and marks["web-b"] is not None
        assert marks["web-a"].adopted_disks == (VolumeRef(TEST_POOL, "web-a.qcow2"),)
        assert marks["web-b"].adopted_disks == (VolumeRef(TEST_POOL, "web-b.qcow2"),
                                                VolumeRef(TEST_POOL, "web-b-data.qcow2"))
        assert plan_path(folder, ws).changes == ()

        adopted = folder / "adopted.yaml"
        text = adopted.read_text(encoding="utf-8").replace("count: 2", "count: 1")
        adopted.write_text(re.sub(r"\n +1: .*# web-b", "", text), encoding="utf-8")
        fewer = plan_path(folder, ws)
        assert [(c.action, c.key) for c in fewer.changes] == [(Action.DELETE, "lab/web/1")]
        assert apply_plan(fewer, ws, new_run("tester", None)).ok
        assert "web-b" not in fleet.domain_names() and "web-a" in fleet.domain_names()
        assert fleet.volumes() == ["base.qcow2", "install.iso", "shared.qcow2", "web-a.qcow2"]

        text = adopted.read_text(encoding="utf-8")
        adopted.write_text(text.replace('libvirt: "unknown"', "libvirt: base.qcow2"), encoding="utf-8")
        replace = plan_path(folder, ws)  # a new image: web-a is replaced by a domain we make
        assert [(c.action, c.key) for c in replace.changes] == [(Action.REPLACE, "lab/web/0")]
        assert apply_plan(replace, ws, new_run("tester", None)).ok
        assert "web-a" not in fleet.domain_names() and len(fleet.domain_names()) == 3
        made = [v for v in fleet.volumes() if v.startswith("lab-web-0")]
        assert len(made) == 1 and "web-a.qcow2" not in fleet.volumes()

        adopted.unlink()
        gone = plan_path(folder, ws)
        assert [(c.action, c.key) for c in gone.changes] == [(Action.DELETE, "lab/web/0")]
        assert apply_plan(gone, ws, new_run("tester", None)).ok
        assert fleet.domain_names() == ["legacy", "test"]
        assert fleet.volumes() == ["base.qcow2", "install.iso", "shared.qcow2"]  # legacy still uses it
    finally:
        ws.close()


def _adopt(provider: LibvirtProvider, name: str, key: str) -> None:
    [server] = [s for s in provider.list_unowned() if s.name == name]
    request = AdoptRequest(owner="acme-infra", key=key, token=key.replace("/", "-") * 4, generation=0,
                           spec_hash="abc123", cluster=key.split("/")[0], member=key.split("/")[1])
    provider.adopt(server, request)


Change = Callable[[TestDriverWorld], None]


@pytest.mark.parametrize("since", ["detached", "attached-elsewhere"])
def test_a_disk_no_longer_the_domains_own_is_kept(
    world: TestDriverWorld, provider: LibvirtProvider, since: str
) -> None:
    for name in ("solo.qcow2", "extra.qcow2"):
        _volume(world, name)
    _define(world, "solo", _file_disk("solo.qcow2", "vda"), _pool_disk("extra.qcow2", "vdb"))
    _adopt(provider, "solo", "lab/solo/0")
    recorded = Marks.from_domain(world.xml("solo"))
    assert recorded is not None and len(recorded.adopted_disks) == 2
    if since == "detached":  # the definition redefined without vdb, our marks kept
        xml = world.domain("solo").XMLDesc(0).replace(
            f"<source pool='{TEST_POOL}' volume='extra.qcow2'/>", "<source file='/nowhere.img'/>")
        world.domain("solo").destroy()
        world.conn.defineXML(xml)
    else:
        _define(world, "newcomer", _pool_disk("extra.qcow2", "vda"), start=False)
    [server] = provider.observe("acme-infra")
    provider.delete(server)
    assert "solo" not in world.domain_names()
    assert "extra.qcow2" in world.volumes() and "solo.qcow2" not in world.volumes()


def test_a_base_image_is_never_an_adopted_disk(world: TestDriverWorld, provider: LibvirtProvider) -> None:
    _volume(world, "golden.qcow2")
    backing = f"<backingStore><path>{POOL_PATH}/golden.qcow2</path><format type='qcow2'/></backingStore>"
    world.pool().createXML(
        "<volume><name>clone.qcow2</name><capacity unit='MiB'>16</capacity>"
        f"<target><format type='qcow2'/></target>{backing}</volume>", 0)
    _define(world, "golden", _file_disk("golden.qcow2", "vda"))  # someone boots the base image itself
    _adopt(provider, "golden", "lab/golden/0")
    marks = Marks.from_domain(world.xml("golden"))
    assert marks is not None and marks.adopted_disks == ()  # clone.qcow2 is an overlay of it
    [server] = provider.observe("acme-infra")
    provider.delete(server)
    assert {"golden.qcow2", "clone.qcow2"} <= set(world.volumes())


def test_an_adopted_domain_is_backed_up_from_its_first_own_disk(
    world: TestDriverWorld, provider: LibvirtProvider
) -> None:
    _volume(world, "shared.qcow2")
    _volume(world, "own.qcow2", mib=32)
    _define(world, "legacy", _file_disk("shared.qcow2", "vda"), start=False)
    _define(world, "db", _file_disk("shared.qcow2", "vda"), _pool_disk("own.qcow2", "vdb"))
    _adopt(provider, "db", "lab/db/0")
    [server] = provider.observe("acme-infra")
    request = SnapshotRequest(name="lab-db-0-nightly-1", policy="nightly", method=BackupMethod.IMAGE)
    snap = provider.snapshot(server, request)
    assert (snap.key, snap.policy, snap.status) == ("lab/db/0", "nightly", "available")
    copies = [v for v in world.volumes() if v.endswith(".backup.qcow2")]
    assert len(copies) == 1  # a copy of own.qcow2 (vdb); the shared vda is not the domain's own
    assert world.pool().storageVolLookupByName(copies[0]).info()[1] == 32 * 1024 * 1024
    assert provider.snapshot(server, request) == snap  # a retried backup finds the first one
