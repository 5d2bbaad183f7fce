"""Snapshots (``snapshotCreateXML``) for the backup issue, and measured usage for billing."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from datetime import UTC, datetime

import libvirt
import pytest

from providers.libvirt.provider import LibvirtProvider
from reconciler.core.errors import PermanentError
from reconciler.core.model import MetricSample, SnapshotRequest
from tests.libvirt.fixtures import NOW, OWNER, make_request
from tests.libvirt.world import IMAGE, TestDriverWorld


def test_snapshot_carries_our_marks_and_is_idempotent_by_name(world: TestDriverWorld,
                                                              provider: LibvirtProvider) -> None:
    server = provider.create(make_request())
    request = SnapshotRequest(name="shop-web-0-nightly-1", policy="nightly", tags=(("team", "shop"),))
    snap = provider.snapshot(server, request)
    assert snap.snapshot_id == f"{server.resource_id}/shop-web-0-nightly-1"
    assert (snap.key, snap.owner, snap.policy) == ("shop/web/0", OWNER, "nightly")
    assert (snap.created_at, snap.size_gb) == (NOW, 10.0)
    raw = world.domain("shop-web-0").snapshotLookupByName("shop-web-0-nightly-1", 0).getXMLDesc(0)
    header, _, body = (ET.fromstring(raw).findtext("description") or "").partition("\n")
    assert header == "gitops-reconciler snapshot"
    assert json.loads(body) == {"owner": OWNER, "key": "shop/web/0", "policy": "nightly",
                                "taken-at": "2026-11-01T12:00:00Z", "size-gb": 10, "tags": {"team": "shop"}}
    assert provider.snapshot(server, request) == snap  # a retried snapshot finds the first one
    assert world.domain("shop-web-0").snapshotNum(0) == 1
    assert provider.list_snapshots(OWNER) == [snap]
    assert provider.list_snapshots("someone-else") == []


def test_snapshots_we_did_not_take_are_never_listed_or_deleted(world: TestDriverWorld,
                                                               provider: LibvirtProvider) -> None:
    server = provider.create(make_request())
    world.domain("shop-web-0").snapshotCreateXML("<domainsnapshot><name>by-hand</name></domainsnapshot>", 0)
    assert provider.list_snapshots(OWNER) == []
    with pytest.raises(PermanentError) as taken:
        provider.snapshot(server, SnapshotRequest(name="by-hand", policy=None))
    assert taken.value.code == "NOT_OWNED"


def test_deleting_a_server_with_snapshots_retires_it_until_its_last_snapshot_goes(
        world: TestDriverWorld, provider: LibvirtProvider) -> None:
    server = provider.create(make_request())
    first = provider.snapshot(server, SnapshotRequest(name="s1", policy="nightly"))
    second = provider.snapshot(server, SnapshotRequest(name="s2", policy="nightly"))
    disk = f"shop-web-0-{server.resource_id[:8]}.qcow2"

    provider.delete(server)
    retired = f"shop-web-0.retired-{server.resource_id[:8]}"
    assert world.domain_names() == [retired, "test"]
    assert world.domain(retired).state(0)[0] == libvirt.VIR_DOMAIN_SHUTOFF
    assert world.volumes() == sorted([IMAGE, disk])  # the snapshots live in the disk
    assert provider.observe(OWNER) == [] and provider.lookup(OWNER, server.token) is None
    assert [s.snapshot_id for s in provider.list_snapshots(OWNER)] == [first.snapshot_id, second.snapshot_id]
    provider.delete(server)  # deleting again is a no-op

    again = provider.create(make_request())  # the name is free again, and the disk is a new one
    assert again.resource_id != server.resource_id
    assert world.volumes() == sorted([IMAGE, disk, f"shop-web-0-{again.resource_id[:8]}.qcow2"])

    provider.delete_snapshot(first)
    assert retired in world.domain_names()
    provider.delete_snapshot(second)
    provider.delete_snapshot(second)
    assert world.domain_names() == ["shop-web-0", "test"]
    assert world.volumes() == sorted([IMAGE, f"shop-web-0-{again.resource_id[:8]}.qcow2"])
    assert provider.list_snapshots(OWNER) == []


def test_delete_snapshot_of_another_owner_is_refused(world: TestDriverWorld,
                                                     provider: LibvirtProvider) -> None:
    server = provider.create(make_request())
    snap = provider.snapshot(server, SnapshotRequest(name="s1", policy=None))
    with pytest.raises(PermanentError):
        provider.delete_snapshot(snap.__class__(**{**snap.__dict__, "owner": "someone-else"}))
    assert provider.list_snapshots(OWNER) == [snap]


def test_metrics_come_from_one_stats_call(world: TestDriverWorld, provider: LibvirtProvider) -> None:
    running = provider.create(make_request("shop/web/0"))
    stopped = provider.stop(provider.create(make_request("shop/web/1")))
    provider.calls.clear()
    samples = provider.metrics([running, stopped])
    assert dict(provider.calls) == {"virConnectGetAllDomainStats": 1}
    # The test driver reports states only: no CPU time, no balloon, no NICs.
    assert samples == [
        MetricSample(provider="kvm-lab", resource_id=running.resource_id, key="shop/web/0", at=NOW,
                     cpu_seconds=0.0, memory_mb=512, net_rx_bytes=0, net_tx_bytes=0, disk_gb=10),
        MetricSample(provider="kvm-lab", resource_id=stopped.resource_id, key="shop/web/1", at=NOW,
                     cpu_seconds=0.0, memory_mb=0, net_rx_bytes=0, net_tx_bytes=0, disk_gb=10),
    ]
    assert provider.metrics([]) == []


def test_snapshot_times_fall_back_to_libvirts_creation_time(world: TestDriverWorld,
                                                            provider: LibvirtProvider) -> None:
    server = provider.create(make_request())
    marks = {"owner": OWNER, "key": "shop/web/0", "policy": None}
    description = "gitops-reconciler snapshot\n" + json.dumps(marks)
    world.domain("shop-web-0").snapshotCreateXML(
        f"<domainsnapshot><name>old</name><description>{description}</description></domainsnapshot>", 0)
    [snap] = provider.list_snapshots(OWNER)
    assert snap.resource_id == server.resource_id and snap.created_at.tzinfo is UTC
    assert snap.created_at > datetime(2020, 1, 1, tzinfo=UTC)  # libvirt's own clock, not ours
