"""Backups, restores and measured usage on Nova: createImage snapshots carrying our marks (and the
backup method asked for), found again by a retry, listed and deleted by metadata; servers booted
from them (a restore is a create, resumed by its token after a lost answer), refused when the
backup is missing, foreign or larger than the disk asked for; usage samples from server
diagnostics, where policy allows."""

from __future__ import annotations

import dataclasses
import uuid

import pytest

from providers.openstack.common import (
    MARK_DISK,
    MARK_IMAGE,
    MARK_METHOD,
    MARK_RESTORED_FROM,
    MARK_SNAPSHOT_OF,
)
from reconciler.core.errors import NotFoundError, PermanentError, TransientError
from reconciler.core.model import (
    TAG_GENERATION,
    TAG_KEY,
    TAG_OWNER,
    TAG_POLICY,
    TAG_TAKEN_AT,
    BackupMethod,
    ServerStatus,
    Size,
    SnapshotRequest,
)
from reconciler.core.retry import RetryPolicy, call_with_retry
from tests.conformance.backend import FIXED_NOW
from tests.openstack.conftest import MakeProvider
from tests.openstack.helpers import IMAGE_ID, request
from tests.openstack.novacloud import Project

NO_SLEEP = RetryPolicy(attempts=3, base_delay=0.0, max_delay=0.0, sleep=lambda _s: None)


def test_snapshot_marks_retry_listing_and_deletion(
    project: Project, make_provider: MakeProvider, owner: str
) -> None:
    provider = make_provider()
    server = provider.create(request(owner, "db/main/0"))
    ask = SnapshotRequest(name="db-main-0-nightly-1", policy="nightly", tags=(("retention", "short"),))

    snap = provider.snapshot(server, ask)

    images = {i["id"]: i for i in project.images()}
    image = images[snap.snapshot_id]
    assert image["name"] == ask.name and image["status"] == "ACTIVE"
    marks = image["metadata"]
    assert (marks[TAG_OWNER], marks[TAG_KEY], marks[TAG_POLICY], marks[MARK_SNAPSHOT_OF]) == (
        owner, "db/main/0", "nightly", server.resource_id)
    assert (marks[TAG_TAKEN_AT], marks["retention"]) == ("2026-11-02T10:00:00Z", "short")
    assert (marks[MARK_METHOD], marks[MARK_DISK]) == ("snapshot", "1")
    assert (snap.key, snap.resource_id, snap.policy, snap.created_at, snap.status) == (
        "db/main/0", server.resource_id, "nightly", FIXED_NOW, "available")

    again = provider.snapshot(server, ask)  # a retry after a lost answer: found by name and marks
    assert again.snapshot_id == snap.snapshot_id
    assert provider.calls["servers.action.createImage"] == 1

    assert [s.snapshot_id for s in provider.list_snapshots(owner)] == [snap.snapshot_id]
    assert provider.list_snapshots(owner + "-other") == []
    with pytest.raises(PermanentError) as foreign:
        provider.delete_snapshot(dataclasses.replace(snap, owner=owner + "-other"))
    assert foreign.value.code == "NotOwned"

    provider.delete_snapshot(snap)
    assert snap.snapshot_id not in {i["id"] for i in project.images()}
    assert provider.list_snapshots(owner) == []
    provider.delete_snapshot(snap)  # gone already: no error


def test_metrics_come_from_diagnostics(project: Project, make_provider: MakeProvider, owner: str) -> None:
    provider = make_provider()
    running = provider.create(request(owner, "app/api/0"))
    stopped = provider.stop(provider.create(request(owner, "app/api/1")))
    provider.calls.clear()

    [sample] = provider.metrics([running, stopped])

    # The fake hypervisor's diagnostics: 17.3 s of CPU, 2,070,139 bytes in, 140,208 out.
    assert (sample.resource_id, sample.key, sample.at) == (running.resource_id, "app/api/0", FIXED_NOW)
    assert (sample.cpu_seconds, sample.net_rx_bytes, sample.net_tx_bytes) == (17.3, 2070139, 140208)
    assert (sample.memory_mb, sample.disk_gb) == (0, 1)
    assert dict(provider.calls) == {"servers.diagnostics": 1}  # a stopped server costs no call


