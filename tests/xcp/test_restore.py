"""Backups by method (snapshot or full image) and restores from them, against the XAPI simulator."""

from __future__ import annotations

import dataclasses

import pytest

from providers.xcp.provider import XcpProvider
from providers.xcp.records import MARK_BACKUP_ID, MARK_CREATED, MARK_METHOD, MARK_RESTORED_FROM
from reconciler.core.errors import NotFoundError, PermanentError, TransientError
from reconciler.core.model import (
    TAG_OWNER,
    TAG_POLICY,
    TAG_TAKEN_AT,
    TAG_TOKEN,
    BackupMethod,
    ServerStatus,
    Size,
    SnapshotRequest,
)
from tests.xcp.conftest import NETWORK, OWNER, make_request
from tests.xcp.helpers import disks_of, network_name, user_data, vdi_count, vifs_of, vm_by_uuid, vm_exists
from tests.xcp.xapi_db import GIB, MIB, NULL
from tests.xcp.xapi_sim import XapiSim

NIGHTLY = SnapshotRequest(name="shop-web-0-nightly", policy="nightly")
IMAGE = dataclasses.replace(NIGHTLY, method=BackupMethod.IMAGE)


def test_a_snapshot_backup_shares_the_servers_chain(sim: XapiSim, provider: XcpProvider) -> None:
    server = provider.create(make_request())
    snap = provider.snapshot(server, NIGHTLY)
    record = vm_by_uuid(sim, snap.snapshot_id)
    assert record["is_a_snapshot"] and record["other_config"][MARK_METHOD] == "snapshot"
    [disk] = disks_of(sim, snap.snapshot_id)
    [source] = disks_of(sim, server.resource_id)
    assert disk["is_a_snapshot"] and disk["sm_config"]["vhd-parent"] == source["uuid"]


def test_an_image_backup_is_a_full_copy_and_its_snapshot_is_gone(sim: XapiSim, provider: XcpProvider) -> None:
    server = provider.create(make_request(size=Size(2, 2048, 20)))
    vms, vdis = len(sim.vm_records()), vdi_count(sim)
    image = provider.snapshot(server, IMAGE)
    assert sim.calls["VM.snapshot"] == 1 and sim.calls["VM.copy"] == 1
    assert len(sim.vm_records()) == vms + 1 and vdi_count(sim) == vdis + 1  # the snapshot was destroyed
    record = vm_by_uuid(sim, image.snapshot_id)
    assert record["is_a_template"] and not record["is_a_snapshot"] and record["snapshot_of"] == NULL
    marks = record["other_config"]
    assert marks[MARK_METHOD] == "image" and marks[MARK_BACKUP_ID] == image.snapshot_id
    assert marks[TAG_POLICY] == "nightly" and TAG_TAKEN_AT in marks and TAG_TOKEN not in marks
    [disk] = disks_of(sim, image.snapshot_id)
    assert not disk["is_a_snapshot"] and disk["sm_config"] == {}  # independent of the server's chain
    assert disk["SR"] == sim.db.by_name("SR", "Local storage")[0] and disk["virtual_size"] == str(20 * GIB)
    assert (image.size_gb, image.key, image.resource_id) == (20, "shop/web/0", server.resource_id)
    assert provider.list_snapshots(OWNER) == [image]
    assert [s.resource_id for s in provider.observe(OWNER)] == [server.resource_id]  # not a server

    provider.delete(server)
    assert provider.list_snapshots(OWNER) == [image] and disks_of(sim, image.snapshot_id) == [disk]
    provider.delete_snapshot(image)
    assert not vm_exists(sim, image.snapshot_id) and provider.list_snapshots(OWNER) == []


def test_an_image_copy_that_fails_leaves_the_marked_snapshot_as_the_backup(sim: XapiSim,
                                                                           provider: XcpProvider) -> None:
    server = provider.create(make_request())
    sim.fail("VM.copy", "HOST_OFFLINE", "OpaqueRef:host")
    with pytest.raises(TransientError):
        provider.snapshot(server, IMAGE)
    [kept] = provider.list_snapshots(OWNER)
    assert vm_by_uuid(sim, kept.snapshot_id)["is_a_snapshot"] and kept.policy == "nightly"
    assert [s.resource_id for s in provider.observe(OWNER)] == [server.resource_id]


