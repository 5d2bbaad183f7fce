"""Conformance: day-2 operations — start/stop, snapshots, metrics — where the provider offers them."""

from __future__ import annotations

import pytest

from reconciler.core.errors import PermanentError
from reconciler.core.model import BackupMethod, ServerStatus, SnapshotRequest
from reconciler.core.provider import Provider
from tests.conformance.backend import Backend
from tests.conformance.helpers import make_request, observe_sorted


def test_stop_and_start(backend: Backend, provider: Provider, owner: str) -> None:
    if not (provider.capabilities.start_stop and backend.supports_start_stop):
        pytest.skip(f"{backend.name} does not start and stop servers")
    server = provider.create(make_request(backend, owner, "app/api/0"))

    stopped = provider.stop(server)
    assert stopped.status is ServerStatus.STOPPED
    [seen] = provider.observe(owner)
    assert (seen.resource_id, seen.status) == (server.resource_id, ServerStatus.STOPPED)

    started = provider.start(seen)
    assert started.status is ServerStatus.RUNNING
    [seen] = provider.observe(owner)
    assert (seen.resource_id, seen.status) == (server.resource_id, ServerStatus.RUNNING)


def test_snapshot_list_and_delete(backend: Backend, provider: Provider, owner: str) -> None:
    if not (provider.capabilities.snapshots and backend.supports_snapshots):
        pytest.skip(f"{backend.name} does not take snapshots")
    server = provider.create(make_request(backend, owner, "db/main/0"))

    snap = provider.snapshot(server, SnapshotRequest(name="db-main-0-nightly-1", policy="nightly"))
    assert snap.snapshot_id
    assert (snap.provider, snap.resource_id, snap.key, snap.owner) == (
        provider.name,
        server.resource_id,
        "db/main/0",
        owner,
    )
    assert snap.policy == "nightly"
    assert snap.size_gb >= 0

    listed = provider.list_snapshots(owner)
    assert [s.snapshot_id for s in listed] == [snap.snapshot_id]
    assert listed[0].policy == "nightly" and listed[0].key == "db/main/0"
    assert provider.list_snapshots(owner + "-other") == []

    provider.delete_snapshot(snap)
    assert provider.list_snapshots(owner) == []
    provider.delete_snapshot(snap)  # already gone: no error
    assert [s.resource_id for s in provider.observe(owner)] == [server.resource_id]  # server untouched


def test_snapshots_outlive_their_server(backend: Backend, provider: Provider, owner: str) -> None:
    if not (provider.capabilities.snapshots and backend.supports_snapshots):
        pytest.skip(f"{backend.name} does not take snapshots")
    server = provider.create(make_request(backend, owner, "db/main/0"))
    snap = provider.snapshot(server, SnapshotRequest(name="db-main-0-final", policy=None))
    provider.delete(server)
    assert [s.snapshot_id for s in provider.list_snapshots(owner)] == [snap.snapshot_id]
    provider.delete_snapshot(snap)


@pytest.mark.parametrize("method", list(BackupMethod), ids=str)
def test_restore_from_snapshot(
    backend: Backend, provider: Provider, owner: str, method: BackupMethod
) -> None:
    """A backup of a deleted server comes back as a new generation of its key, exactly once."""
    if not (provider.capabilities.snapshots and backend.supports_snapshots):
        pytest.skip(f"{backend.name} does not take snapshots")
    source = provider.create(make_request(backend, owner, "db/main/0"))
    ask = SnapshotRequest(name="db-main-0-nightly-1", policy="nightly", method=method)
    snap = provider.snapshot(source, ask)
    provider.delete(source)
    request = make_request(backend, owner, "db/main/0", generation=1, spec="spec-restored")

    if method not in backend.restore_methods:
        with pytest.raises(PermanentError):
            provider.create_from_snapshot(request, snap)
        assert provider.observe(owner) == []
        provider.delete_snapshot(snap)
        return

    restored = provider.create_from_snapshot(request, snap)
    assert (restored.key, restored.generation, restored.owner) == ("db/main/0", 1, owner)
    assert (restored.spec_hash, restored.status) == (request.spec_hash, ServerStatus.RUNNING)
    assert (restored.size, restored.flavor) == (backend.small.size, backend.small.flavor)
    assert restored.resource_id != source.resource_id

    again = provider.create_from_snapshot(request, snap)  # a retry after a lost reply
    assert again.resource_id == restored.resource_id
    assert [s.resource_id for s in observe_sorted(provider, owner)] == [restored.resource_id]
    found = provider.lookup(owner, request.token)
    assert found is not None and found.resource_id == restored.resource_id

    provider.delete(restored)
    assert [s.snapshot_id for s in provider.list_snapshots(owner)] == [snap.snapshot_id]  # the backup stays
    provider.delete_snapshot(snap)
    assert provider.observe(owner) == [] and provider.list_snapshots(owner) == []


def test_metrics(backend: Backend, provider: Provider, owner: str) -> None:
    server = provider.create(make_request(backend, owner, "app/api/0"))
    samples = provider.metrics([server])
    if not provider.capabilities.metrics:
        assert samples == []
        return
    [sample] = samples
    assert (sample.provider, sample.resource_id, sample.key) == (
        provider.name,
        server.resource_id,
        server.key,
    )
    assert sample.cpu_seconds >= 0 and sample.memory_mb >= 0
    assert sample.net_rx_bytes >= 0 and sample.net_tx_bytes >= 0
    assert provider.metrics([]) == []
