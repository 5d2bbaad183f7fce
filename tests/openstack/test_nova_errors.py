"""Failure modes, as Nova itself answers them: quota, no valid host, a task in the way, no cloud at all.

Every refusal here is Nova's own (its quota engine, its scheduler, its task-state checks),
reached through the real API; only the connection failure is made by pointing a provider at a
port nobody listens on.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from nova.virt import fake as fake_virt

from reconciler.core.errors import PermanentError, TransientError, UserError
from reconciler.core.model import ProviderConfig, ServerStatus
from reconciler.core.provider import create_provider
from reconciler.core.retry import RetryPolicy, call_with_retry
from tests.conformance.backend import fixed_context
from tests.openstack.conftest import MakeProvider
from tests.openstack.helpers import SMALL, request, resize
from tests.openstack.novacloud import Project

ONCE = RetryPolicy(attempts=5, base_delay=0.0, max_delay=0.0, sleep=lambda _s: None)


def test_quota_exceeded_is_permanent_with_novas_message(
    project: Project, make_provider: MakeProvider, owner: str
) -> None:
    provider = make_provider()
    project.set_quota(instances=1)
    provider.create(request(owner, "web/front/0"))
    attempts = 0

    def create() -> object:
        nonlocal attempts
        attempts += 1
        return provider.create(request(owner, "web/front/1"))

    with pytest.raises(PermanentError) as caught:
        call_with_retry(create, ONCE)

    assert attempts == 1 and caught.value.code == "QuotaExceeded"
    assert "Quota exceeded for instances" in str(caught.value)  # Nova's words, as the audit log keeps them
    assert project.gateway.statuses("POST /v2.1/servers") == [202, 403]
    assert [s.key for s in provider.observe(owner)] == ["web/front/0"]


def test_no_valid_host_is_permanent_and_the_failed_server_is_removed(
    project: Project, make_provider: MakeProvider, owner: str, huge_flavor: str
) -> None:
    provider = make_provider()
    with pytest.raises(PermanentError) as caught:
        call_with_retry(lambda: provider.create(request(owner, "db/main/0", flavor=huge_flavor)), ONCE)

    assert caught.value.code == "NoValidHost"
    assert "No valid host was found" in str(caught.value)  # the fault Nova recorded on the server
    assert project.gateway.statuses("POST /v2.1/servers") == [202]  # accepted, then failed to schedule
    assert project.servers() == [] and provider.observe(owner) == []  # the ERROR server was deleted


@pytest.fixture
def slow_power_off(monkeypatch: pytest.MonkeyPatch) -> Iterator[threading.Event]:
    """Make the fake hypervisor's power-off wait until the test sets the returned event."""
    release = threading.Event()
    real = fake_virt.FakeDriver.power_off

    def power_off(self: Any, *args: Any, **kwargs: Any) -> Any:
        release.wait(120)  # the test sets it (at the latest at teardown); this only bounds a hang
        return real(self, *args, **kwargs)

    monkeypatch.setattr(fake_virt.FakeDriver, "power_off", power_off)
    try:
        yield release
    finally:
        release.set()


def test_a_running_task_is_waited_out_not_failed(
    project: Project, make_provider: MakeProvider, owner: str, slow_power_off: threading.Event
) -> None:
    provider = make_provider()
    server = provider.create(request(owner, "app/api/0"))
    project.api.post_server_action(server.resource_id, {"os-stop": None})  # someone stops it by hand
    assert project.server(server.resource_id)["OS-EXT-STS:task_state"] == "powering-off"
    threading.Timer(1.0, slow_power_off.set).start()

    updated = provider.update(server, resize(SMALL, "m1.small"))

    actions = project.gateway.statuses(f"POST /v2.1/servers/{server.resource_id}/action")
    assert actions[0] == 409 and 202 in actions  # Nova refused the resize while powering off, then took it
    assert provider.calls["servers.action.resize"] == actions.count(409) + 1
    assert (updated.flavor, updated.size, updated.status) == ("m1.small", SMALL, ServerStatus.STOPPED)
    assert project.server(server.resource_id)["flavor"]["original_name"] == "m1.small"


def test_a_task_that_outlasts_the_wait_is_transient(
    project: Project, make_provider: MakeProvider, owner: str, slow_power_off: threading.Event
) -> None:
    # The server is built under the fixture's generous wait: only the resize is to run out of time.
    # (Built under the short wait itself, a loaded machine's slow build timed out the create
    # instead, a TransientError of another kind before the test reached its point.)
    server = make_provider().create(request(owner, "app/api/0"))
    project.api.post_server_action(server.resource_id, {"os-stop": None})
    assert project.server(server.resource_id)["OS-EXT-STS:task_state"] == "powering-off"
    provider = make_provider(wait_timeout=1)

    with pytest.raises(TransientError) as caught:
        provider.update(server, resize(SMALL, "m1.small"))

    assert caught.value.code == "Conflict" and "powering-off" in str(caught.value)
    assert set(project.gateway.statuses(f"POST /v2.1/servers/{server.resource_id}/action")) == {409}
    assert project.server(server.resource_id)["flavor"]["original_name"] == "m1.tiny"  # nothing changed
    # The power-off is held until the test ends, so the wait ran out on a task still running.
    assert project.server(server.resource_id)["OS-EXT-STS:task_state"] == "powering-off"


def test_unreachable_cloud_is_transient_and_an_unknown_cloud_a_user_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, owner: str
) -> None:
    clouds = tmp_path / "clouds.yaml"
    clouds.write_text(yaml.safe_dump({"clouds": {"nowhere": {
        "auth_type": "none", "auth": {"endpoint": "http://127.0.0.1:9/v2.1"}}}}))
    monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", str(clouds))

    def provider(cloud: str) -> Any:
        config = ProviderConfig(name="nova", type="openstack", spec={"cloud": cloud})
        return create_provider(config, fixed_context(tmp_path))

    with pytest.raises(TransientError) as unreachable:
        provider("nowhere").observe(owner)
    assert unreachable.value.code == "Connection"
    with pytest.raises(UserError) as unknown:
        provider("elsewhere").observe(owner)
    assert "elsewhere" in str(unknown.value)
