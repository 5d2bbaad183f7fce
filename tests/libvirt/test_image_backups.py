"""Image backups (``method: image``) and restores on the test driver: the record domain and the
image volume libvirt keeps, what observe and list_snapshots see, crash-resume, refusals."""

from __future__ import annotations

import dataclasses
import xml.etree.ElementTree as ET

import pytest

from providers.libvirt.backup import record_name
from providers.libvirt.provider import LibvirtProvider
from providers.libvirt.xml import NS
from reconciler.core.errors import PermanentError, TransientError
from reconciler.core.model import BackupMethod, ServerStatus, Size, SnapshotRequest
from tests.libvirt.faults import Faults
from tests.libvirt.fixtures import OWNER, SIZE, make_request
from tests.libvirt.world import IMAGE, TestDriverWorld

IMAGE_BACKUP = SnapshotRequest(name="shop-web-0-nightly-1", policy="nightly", tags=(("team", "shop"),),
                               method=BackupMethod.IMAGE)
RECORD = record_name("shop-web-0-nightly-1", OWNER)


def _marks(world: TestDriverWorld, name: str) -> dict[str, str]:
    element = world.xml(name).find(f"metadata/{{{NS}}}backup")
    assert element is not None
    return {child.tag.split("}")[1]: child.text or "" for child in element if child.text is not None}


def _disk_source(root: ET.Element) -> tuple[str | None, str | None]:
    source = root.find("devices/disk[@device='disk']/source")
    assert source is not None
    return source.get("pool"), source.get("volume")


def test_an_image_backup_is_a_volume_and_a_record_that_is_never_a_server(
        world: TestDriverWorld, provider: LibvirtProvider) -> None:
    server = provider.create(make_request())
    snap = provider.snapshot(server, IMAGE_BACKUP)
    record = world.domain(RECORD)
    assert snap.snapshot_id == record.UUIDString()
    assert (snap.resource_id, snap.key, snap.owner, snap.policy, snap.size_gb, snap.status) == (
        server.resource_id, "shop/web/0", OWNER, "nightly", 10.0, "available")
    assert record.isActive() == 0 and record.isPersistent() == 1
    assert _marks(world, RECORD) == {
        "owner": OWNER, "key": "shop/web/0", "name": "shop-web-0-nightly-1", "method": "image",
        "policy": "nightly", "taken-at": "2026-11-01T12:00:00Z", "size-gb": "10",
        "source": server.resource_id,
        "copied-at": "2026-11-01T12:00:00Z", "tag": "shop"}
    pool, volume = _disk_source(world.xml(RECORD))
    assert pool == "default-pool" and volume is not None and volume.endswith(".backup.qcow2")
    assert world.xml(RECORD).find("devices/disk/readonly") is not None
    assert volume in world.volumes()
    assert world.domain("shop-web-0").snapshotNum(0) == 0  # nothing inside the server's disk

    assert [s.resource_id for s in provider.observe(OWNER)] == [server.resource_id]
    assert provider.lookup(OWNER, server.token) is not None
    assert provider.snapshot(server, IMAGE_BACKUP) == snap  # a retried backup finds the first one
    assert sorted(world.domain_names()) == sorted([RECORD, "shop-web-0", "test"])

    internal = provider.snapshot(server, SnapshotRequest(name="shop-web-0-manual", policy=None))
    provider.calls.clear()
    both = sorted([snap, internal], key=lambda s: (s.created_at, s.snapshot_id))
    assert provider.list_snapshots(OWNER) == both
    # one listing, one read per domain (test, server, record), the server's snapshots: 1 + 1 read
    assert provider.total_calls == 1 + 3 + 1 + 1
    assert provider.list_snapshots("someone-else") == []

    provider.delete_snapshot(snap)
    assert RECORD not in world.domain_names() and volume not in world.volumes()
    provider.delete_snapshot(snap)  # already gone: no error
    assert provider.list_snapshots(OWNER) == [internal]