@pytest.mark.parametrize("method", list(BackupMethod), ids=str)
def test_restore_clones_the_backup_grows_its_disk_and_starts_it(sim: XapiSim, provider: XcpProvider,
                                                                method: BackupMethod) -> None:
    source = provider.create(make_request(size=Size(2, 2048, 20)))
    backup = provider.snapshot(source, dataclasses.replace(NIGHTLY, method=method))
    provider.delete(source)
    request = make_request(generation=1, size=Size(4, 4096, 30), user_data="#!/bin/sh\necho back\n")
    restored = provider.create_from_snapshot(request, backup)
    assert restored.status is ServerStatus.RUNNING and restored.size == Size(4, 4096, 30)
    assert (restored.generation, restored.token, restored.image) == (1, request.token, "Debian Bookworm 12")
    record = vm_by_uuid(sim, restored.resource_id)
    assert not record["is_a_template"] and not record["is_a_snapshot"] and record["power_state"] == "Running"
    assert record["VCPUs_at_startup"] == "4" and record["memory_static_max"] == str(4096 * MIB)
    marks = record["other_config"]
    assert marks[MARK_RESTORED_FROM] == backup.snapshot_id and marks[TAG_TOKEN] == request.token
    assert MARK_CREATED in marks and not {TAG_TAKEN_AT, TAG_POLICY, MARK_METHOD, MARK_BACKUP_ID} & set(marks)
    assert user_data(record) == "#!/bin/sh\necho back\n"
    [disk] = disks_of(sim, restored.resource_id)
    [backup_disk] = disks_of(sim, backup.snapshot_id)
    assert disk["sm_config"]["vhd-parent"] == backup_disk["uuid"]  # its disk starts as the backup's
    assert disk["virtual_size"] == str(30 * GIB) and backup_disk["virtual_size"] == str(20 * GIB)
    assert [network_name(sim, vif["network"]) for vif in vifs_of(sim, restored.resource_id)] == [NETWORK]
    assert provider.list_snapshots(OWNER) == [backup]
    assert provider.create_from_snapshot(request, backup) == restored
    assert sim.calls["VM.clone"] == 2  # the template for the source, the backup for the restore

    provider.delete(restored)
    assert disks_of(sim, backup.snapshot_id) == [backup_disk]


def test_restore_refuses_a_smaller_disk_before_changing_anything(sim: XapiSim, provider: XcpProvider) -> None:
    backup = provider.snapshot(provider.create(make_request(size=Size(2, 2048, 20))), NIGHTLY)
    clones = sim.calls["VM.clone"]
    with pytest.raises(PermanentError) as small:
        provider.create_from_snapshot(make_request(generation=1, size=Size(2, 2048, 10)), backup)
    assert small.value.code == "DISK_TOO_SMALL" and "20 GB" in str(small.value)
    assert sim.calls["VM.clone"] == clones and len(provider.observe(OWNER)) == 1


def test_restore_refuses_a_missing_or_strange_backup(sim: XapiSim, provider: XcpProvider) -> None:
    server = provider.create(make_request())
    backup = provider.snapshot(server, NIGHTLY)
    request = make_request(generation=1)
    with pytest.raises(NotFoundError) as missing:
        provider.create_from_snapshot(request, dataclasses.replace(backup, snapshot_id="no-such-uuid"))
    assert missing.value.code == "UNKNOWN_BACKUP"
    with pytest.raises(NotFoundError):  # a server is not a backup
        provider.create_from_snapshot(request, dataclasses.replace(backup, snapshot_id=server.resource_id))
    sim.set_field("VM", backup.snapshot_id, "other_config", {TAG_OWNER: "someone-else"})
    with pytest.raises(PermanentError) as stranger:
        provider.create_from_snapshot(request, backup)
    assert stranger.value.code == "NOT_OWNED"
    assert sim.calls["VM.clone"] == 1 and len(provider.observe(OWNER)) == 1


@pytest.mark.parametrize("lost", ["VM.set_other_config", "VM.provision", "VM.set_xenstore_data", "VM.start",
                                  "VM.add_to_other_config"])
def test_a_restore_after_a_lost_reply_resumes_without_a_duplicate(sim: XapiSim, provider: XcpProvider,
                                                                  lost: str) -> None:
    source = provider.create(make_request())
    backup = provider.snapshot(source, IMAGE)
    provider.delete(source)
    request = make_request(generation=1)
    clones = sim.calls["VM.clone"]
    sim.drop_response(lost)
    with pytest.raises(TransientError):
        provider.create_from_snapshot(request, backup)
    restored = provider.create_from_snapshot(request, backup)
    assert restored.status is ServerStatus.RUNNING and sim.calls["VM.clone"] == clones + 1
    assert [s.resource_id for s in provider.observe(OWNER)] == [restored.resource_id]
    assert provider.lookup(OWNER, request.token) == restored and provider.list_snapshots(OWNER) == [backup]


def test_a_lost_clone_reply_leaves_a_visible_half_server_never_a_backup(sim: XapiSim,
                                                                         provider: XcpProvider) -> None:
    source = provider.create(make_request())
    backup = provider.snapshot(source, IMAGE)
    provider.delete(source)
    sim.drop_response("VM.clone")
    with pytest.raises(TransientError):
        provider.create_from_snapshot(make_request(generation=1), backup)
    [orphan] = provider.observe(OWNER)  # carries the backup's marks, but another uuid
    assert orphan.status is ServerStatus.ERROR and provider.list_snapshots(OWNER) == [backup]
    provider.delete(orphan)
    assert provider.observe(OWNER) == [] and provider.list_snapshots(OWNER) == [backup]
