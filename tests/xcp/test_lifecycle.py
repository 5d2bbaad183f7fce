"""Create, observe, no-op, update, replace and delete through the XCP provider."""

from __future__ import annotations

import dataclasses

import pytest

from providers.xcp.provider import XcpProvider
from reconciler.core.errors import PermanentError
from reconciler.core.model import (
    TAG_KEY,
    TAG_OWNER,
    TAG_TOKEN,
    ObservedServer,
    ServerStatus,
    Size,
    SnapshotRequest,
    UpdateRequest,
)
from tests.xcp.conftest import NETWORK, OWNER, PROVIDER_NOW, make_request
from tests.xcp.helpers import (
    disks_of,
    mutating_calls,
    network_name,
    user_data,
    vdi_count,
    vifs_of,
    vm_by_uuid,
    vm_exists,
)
from tests.xcp.xapi_db import GIB, MIB
from tests.xcp.xapi_sim import XapiSim


def test_create_builds_a_running_owned_vm(sim: XapiSim, provider: XcpProvider) -> None:
    request = make_request(size=Size(2, 2048, 20), user_data="#!/bin/sh\n" + "echo x\n" * 1000)
    server = provider.create(request)
    assert (server.key, server.owner, server.status) == ("shop/web/0", OWNER, ServerStatus.RUNNING)
    assert server.size == Size(2, 2048, 20) and server.image == "Debian Bookworm 12"
    assert (server.token, server.spec_hash, server.generation) == (request.token, "abc123", 0)
    assert server.tags == (("env", "test"),) and server.created_at == PROVIDER_NOW
    record = vm_by_uuid(sim, server.resource_id)
    assert record["name_label"] == "shop-web-0" and record["is_a_template"] is False
    assert record["other_config"][TAG_TOKEN] == request.token
    assert "default_template" not in record["other_config"]
    assert record["VCPUs_max"] == record["VCPUs_at_startup"] == "2"
    assert record["memory_static_max"] == record["memory_dynamic_max"] == str(2048 * MIB)
    assert record["tags"] == ["env=test"]
    assert user_data(record) == request.user_data  # chunked: more than one xenstore key
    assert int(record["xenstore_data"]["vm-data/user-data/chunks"]) > 1
    [disk] = disks_of(sim, server.resource_id)
    assert disk["virtual_size"] == str(20 * GIB) and disk["other_config"][TAG_OWNER] == OWNER
    [local] = sim.db.by_name("SR", "Local storage")
    assert disk["SR"] == local
    [vif] = vifs_of(sim, server.resource_id)
    assert network_name(sim, vif["network"]) == NETWORK
    assert provider.calls["session.login_with_password"] == 1


def test_custom_template_by_uuid_is_grown_to_the_asked_disk(sim: XapiSim, provider: XcpProvider) -> None:
    golden = next(r for r in sim.vm_records().values() if r["name_label"] == "golden-debian")
    server = provider.create(make_request(image=golden["uuid"], size=Size(1, 1024, 12)))
    [disk] = disks_of(sim, server.resource_id)
    assert disk["virtual_size"] == str(12 * GIB)  # the template's 8 GiB disk, resized
    assert server.size == Size(1, 1024, 12) and server.image == golden["uuid"]


def test_observe_is_one_call_and_ignores_what_is_not_ours(sim: XapiSim, provider: XcpProvider) -> None:
    mine = provider.create(make_request())
    sim.add_vm("legacy-db", other_config={"owner": "dba"}, tags=["env=prod"])
    sim.add_vm("other-team", other_config={TAG_OWNER: "someone-else", TAG_KEY: "x/y/0"})
    provider.snapshot(mine, SnapshotRequest(name="nightly", policy="nightly"))
    before = provider.total_calls
    observed = provider.observe(OWNER)
    assert [s.resource_id for s in observed] == [mine.resource_id]
    assert provider.total_calls - before == 1 and sim.calls["VM.get_all_records"] >= 1
    assert provider.observe("nobody") == []