def test_metrics_refused_by_policy_yield_nothing(
    project: Project, make_provider: MakeProvider, owner: str
) -> None:
    provider = make_provider()
    server = provider.create(request(owner, "app/api/0"))
    project.gateway.user, project.gateway.roles = "operator", ("member", "reader")  # not an admin

    assert provider.metrics([server]) == []
    assert project.gateway.statuses(f"GET /v2.1/servers/{server.resource_id}/diagnostics") == [403]


def test_restore_boots_the_backup_image_and_a_lost_answer_is_resumed(
    project: Project, make_provider: MakeProvider, owner: str
) -> None:
    provider = make_provider()
    source = provider.create(request(owner, "db/main/0"))
    snap = provider.snapshot(source, SnapshotRequest(name="db-main-0-nightly-1", policy="nightly",
                                                     method=BackupMethod.IMAGE))
    assert project.images() and {i["id"]: i for i in project.images()}[snap.snapshot_id]["metadata"][
        MARK_METHOD] == "image"  # one kind of backup on Nova: the method is only recorded
    provider.delete(source)
    posts = len(project.gateway.statuses("POST /v2.1/servers"))
    project.gateway.lose["POST /v2.1/servers"] = 1  # Nova boots it; the answer never arrives
    retries: list[TransientError] = []

    restored = call_with_retry(
        lambda: provider.create_from_snapshot(request(owner, "db/main/0", generation=1), snap), NO_SLEEP,
        on_retry=lambda _n, exc, _w: retries.append(exc))

    assert [e.code for e in retries] == ["HTTP502"]
    assert project.gateway.statuses("POST /v2.1/servers")[posts:] == [202]  # booted once, found again
    raw = project.server(restored.resource_id)
    assert (raw["status"], raw["image"]["id"]) == ("ACTIVE", snap.snapshot_id)
    marks = raw["metadata"]
    assert (marks[TAG_OWNER], marks[TAG_KEY], marks[TAG_GENERATION]) == (owner, "db/main/0", "1")
    assert (marks[MARK_RESTORED_FROM], marks[MARK_IMAGE]) == (snap.snapshot_id, IMAGE_ID)
    assert (restored.image, restored.status) == (IMAGE_ID, ServerStatus.RUNNING)  # no image drift

    # A backup of the restored server inherits the backup image's properties in Nova: every mark
    # is written again, so none of the ancestor's survives.
    again = provider.snapshot(restored, SnapshotRequest(name="db-main-0-manual", policy=None))
    image = {i["id"]: i for i in project.images()}[again.snapshot_id]["metadata"]
    assert (image[MARK_SNAPSHOT_OF], image[TAG_POLICY], image[MARK_METHOD]) == (
        restored.resource_id, "", "snapshot")
    assert again.policy is None and again.resource_id == restored.resource_id


def test_restore_refuses_a_small_disk_a_missing_or_a_foreign_backup(
    project: Project, make_provider: MakeProvider, owner: str
) -> None:
    provider = make_provider(boot_from_volume=True)
    big = Size(cpus=1, memory_mb=512, disk_gb=20)
    source = provider.create(request(owner, "db/main/0", size=big))
    snap = provider.snapshot(source, SnapshotRequest(name="db-main-0-nightly-1", policy="nightly"))
    provider.delete(source)
    posts = project.gateway.requests["POST /v2.1/servers"]

    with pytest.raises(PermanentError) as small:
        provider.create_from_snapshot(request(owner, "db/main/0", generation=1, size=Size(1, 512, 10)), snap)
    assert small.value.code == "DiskSmallerThanBackup" and "20 GB" in str(small.value)
    with pytest.raises(NotFoundError) as missing:
        provider.create_from_snapshot(request(owner, "db/main/0", generation=1, size=big),
                                      dataclasses.replace(snap, snapshot_id=str(uuid.uuid4())))
    assert missing.value.code == "BackupNotFound"
    with pytest.raises(PermanentError) as foreign:
        provider.create_from_snapshot(request(owner + "-other", "db/main/0", generation=1, size=big), snap)
    assert foreign.value.code == "NotOwned"
    assert project.gateway.requests["POST /v2.1/servers"] == posts and provider.observe(owner) == []

    restored = provider.create_from_snapshot(request(owner, "db/main/0", generation=1, size=big), snap)
    raw = project.server(restored.resource_id)  # a root volume of the disk asked for, made from the backup
    assert raw["status"] == "ACTIVE" and len(raw["os-extended-volumes:volumes_attached"]) == 1
    assert (restored.size, restored.generation) == (big, 1)
    provider.delete(restored)
    provider.delete_snapshot(snap)
