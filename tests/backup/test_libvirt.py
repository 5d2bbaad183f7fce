"""The backup lifecycle through a real provider: libvirt on its in-process test driver, under a
policy with ``method: image``. Nightly image backups (record domain + image volume), retention
pruning both, a final backup before destroy, and ``restore`` bringing the key back from it with
the size the server had then — everything checked in libvirt itself through libvirt-python."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from providers.libvirt.xml import NS
from reconciler.backup.restore import restore
from reconciler.config import load_desired_state
from reconciler.core.backups import BackupKind
from reconciler.run.planning import plan_path
from tests.backup.support import (
    DEPLOYMENT,
    EPOCH,
    apply,
    cluster_yaml,
    cycle,
    policy_yaml,
    run_context,
    template_yaml,
    workspace,
    write_desired,
)
from tests.libvirt.world import IMAGE, TEST_POOL, TEST_URI, TestDriverWorld

NIGHTS = 5
GIB = 1024**3

PROVIDER = f"""\
apiVersion: reconciler/v1
kind: Provider
metadata:
  name: kvm-lab
spec:
  type: libvirt
  uri: {TEST_URI}
  storage_pool: {TEST_POOL}
  max_parallel: 4
  price_list: standard
"""


@pytest.fixture
def world() -> Iterator[TestDriverWorld]:
    """The test driver held open for the whole test: its state outlives each engine run's connection."""
    with TestDriverWorld() as opened:
        assert opened.domain_names() == ["test"], "the test driver's state leaked from an earlier test"
        opened.add_image()
        yield opened


@pytest.fixture
def libvirt_desired(world: TestDriverWorld, tmp_path: Path) -> Path:
    return write_desired(
        tmp_path,
        provider=PROVIDER,
        policy=policy_yaml(keep_last=2, keep_daily=0, keep_weekly=0, method="image"),
        template=template_yaml(image_type="libvirt", image=IMAGE, cpus=1, memory_mb=512, disk_gb=10),
        cluster=cluster_yaml(provider="kvm-lab"),
    )


def _metadata(world: TestDriverWorld, name: str, kind: str) -> ET.Element | None:
    return world.xml(name).find(f"metadata/{{{NS}}}{kind}")


def _ours(world: TestDriverWorld, kind: str) -> dict[str, ET.Element]:
    """name → our ``server`` or ``backup`` metadata element, for every domain of the deployment."""
    found = {}
    for name in world.domain_names():
        element = _metadata(world, name, kind)
        if element is not None and element.findtext(f"{{{NS}}}owner") == DEPLOYMENT:
            found[name] = element
    return found


def _image_of(world: TestDriverWorld, record: str) -> str:
    source = world.xml(record).find("devices/disk/source")
    assert source is not None
    return str(source.get("volume"))


def test_backup_lifecycle_on_libvirt(world: TestDriverWorld, libvirt_desired: Path, tmp_path: Path) -> None:
    state = tmp_path / "state"
    assert apply(libvirt_desired, state, EPOCH).ok
    [server] = _ours(world, "server")
    nights = [EPOCH + timedelta(hours=1, days=n) for n in range(NIGHTS)]
    for night in nights:
        report = cycle(libvirt_desired, state, night)
        assert report.ok, report.failures
        assert report.count(BackupKind.TAKE) == 1
    records = _ours(world, "backup")
    assert len(records) == 2  # keep_last 2: the older records and their images were pruned
    assert {r.findtext(f"{{{NS}}}key") for r in records.values()} == {"vault/db/0"}
    assert {r.findtext(f"{{{NS}}}method") for r in records.values()} == {"image"}
    images = sorted(_image_of(world, name) for name in records)
    assert sorted(v for v in world.volumes() if v.endswith(".backup.qcow2")) == images
    assert world.domain(server).snapshotNum(0) == 0  # image backups live outside the server's disk
    assert all(world.domain(name).isActive() == 0 for name in records)
    assert cycle(libvirt_desired, state, nights[-1] + timedelta(hours=1)).results == ()

    destroyed = apply(libvirt_desired, state, nights[-1] + timedelta(hours=2), destroy=True)
    assert destroyed.ok, destroyed.results
    assert [b.action.kind for b in destroyed.backups] == [BackupKind.FINAL]
    assert _ours(world, "server") == {}
    final = destroyed.backups[0].snapshot_id
    assert final is not None
    assert final in {world.domain(name).UUIDString() for name in _ours(world, "backup")}
    assert len(_ours(world, "backup")) == 3

    # The template grows since; the restore brings back the size the server had at its backup.
    (libvirt_desired / "templates.yaml").write_text(
        template_yaml(image_type="libvirt", image=IMAGE, cpus=2, memory_mb=1024, disk_gb=20))
    ws = workspace(state, nights[-1] + timedelta(hours=3))
    try:
        result = restore(load_desired_state(libvirt_desired), ws, run_context(), "vault/db/0", final,
                         confirm=lambda _: True)
    finally:
        ws.close()
    restored = result.server
    assert restored is not None and restored.key == "vault/db/0" and restored.generation >= 1
    assert (restored.size.cpus, restored.size.memory_mb, restored.size.disk_gb) == (1, 512, 10)
    [name] = _ours(world, "server")
    domain = world.domain(name)
    assert domain.UUIDString() == restored.resource_id and domain.isActive() == 1
    root = world.xml(name)
    assert root.findtext("vcpu") == "1" and root.findtext("memory") == str(512 * 1024)
    disk = root.find("devices/disk[@device='disk']/source")
    assert disk is not None
    assert world.pool().storageVolLookupByName(disk.get("volume")).info()[1] == 10 * GIB
    restored_from = root.find(f"metadata/{{{NS}}}server/{{{NS}}}restored-from")
    final_record = next(n for n in _ours(world, "backup") if world.domain(n).UUIDString() == final)
    assert restored_from is not None and restored_from.get("volume") == _image_of(world, final_record)

    ws = workspace(state, nights[-1] + timedelta(hours=4))
    try:
        store = ws.store()
        assert store.verify().ok
        assert store.unresolved_intents(DEPLOYMENT) == []
        plan = plan_path(libvirt_desired, ws)
        assert [c.action.value for c in plan.changes] == ["replace"]  # to the template's new disk size
    finally:
        ws.close()