def test_create_again_with_the_same_token_is_a_no_op(sim: XapiSim, provider: XcpProvider) -> None:
    request = make_request()
    first = provider.create(request)
    writes = mutating_calls(sim)
    second = provider.create(request)
    assert second == first
    assert mutating_calls(sim) == writes
    assert len(sim.vms_named("shop-web-0")) == 1
    assert provider.lookup(OWNER, request.token) == first
    assert provider.lookup(OWNER, "no-such-token") is None


def test_update_with_restart_resizes_and_starts_again(sim: XapiSim, provider: XcpProvider) -> None:
    server = provider.create(make_request(size=Size(2, 2048, 20)))
    tags = (("env", "prod"), ("team", "web"))
    updated = provider.update(server, UpdateRequest(size=Size(4, 4096, 20), flavor=None, tags=tags,
                                                    allow_restart=True))
    assert updated.size == Size(4, 4096, 20) and updated.status is ServerStatus.RUNNING
    assert updated.tags == (("env", "prod"), ("team", "web"))
    assert updated.resource_id == server.resource_id
    assert sim.calls["VM.clean_shutdown"] == 1 and sim.calls["VM.start"] == 2
    record = vm_by_uuid(sim, server.resource_id)
    assert record["memory_dynamic_min"] == str(4096 * MIB) and record["VCPUs_max"] == "4"


def test_update_shrinks_vcpus_in_a_valid_order(sim: XapiSim, provider: XcpProvider) -> None:
    server = provider.create(make_request(size=Size(4, 4096, 20)))
    updated = provider.update(server, UpdateRequest(size=Size(1, 1024, 20), flavor=None, tags=server.tags))
    assert updated.size == Size(1, 1024, 20)


def test_update_without_restart_on_a_running_vm_is_refused(sim: XapiSim, provider: XcpProvider) -> None:
    server = provider.create(make_request(size=Size(2, 2048, 20)))
    with pytest.raises(PermanentError) as refused:
        provider.update(server, UpdateRequest(size=Size(4, 2048, 20), flavor=None, tags=(("env", "prod"),),
                                              allow_restart=False))
    assert refused.value.code == "RESTART_NOT_ALLOWED"
    record = vm_by_uuid(sim, server.resource_id)
    assert record["power_state"] == "Running" and record["tags"] == ["env=test"]  # nothing half-done
    assert sim.calls["VM.clean_shutdown"] == 0


def test_update_of_a_halted_vm_leaves_it_halted(sim: XapiSim, provider: XcpProvider) -> None:
    server = provider.stop(provider.create(make_request(size=Size(2, 2048, 20))))
    assert server.status is ServerStatus.STOPPED
    updated = provider.update(server, UpdateRequest(size=Size(3, 3072, 20), flavor=None, tags=server.tags,
                                                    allow_restart=False))
    assert updated.size == Size(3, 3072, 20) and updated.status is ServerStatus.STOPPED
    assert sim.calls["VM.start"] == 1


def test_tags_change_live_without_a_restart(sim: XapiSim, provider: XcpProvider) -> None:
    sim_vm = provider.create(make_request())
    sim.set_field("VM", sim_vm.resource_id, "tags", ["env=test", "pinned-by-ops"])
    updated = provider.update(sim_vm, UpdateRequest(size=sim_vm.size, flavor=None, tags=(("env", "qa"),),
                                                    allow_restart=False))
    assert updated.tags == (("env", "qa"),)
    assert vm_by_uuid(sim, sim_vm.resource_id)["tags"] == ["pinned-by-ops", "env=qa"]
    assert sim.calls["VM.clean_shutdown"] == 0


def test_disk_change_is_not_in_place(provider: XcpProvider) -> None:
    server = provider.create(make_request(size=Size(2, 2048, 20)))
    with pytest.raises(PermanentError) as refused:
        provider.update(server, UpdateRequest(size=Size(2, 2048, 40), flavor=None, tags=server.tags))
    assert refused.value.code == "DISK_RESIZE_NOT_SUPPORTED"


