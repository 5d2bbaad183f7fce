"""Conformance: day-2 operations — start/stop, snapshots, metrics — where the provider offers them."""

from __future__ import annotations

import pytest

from providers.base import Provider
from reconciler.model import ServerStatus, SnapshotRequest
from tests.conformance.backend import Backend
from tests.conformance.helpers import make_request


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
