"""Fixtures: a running XAPI simulator per test, and an XCP provider pointed at it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from providers.xcp.provider import XcpProvider
from reconciler.core.clock import Clock
from reconciler.core.model import CreateRequest, ProviderConfig, Size, idempotency_token
from reconciler.core.provider import ProviderContext
from tests.xcp.xapi_sim import SIM_EPOCH, XapiSim

OWNER = "acme-infra"
NETWORK = "Pool-wide network associated with eth0"
PASSWORD_ENV = "XCP_TEST_PASSWORD"
# The provider's clock runs one hour after the simulator's, so uptimes are exact.
PROVIDER_NOW = datetime(2026, 11, 1, 13, 0, tzinfo=UTC)


@pytest.fixture
def sim() -> Iterator[XapiSim]:
    simulator = XapiSim(now=lambda: SIM_EPOCH)
    simulator.start()
    yield simulator
    simulator.stop()


def provider_config(url: str, **spec: object) -> ProviderConfig:
    base: dict[str, object] = {"url": url, "username": "root", "password_env": PASSWORD_ENV,
                               "sr": "Local storage", "network": NETWORK, "timeout_seconds": 10}
    base.update(spec)
    base = {k: v for k, v in base.items() if v is not None}  # None drops a default key
    return ProviderConfig(name="xcp-lab", type="xcp", spec=base, max_parallel=4)


@pytest.fixture
def make_provider(sim: XapiSim, tmp_path: Path,
                  monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., XcpProvider]]:
    monkeypatch.setenv(PASSWORD_ENV, "xcp-secret")
    made: list[XcpProvider] = []

    def make(**spec: object) -> XcpProvider:
        context = ProviderContext(state_dir=tmp_path, clock=Clock(fixed=PROVIDER_NOW))
        provider = XcpProvider(provider_config(sim.url, **spec), context)
        made.append(provider)
        return provider

    yield make
    for provider in made:
        provider.close()


@pytest.fixture
def provider(make_provider: Callable[..., XcpProvider]) -> XcpProvider:
    return make_provider()


DEFAULT_SIZE = Size(2, 2048, 20)


def make_request(key: str = "shop/web/0", *, generation: int = 0, size: Size = DEFAULT_SIZE,
                 image: str = "Debian Bookworm 12", user_data: str = "#!/bin/sh\necho hello\n",
                 tags: tuple[tuple[str, str], ...] = (("env", "test"),),
                 spec_hash: str = "abc123") -> CreateRequest:
    """The CreateRequest the engine would send for ``key`` (token derived like the engine's)."""
    cluster, member, _ = key.split("/")
    name = key.replace("/", "-") + (f"-g{generation}" if generation else "")
    return CreateRequest(
        owner=OWNER, key=key, name=name, token=idempotency_token(OWNER, key, spec_hash, generation),
        generation=generation, spec_hash=spec_hash, image=image, size=size, flavor=None,
        user_data=user_data, tags=tags, cluster=cluster, member=member,
    )
