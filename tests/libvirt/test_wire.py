"""The wire: libvirt errors in our tree, lost connections reopened, states in our closed set."""

from __future__ import annotations

from collections.abc import Callable

import libvirt
import pytest

from providers.libvirt.provider import LibvirtProvider
from providers.libvirt.wire import map_error, status_of
from reconciler.core.errors import NotFoundError, PermanentError, TransientError
from reconciler.core.model import ServerStatus, UpdateRequest
from tests.libvirt.faults import Faults, libvirt_error
from tests.libvirt.fixtures import OWNER, make_request
from tests.libvirt.world import TestDriverWorld

URI = "qemu+ssh://kvm1/system"


@pytest.mark.parametrize(("code", "domain", "kind", "hint"), [
    (libvirt.VIR_ERR_OPERATION_TIMEOUT, 0, TransientError, "VIR_ERR_OPERATION_TIMEOUT"),
    (libvirt.VIR_ERR_SYSTEM_ERROR, libvirt.VIR_FROM_RPC, TransientError, "connection to qemu+ssh://kvm1/system"),
    (libvirt.VIR_ERR_RPC, libvirt.VIR_FROM_RPC, TransientError, "lost or refused"),
    (libvirt.VIR_ERR_RESOURCE_BUSY, 0, TransientError, "VIR_ERR_RESOURCE_BUSY"),
    (libvirt.VIR_ERR_NO_DOMAIN, 0, NotFoundError, "VIR_ERR_NO_DOMAIN"),
    (libvirt.VIR_ERR_NO_STORAGE_VOL, 0, NotFoundError, "VIR_ERR_NO_STORAGE_VOL"),
    (libvirt.VIR_ERR_XML_DETAIL, 0, PermanentError, "invalid XML"),
    (libvirt.VIR_ERR_AUTH_FAILED, 0, PermanentError, "SSH keys"),
    (libvirt.VIR_ERR_NO_CONNECT, 0, PermanentError, "spec.uri"),
    (libvirt.VIR_ERR_SYSTEM_ERROR, libvirt.VIR_FROM_STORAGE, PermanentError, "VIR_ERR_SYSTEM_ERROR"),
])
def test_libvirt_errors_map_to_our_tree(code: int, domain: int, kind: type[Exception], hint: str) -> None:
    error = map_error(libvirt_error(code, "the daemon says no", domain), "virDomainCreate", URI)
    assert type(error) is kind
    assert hint in str(error) and "the daemon says no" in str(error) and "virDomainCreate" in str(error)
    assert error.code is not None and error.code.startswith("VIR_ERR_")


def test_a_lost_connection_is_dropped_and_reopened(world: TestDriverWorld, provider: LibvirtProvider) -> None:
    provider.create(make_request())
    Faults(provider).connection_lost(operation="virConnectListAllDomains")
    with pytest.raises(TransientError):
        provider.observe(OWNER)
    assert len(provider.observe(OWNER)) == 1
    assert provider.calls["virConnectOpen"] == 2
    provider.close()
    assert provider.calls["virConnectClose"] == 1


@pytest.mark.parametrize(("uri", "kind", "hint"), [
    ("foo:///nowhere", PermanentError, "spec.uri"),
    ("qemu+unix:///system?socket=/nonexistent/libvirt-sock", TransientError, "connection"),
])
def test_unreachable_uris(world: TestDriverWorld, make_provider: Callable[..., LibvirtProvider], uri: str,
                          kind: type[Exception], hint: str) -> None:
    provider = make_provider(uri=uri)
    with pytest.raises(kind) as failed:
        provider.observe(OWNER)
    assert hint in str(failed.value) and uri in str(failed.value)
    assert provider.calls["virConnectOpen"] == 1


@pytest.mark.parametrize(("state", "reason", "status"), [
    (libvirt.VIR_DOMAIN_RUNNING, 1, ServerStatus.RUNNING),
    (libvirt.VIR_DOMAIN_BLOCKED, 0, ServerStatus.RUNNING),
    (libvirt.VIR_DOMAIN_PAUSED, libvirt.VIR_DOMAIN_PAUSED_USER, ServerStatus.STOPPED),
    (libvirt.VIR_DOMAIN_PAUSED, libvirt.VIR_DOMAIN_PAUSED_SNAPSHOT, ServerStatus.PENDING),
    (libvirt.VIR_DOMAIN_PAUSED, libvirt.VIR_DOMAIN_PAUSED_IOERROR, ServerStatus.ERROR),
    (libvirt.VIR_DOMAIN_SHUTDOWN, 0, ServerStatus.STOPPED),
    (libvirt.VIR_DOMAIN_SHUTOFF, libvirt.VIR_DOMAIN_SHUTOFF_SHUTDOWN, ServerStatus.STOPPED),
    (libvirt.VIR_DOMAIN_SHUTOFF, libvirt.VIR_DOMAIN_SHUTOFF_CRASHED, ServerStatus.ERROR),
    (libvirt.VIR_DOMAIN_SHUTOFF, libvirt.VIR_DOMAIN_SHUTOFF_FAILED, ServerStatus.ERROR),
    (libvirt.VIR_DOMAIN_CRASHED, libvirt.VIR_DOMAIN_CRASHED_PANICKED, ServerStatus.ERROR),
    (libvirt.VIR_DOMAIN_PMSUSPENDED, 0, ServerStatus.STOPPED),
    (libvirt.VIR_DOMAIN_NOSTATE, 0, ServerStatus.PENDING),
])
def test_domain_states_map_to_our_closed_set(state: int, reason: int, status: ServerStatus) -> None:
    assert status_of(state, reason) is status


def test_every_call_is_counted(world: TestDriverWorld, provider: LibvirtProvider) -> None:
    seen: list[str] = []
    provider.wire.interceptor = seen.append
    server = provider.create(make_request())
    provider.update(server, UpdateRequest(size=server.size, flavor=None, tags=()))
    provider.delete(server)
    assert "virDomainSetMetadata" in seen and "virDomainUndefineFlags" in seen
    assert sorted(seen) == sorted(provider.calls.elements())  # nothing reaches libvirt uncounted