def test_restore_copies_the_image_so_the_server_survives_the_backup(
        world: TestDriverWorld, provider: LibvirtProvider) -> None:
    source = provider.create(make_request())
    snap = provider.snapshot(source, IMAGE_BACKUP)
    provider.delete(source)  # no internal snapshots: purged, not retired
    assert world.domain_names() == sorted([RECORD, "test"])
    image = _disk_source(world.xml(RECORD))[1]

    request = make_request(generation=1, spec_hash="restored", size=Size(2, 1024, 20))
    restored = provider.create_from_snapshot(request, snap)
    assert (restored.key, restored.generation, restored.status, restored.size) == (
        "shop/web/0", 1, ServerStatus.RUNNING, Size(2, 1024, 20))
    root = world.xml("shop-web-0-g1")
    server = root.find(f"metadata/{{{NS}}}server")
    assert server is not None
    restored_from = server.find(f"{{{NS}}}restored-from")
    assert restored_from is not None and restored_from.get("volume") == image
    disk = _disk_source(root)[1]
    assert disk is not None and disk != image and disk in world.volumes()
    capacity = world.pool().storageVolLookupByName(disk).info()[1]
    assert capacity == 20 * 1024**3  # the restore's disk size, not the backup's

    provider.delete_snapshot(snap)  # pruning the backup leaves the restored server whole
    assert image not in world.volumes() and disk in world.volumes()
    [seen] = provider.observe(OWNER)
    assert (seen.resource_id, seen.status) == (restored.resource_id, ServerStatus.RUNNING)


def test_restore_is_resumable_by_token(world: TestDriverWorld, provider: LibvirtProvider) -> None:
    source = provider.create(make_request())
    snap = provider.snapshot(source, IMAGE_BACKUP)
    request = make_request(generation=1)
    Faults(provider).timeout(operation="virStorageVolCreateXMLFrom")
    with pytest.raises(TransientError):
        provider.create_from_snapshot(request, snap)
    assert provider.lookup(OWNER, request.token) is None  # defined, not created yet
    restored = provider.create_from_snapshot(request, snap)
    assert restored.status is ServerStatus.RUNNING
    assert [s.name for s in provider.observe(OWNER)] == ["shop-web-0", "shop-web-0-g1"]
    assert provider.create_from_snapshot(request, snap).resource_id == restored.resource_id


def test_an_interrupted_image_backup_lists_as_creating_and_a_retry_completes_it(
        world: TestDriverWorld, provider: LibvirtProvider) -> None:
    server = provider.create(make_request())
    Faults(provider).timeout(operation="virStorageVolCreateXMLFrom")
    with pytest.raises(TransientError):
        provider.snapshot(server, IMAGE_BACKUP)
    [pending] = provider.list_snapshots(OWNER)
    assert pending.status == "creating"
    with pytest.raises(PermanentError) as refused:
        provider.create_from_snapshot(make_request(generation=1), pending)
    assert refused.value.code == "BACKUP_INCOMPLETE"
    done = provider.snapshot(server, IMAGE_BACKUP)
    assert (done.snapshot_id, done.status) == (pending.snapshot_id, "available")
    backups = [v for v in world.volumes() if v.endswith(".backup.qcow2")]
    assert len(backups) == 1


def test_restores_that_cannot_be_done_are_refused_before_anything_exists(
        world: TestDriverWorld, provider: LibvirtProvider) -> None:
    source = provider.create(make_request())
    internal = provider.snapshot(source, SnapshotRequest(name="s1", policy="nightly"))
    image = provider.snapshot(source, IMAGE_BACKUP)
    provider.delete(source)  # retired: its internal snapshot keeps the disk
    before = (world.domain_names(), world.volumes())

    with pytest.raises(PermanentError, match="method: image") as internal_refused:
        provider.create_from_snapshot(make_request(generation=1), internal)
    assert internal_refused.value.code == "RESTORE_NEEDS_IMAGE"
    with pytest.raises(PermanentError) as too_small:
        smaller = make_request(generation=1, size=dataclasses.replace(SIZE, disk_gb=5))
        provider.create_from_snapshot(smaller, image)
    assert too_small.value.code == "DISK_TOO_SMALL"
    with pytest.raises(PermanentError) as not_ours:
        provider.create_from_snapshot(make_request(generation=1, owner="someone-else"), image)
    assert not_ours.value.code == "NOT_OWNED"
    with pytest.raises(PermanentError):
        provider.delete_snapshot(dataclasses.replace(image, owner="someone-else"))
    assert (world.domain_names(), world.volumes()) == before
    assert provider.observe(OWNER) == []

    provider.delete_snapshot(internal)
    provider.delete_snapshot(image)
    assert world.domain_names() == ["test"] and world.volumes() == [IMAGE]
