"""XAPI failures leave the provider as the right branch of our error tree, code kept."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import jsonschema
import pytest

from providers.xcp.provider import XcpProvider
from reconciler.core.errors import NotFoundError, PermanentError, TransientError, UserError
from reconciler.core.model import ServerStatus, Size, SnapshotRequest
from reconciler.core.provider import ProviderContext, provider_class
from tests.xcp.conftest import OWNER, PASSWORD_ENV, make_request, provider_config
from tests.xcp.xapi_sim import XapiSim


@pytest.mark.parametrize(("method", "code", "kind"), [
    ("VM.get_all_records", "HOST_OFFLINE", TransientError),
    ("VM.clone", "TOO_BUSY", TransientError),
    ("VM.start", "LICENCE_RESTRICTION", PermanentError),
    ("VM.provision", "HANDLE_INVALID", NotFoundError),
    ("VIF.create", "SOMETHING_NEW", PermanentError),
])
def test_injected_failures_are_mapped(sim: XapiSim, provider: XcpProvider, method: str, code: str,
                                      kind: type[Exception]) -> None:
    sim.fail(method, code, "detail")
    with pytest.raises(kind) as raised:
        provider.create(make_request())
    assert isinstance(raised.value, (TransientError, PermanentError))
    assert raised.value.code == code and code in str(raised.value) and method in str(raised.value)


def test_sr_full_is_permanent(make_provider: Callable[..., XcpProvider]) -> None:
    provider = make_provider(sr="Small SR")
    with pytest.raises(PermanentError) as full:
        provider.create(make_request(size=Size(1, 1024, 20)))
    assert full.value.code == "SR_FULL" and not isinstance(full.value, TransientError)


@pytest.mark.parametrize(("spec", "code"), [
    ({"sr": "No Such SR"}, "UNKNOWN_SR"),
    ({"network": "nowhere"}, "UNKNOWN_NETWORK"),
])
def test_unknown_sr_or_network(make_provider: Callable[..., XcpProvider], spec: dict[str, str],
                               code: str) -> None:
    with pytest.raises(PermanentError) as unknown:
        make_provider(**spec).create(make_request())
    assert unknown.value.code == code


def test_unknown_template_is_permanent(sim: XapiSim, provider: XcpProvider) -> None:
    with pytest.raises(PermanentError) as unknown:
        provider.create(make_request(image="Windows 95"))
    assert unknown.value.code == "UNKNOWN_TEMPLATE" and "Windows 95" in str(unknown.value)
    assert sim.calls["VM.clone"] == 0


def test_ambiguous_template_asks_for_a_uuid(sim: XapiSim, provider: XcpProvider) -> None:
    sim.add_vm("Debian Bookworm 12", power_state="Halted")  # a VM, not a template: ignored
    with sim.lock:
        sim.db.new_vm("golden-debian", is_a_template=True)
    with pytest.raises(PermanentError) as ambiguous:
        provider.create(make_request(image="golden-debian"))
    assert ambiguous.value.code == "AMBIGUOUS_TEMPLATE"
    assert provider.create(make_request()).status is ServerStatus.RUNNING


def test_gone_vm_is_not_found(sim: XapiSim, provider: XcpProvider) -> None:
    server = provider.create(make_request())
    provider.delete(server)
    with pytest.raises(NotFoundError) as gone:
        provider.start(server)
    assert gone.value.code == "UUID_INVALID"
    with pytest.raises(NotFoundError):
        provider.snapshot(server, SnapshotRequest(name="late", policy=None))


def test_bad_power_state_is_handled_by_looking_again(sim: XapiSim, provider: XcpProvider) -> None:
    server = provider.create(make_request())
    sim.fail("VM.clean_shutdown", "VM_BAD_POWER_STATE", "vm", "running", "paused")
    stopped = provider.stop(server)
    assert stopped.status is ServerStatus.STOPPED and sim.calls["VM.clean_shutdown"] == 2
    assert provider.stop(stopped).status is ServerStatus.STOPPED  # already halted: nothing to do


def test_connection_refused_is_transient(sim: XapiSim, provider: XcpProvider) -> None:
    sim.stop()
    with pytest.raises(TransientError) as refused:
        provider.observe(OWNER)
    assert refused.value.code == "CONNECTION"


def test_wrong_password_is_permanent(sim: XapiSim, make_provider: Callable[..., XcpProvider],
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PASSWORD_ENV, "guess")
    with pytest.raises(PermanentError) as denied:
        make_provider().observe(OWNER)
    assert denied.value.code == "SESSION_AUTHENTICATION_FAILED" and "guess" not in str(denied.value)


def test_credentials_by_reference(sim: XapiSim, make_provider: Callable[..., XcpProvider], tmp_path: Path,
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    secret = tmp_path / "xcp-password"
    secret.write_text("xcp-secret\n")
    monkeypatch.setenv("XCP_USER", "root")
    provider = make_provider(username=None, username_env="XCP_USER", password_env=None,
                             password_file=str(secret))
    assert provider.observe(OWNER) == []
    monkeypatch.delenv(PASSWORD_ENV)
    with pytest.raises(UserError, match=PASSWORD_ENV):
        make_provider().observe(OWNER)


def test_spec_is_validated(sim: XapiSim, tmp_path: Path) -> None:
    cls = provider_class("xcp")
    assert cls is XcpProvider and XcpProvider.capabilities.metrics
    good = dict(provider_config("https://xcp-master").spec)
    jsonschema.Draft202012Validator(cls.spec_schema).validate(good)
    for bad in ({**good, "password": "inline"}, {**good, "url": "xcp-master"}, {"url": "https://x"}):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.Draft202012Validator(cls.spec_schema).validate(bad)
    config = provider_config("https://xcp-master", username_env="XCP_USER")  # both username forms
    with pytest.raises(UserError, match="exactly one"):
        XcpProvider(config, ProviderContext(state_dir=tmp_path))
