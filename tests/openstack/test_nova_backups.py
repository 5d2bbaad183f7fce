"""Backups and measured usage on Nova: createImage snapshots carrying our marks, found again by a
retry, listed and deleted by metadata; usage samples from server diagnostics, where policy allows."""

from __future__ import annotations

import dataclasses

import pytest

from providers.openstack_common import MARK_SNAPSHOT_OF
from reconciler.errors import PermanentError
from reconciler.model import TAG_KEY, TAG_OWNER, TAG_POLICY, TAG_TAKEN_AT, SnapshotRequest
from tests.conformance.backend import FIXED_NOW
from tests.openstack.conftest import MakeProvider
from tests.openstack.helpers import request
from tests.openstack.novacloud import Project


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
