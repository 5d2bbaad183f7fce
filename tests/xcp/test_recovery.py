"""Crash safety and session handling: lost replies, resumed creates, re-login, concurrency."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest

from providers.xcp.provider import XcpProvider
from providers.xcp.records import MARK_CREATED
from reconciler.core.errors import TransientError
from reconciler.core.model import TAG_OWNER, ServerStatus
from tests.xcp.conftest import OWNER, make_request
from tests.xcp.helpers import vm_by_uuid
from tests.xcp.xapi_sim import XapiSim

LOGIN = "session.login_with_password"


@pytest.mark.parametrize("lost", ["VM.set_other_config", "VM.provision", "VM.set_memory_limits", "VIF.create",
                                  "VM.start", "VM.add_to_other_config"])
def test_create_after_a_lost_reply_resumes_without_a_duplicate(sim: XapiSim, provider: XcpProvider,
                                                              lost: str) -> None:
    request = make_request()
    sim.drop_response(lost)  # the call happens on the pool; the reply never arrives
    with pytest.raises(TransientError) as cut:
        provider.create(request)
    assert cut.value.code == "CONNECTION"
    if lost != "VM.add_to_other_config":
        assert provider.lookup(OWNER, request.token) is None  # not finished: the retry must do it
        [half] = provider.observe(OWNER)
        assert half.status is ServerStatus.ERROR  # visible, so it is cleaned up if never retried
    server = provider.create(request)  # what the engine does next: same request, same token
    assert server.status is ServerStatus.RUNNING
    assert sim.calls["VM.clone"] == 1 and sim.calls["VM.start"] == 1
    [vm] = sim.vms_named("shop-web-0")
    assert vm["uuid"] == server.resource_id and MARK_CREATED in vm["other_config"]
    assert len(vm["VIFs"]) == 1 and len(vm["VBDs"]) == 1
    assert provider.lookup(OWNER, request.token) == server


def test_transient_failure_mid_create_is_resumed(sim: XapiSim, provider: XcpProvider) -> None:
    request = make_request()
    sim.fail("VM.provision", "HOST_OFFLINE", "OpaqueRef:host")
    with pytest.raises(TransientError) as offline:
        provider.create(request)
    assert offline.value.code == "HOST_OFFLINE" and "HOST_OFFLINE" in str(offline.value)
    server = provider.create(request)
    assert server.status is ServerStatus.RUNNING and len(sim.vms_named("shop-web-0")) == 1


def test_a_lost_clone_reply_leaves_an_unowned_template_that_is_never_touched(sim: XapiSim,
                                                                              provider: XcpProvider) -> None:
    """The one window XAPI leaves open: a clone carries no marks until the next call."""
    request = make_request()
    sim.drop_response("VM.clone")
    with pytest.raises(TransientError):
        provider.create(request)
    server = provider.create(request)
    clones = sim.vms_named("shop-web-0")
    orphan = [vm for vm in clones if TAG_OWNER not in vm["other_config"]]
    assert len(clones) == 2 and len(orphan) == 1 and orphan[0]["is_a_template"]
    assert [s.resource_id for s in provider.observe(OWNER)] == [server.resource_id]


def test_an_abandoned_half_create_is_visible_and_deletable(sim: XapiSim, provider: XcpProvider) -> None:
    """Cloned and marked, then the pool went away and the retry never came: delete cleans it up."""
    sim.fail("VM.provision", "HOST_OFFLINE", "OpaqueRef:host")
    with pytest.raises(TransientError):
        provider.create(make_request())
    [half] = provider.observe(OWNER)
    assert half.status is ServerStatus.ERROR and vm_by_uuid(sim, half.resource_id)["is_a_template"]
    provider.delete(half)
    assert provider.observe(OWNER) == [] and sim.vms_named("shop-web-0") == []


def test_sessions_that_stay_invalid_give_up_as_transient(sim: XapiSim, provider: XcpProvider) -> None:
    provider.observe(OWNER)
    sim.fail("VM.get_all_records", "SESSION_INVALID", "OpaqueRef:stale", times=10)
    with pytest.raises(TransientError):
        provider.observe(OWNER)


def test_session_invalidated_mid_run_is_recovered_and_counted(sim: XapiSim, provider: XcpProvider) -> None:
    server = provider.create(make_request())
    assert provider.calls[LOGIN] == 1
    sim.invalidate_sessions()  # as after a xapi restart on the master
    assert [s.resource_id for s in provider.observe(OWNER)] == [server.resource_id]
    assert provider.calls[LOGIN] == 2 and sim.calls[LOGIN] == 2
    sim.fail("VM.get_all_records", "SESSION_INVALID", "OpaqueRef:stale")
    assert len(provider.observe(OWNER)) == 1
    assert provider.calls[LOGIN] == 3


def test_sessions_are_pooled_across_concurrent_calls(sim: XapiSim, provider: XcpProvider) -> None:
    requests = [make_request(f"shop/web/{n}") for n in range(6)]
    with ThreadPoolExecutor(max_workers=3) as pool:
        servers = list(pool.map(provider.create, requests))
    assert len({s.resource_id for s in servers}) == 6
    assert sorted(s.key for s in provider.observe(OWNER)) == sorted(r.key for r in requests)
    assert 1 <= provider.calls[LOGIN] <= 3
    provider.close()
    assert provider.calls["session.logout"] == provider.calls[LOGIN]
    assert sim.sessions == {}


def test_call_accounting_counts_every_xapi_call(sim: XapiSim,
                                                make_provider: Callable[..., XcpProvider]) -> None:
    provider = make_provider()
    provider.create(make_request())
    provider.observe(OWNER)
    sent = sum(n for method, n in sim.calls.items())
    assert provider.total_calls == sent
    assert vm_by_uuid(sim, provider.observe(OWNER)[0].resource_id)["power_state"] == "Running"
