"""Backups as XAPI snapshots, and measured usage from VM_metrics."""

from __future__ import annotations

import pytest

from providers.xcp.provider import XcpProvider
from providers.xcp.records import MARK_SNAPSHOT_OF
from reconciler.core.errors import PermanentError
from reconciler.core.model import TAG_OWNER, TAG_POLICY, TAG_TAKEN_AT, TAG_TOKEN, Size, SnapshotRequest
from tests.xcp.conftest import OWNER, PROVIDER_NOW, make_request
from tests.xcp.helpers import vdi_count, vm_by_uuid, vm_exists
from tests.xcp.xapi_sim import XapiSim


def test_snapshot_list_and_delete(sim: XapiSim, provider: XcpProvider) -> None:
    server = provider.create(make_request(size=Size(2, 2048, 20)))
    vdis = vdi_count(sim)
    snap = provider.snapshot(server, SnapshotRequest(name="shop-web-0-nightly", policy="nightly"))
    assert (snap.resource_id, snap.key, snap.owner, snap.policy) == (server.resource_id, "shop/web/0", OWNER,
                                                                     "nightly")
    assert snap.created_at == PROVIDER_NOW and snap.size_gb == 20 and snap.name == "shop-web-0-nightly"
    record = vm_by_uuid(sim, snap.snapshot_id)
    assert record["is_a_snapshot"] and record["other_config"][TAG_POLICY] == "nightly"
    assert record["other_config"][TAG_TAKEN_AT] == "2026-11-01T13:00:00Z"
    assert record["other_config"][MARK_SNAPSHOT_OF] == server.resource_id
    assert TAG_TOKEN not in record["other_config"]  # a snapshot is never mistaken for the server
    assert vdi_count(sim) == vdis + 1
    assert [s.resource_id for s in provider.observe(OWNER)] == [server.resource_id]
    assert provider.list_snapshots(OWNER) == [snap]
    assert provider.list_snapshots("someone-else") == []
    provider.delete_snapshot(snap)
    assert not vm_exists(sim, snap.snapshot_id) and vdi_count(sim) == vdis
    assert provider.list_snapshots(OWNER) == []
    provider.delete_snapshot(snap)  # gone: no-op
    assert vm_exists(sim, server.resource_id)


def test_snapshots_outlive_their_server(sim: XapiSim, provider: XcpProvider) -> None:
    server = provider.create(make_request())
    snap = provider.snapshot(server, SnapshotRequest(name="before-delete", policy=None))
    provider.delete(server)
    [kept] = provider.list_snapshots(OWNER)
    assert kept.snapshot_id == snap.snapshot_id and kept.resource_id == server.resource_id
    assert kept.policy is None
    assert provider.observe(OWNER) == []


def test_delete_snapshot_refuses_a_server_or_a_stranger(sim: XapiSim, provider: XcpProvider) -> None:
    server = provider.create(make_request())
    snap = provider.snapshot(server, SnapshotRequest(name="s", policy="daily"))
    with pytest.raises(PermanentError) as not_snapshot:
        provider.delete_snapshot(snap.__class__(**{**snap.__dict__, "snapshot_id": server.resource_id}))
    assert not_snapshot.value.code == "NOT_A_SNAPSHOT" and vm_exists(sim, server.resource_id)
    sim.set_field("VM", snap.snapshot_id, "other_config", {TAG_OWNER: "someone-else"})
    with pytest.raises(PermanentError) as stranger:
        provider.delete_snapshot(snap)
    assert stranger.value.code == "NOT_OWNED" and vm_exists(sim, snap.snapshot_id)


def test_metrics_from_vm_metrics_in_two_calls(sim: XapiSim, provider: XcpProvider) -> None:
    web = provider.create(make_request("shop/web/0", size=Size(2, 2048, 20)))
    db = provider.create(make_request("shop/db/0", size=Size(4, 8192, 50)))
    idle = provider.stop(provider.create(make_request("shop/batch/0", size=Size(1, 1024, 10))))
    sim.db.default_utilisation = 0.5
    with sim.lock:
        ref = sim.db.by_uuid("VM", db.resource_id)
        metrics = sim.db.get("VM_metrics", sim.db.get("VM", ref)["metrics"])
        metrics["VCPUs_utilisation"] = {"0": 1.0, "1": 0.5, "2": 0.0, "3": 0.5}
    before = provider.total_calls
    samples = {s.key: s for s in provider.metrics([web, db, idle])}
    assert provider.total_calls - before == 2
    # Started at the simulator's 12:00, observed at the provider's 13:00: one hour of uptime.
    assert samples["shop/web/0"].cpu_seconds == pytest.approx(2 * 0.25 * 3600)
    assert samples["shop/db/0"].cpu_seconds == pytest.approx(2.0 * 3600)
    assert samples["shop/web/0"].memory_mb == 2048 and samples["shop/db/0"].memory_mb == 8192
    assert samples["shop/batch/0"].cpu_seconds == 0 and samples["shop/batch/0"].memory_mb == 0
    assert samples["shop/db/0"].disk_gb == 50 and samples["shop/db/0"].at == PROVIDER_NOW
    assert provider.metrics([]) == []