def test_replace_creates_the_new_generation_then_deletes_the_old(sim: XapiSim, provider: XcpProvider) -> None:
    old = provider.create(make_request(spec_hash="v1"))
    vdis_with_one = vdi_count(sim)
    new = provider.create(make_request(generation=1, spec_hash="v2", image="Ubuntu Jammy Jellyfish 22.04"))
    assert {s.generation for s in provider.observe(OWNER)} == {0, 1}
    provider.delete(old)
    [left] = provider.observe(OWNER)
    assert (left.resource_id, left.name, left.image, left.spec_hash) == (
        new.resource_id, "shop-web-0-g1", "Ubuntu Jammy Jellyfish 22.04", "v2")
    assert vdi_count(sim) == vdis_with_one


def test_delete_removes_vm_and_its_disks_and_is_idempotent(sim: XapiSim, provider: XcpProvider) -> None:
    vdis_before = vdi_count(sim)
    allocation_before = sim.sr_named("Local storage")["virtual_allocation"]
    server = provider.create(make_request())
    provider.delete(server)
    assert not vm_exists(sim, server.resource_id)
    assert vdi_count(sim) == vdis_before
    assert sim.sr_named("Local storage")["virtual_allocation"] == allocation_before
    assert sim.calls["VM.hard_shutdown"] == 1
    provider.delete(server)  # gone already: nothing to do, no error
    assert provider.observe(OWNER) == []


def test_never_touches_what_it_does_not_own(sim: XapiSim, provider: XcpProvider) -> None:
    uuid = sim.add_vm("legacy-db", other_config={"owner": "dba"})
    template = provider.create(make_request())
    impostor = dataclasses.replace(template, resource_id=uuid)
    with pytest.raises(PermanentError) as refused:
        provider.delete(impostor)
    assert refused.value.code == "NOT_OWNED"
    with pytest.raises(PermanentError):
        provider.update(impostor, UpdateRequest(size=Size(8, 8192, 20), flavor=None, tags=()))
    assert vm_by_uuid(sim, uuid)["power_state"] == "Running"


@pytest.mark.parametrize(("state", "status"), [
    ("Running", ServerStatus.RUNNING), ("Halted", ServerStatus.STOPPED), ("Paused", ServerStatus.STOPPED),
    ("Suspended", ServerStatus.STOPPED), ("Crashed", ServerStatus.ERROR), ("Unknown", ServerStatus.ERROR),
])
def test_power_states_map_to_statuses(sim: XapiSim, provider: XcpProvider, state: str,
                                      status: ServerStatus) -> None:
    server = provider.create(make_request())
    sim.set_field("VM", server.resource_id, "power_state", state)
    [observed] = provider.observe(OWNER)
    assert observed.status is status


@pytest.mark.parametrize("state", ["Halted", "Paused", "Suspended"])
def test_start_uses_the_right_power_call(sim: XapiSim, provider: XcpProvider, state: str) -> None:
    server = provider.create(make_request())
    sim.set_field("VM", server.resource_id, "power_state", state)
    started = provider.start(server)
    assert started.status is ServerStatus.RUNNING
    expected = {"Halted": "VM.start", "Paused": "VM.unpause", "Suspended": "VM.resume"}[state]
    assert sim.calls[expected] >= 1
    stopped = provider.stop(started)
    assert stopped.status is ServerStatus.STOPPED


def test_observed_server_round_trips_owner_marks(provider: XcpProvider) -> None:
    server = provider.create(make_request("db/primary/2", generation=3))
    [observed] = provider.observe(OWNER)
    assert isinstance(observed, ObservedServer)
    assert (observed.key, observed.cluster, observed.generation, observed.name) == (
        "db/primary/2", "db", 3, "db-primary-2-g3")
    assert observed == server
