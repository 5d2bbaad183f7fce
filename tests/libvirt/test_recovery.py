"""Crash safety: a create cut short at any step is finished by the retry, never duplicated or orphaned.

The engine records an intent before ``create`` and the outcome after it. When the run dies
in between, the next run asks ``lookup(token)``: a finished create is found, an unfinished
one is not (it shows as ``error``), and the retried ``create`` picks up where it stopped.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from providers.libvirt.provider import LibvirtProvider
from reconciler.core.errors import TransientError
from reconciler.core.model import ServerStatus
from reconciler.core.retry import RetryPolicy, call_with_retry
from tests.libvirt.faults import Faults
from tests.libvirt.fixtures import OWNER, make_request
from tests.libvirt.world import IMAGE, TestDriverWorld

STEPS = ["virStorageVolCreateXML", "virDomainGetState", "virDomainCreate", "virDomainSetMetadata"]


@pytest.mark.parametrize("step", STEPS)
def test_a_create_cut_after_define_is_resumed_by_a_new_run(
        world: TestDriverWorld, make_provider: Callable[..., LibvirtProvider], step: str) -> None:
    request = make_request()
    first = make_provider()
    Faults(first).connection_lost(operation=step)
    with pytest.raises(TransientError) as cut:
        first.create(request)
    assert "connection" in str(cut.value)
    first.close()  # the run dies here: intent recorded, outcome never written

    again = make_provider()  # the next run, with a new connection
    assert again.lookup(OWNER, request.token) is None  # not finished: the engine creates again
    [half] = again.observe(OWNER)
    assert half.status is ServerStatus.ERROR  # visible, so it is replaced if the retry never comes
    server = again.create(request)
    assert server.status is ServerStatus.RUNNING
    assert server.resource_id == half.resource_id  # found by name and token, not made twice
    assert world.domain_names() == ["shop-web-0", "test"]
    assert world.volumes() == sorted([IMAGE, f"shop-web-0-{server.resource_id[:8]}.qcow2"])
    assert again.lookup(OWNER, request.token) == server


def test_a_finished_create_whose_outcome_was_lost_is_found_by_lookup(
        world: TestDriverWorld, make_provider: Callable[..., LibvirtProvider]) -> None:
    request = make_request()
    created = make_provider().create(request)
    again = make_provider()
    assert again.lookup(OWNER, request.token) == created
    assert again.create(request) == created  # a retried create changes nothing
    assert again.calls["virDomainDefineXMLFlags"] == again.calls["virDomainCreate"] == 0


def test_transient_failures_are_retried_through_to_one_server(world: TestDriverWorld,
                                                             provider: LibvirtProvider) -> None:
    faults = Faults(provider)
    faults.timeout(operation="virDomainDefineXMLFlags")
    faults.connection_lost(operation="virStorageVolCreateXML")
    faults.timeout(operation="virDomainCreate")
    policy = RetryPolicy(attempts=5, base_delay=0.0, max_delay=0.0, sleep=lambda _s: None)
    server = call_with_retry(lambda: provider.create(make_request()), policy)
    assert faults.raised == ["virDomainDefineXMLFlags", "virStorageVolCreateXML", "virDomainCreate"]
    assert provider.observe(OWNER) == [server]
    assert provider.calls["virConnectOpen"] == 2  # the lost connection was dropped and opened again
    assert world.domain_names() == ["shop-web-0", "test"] and len(world.volumes()) == 2


def test_a_crash_during_delete_leaves_an_owned_domain_that_the_next_delete_removes(
        world: TestDriverWorld, make_provider: Callable[..., LibvirtProvider]) -> None:
    first = make_provider()
    server = first.create(make_request())
    Faults(first).connection_lost(operation="virDomainUndefineFlags")
    with pytest.raises(TransientError):
        first.delete(server)
    assert world.volumes() == [IMAGE]  # volumes go first …
    again = make_provider()
    [left] = again.observe(OWNER)  # … so what is left is still owned and visible
    again.delete(left)
    assert world.domain_names() == ["test"] and again.observe(OWNER) == []
