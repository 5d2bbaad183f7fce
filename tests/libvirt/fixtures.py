"""Fixtures (made available to this folder by conftest.py): the test driver world, held open for
the test so its state lives exactly that long; providers pointed at it; requests built the way
the engine builds them."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from providers.libvirt.provider import LibvirtProvider
from reconciler.core.clock import Clock
from reconciler.core.model import CreateRequest, ProviderConfig, Size, idempotency_token, server_name
from reconciler.core.provider import ProviderContext
from tests.libvirt.world import TestDriverWorld

OWNER = "acme-infra"
NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
SIZE = Size(cpus=1, memory_mb=512, disk_gb=10)
USER_DATA = "#!/bin/sh\necho hello-from-the-seed\n"


@pytest.fixture
def world() -> Iterator[TestDriverWorld]:
    with TestDriverWorld() as opened:
        assert opened.domain_names() == ["test"], "the test driver's state leaked from an earlier test"
        opened.add_image()
        yield opened


@pytest.fixture
def make_provider(world: TestDriverWorld, tmp_path: Path) -> Iterator[Callable[..., LibvirtProvider]]:
    made: list[LibvirtProvider] = []

    def make(**spec: Any) -> LibvirtProvider:
        config = ProviderConfig(name="kvm-lab", type="libvirt", spec=world.provider_spec(**spec))
        provider = LibvirtProvider(config, ProviderContext(state_dir=tmp_path, clock=Clock(fixed=NOW)))
        made.append(provider)
        return provider

    yield make
    for provider in made:
        provider.close()


@pytest.fixture
def provider(make_provider: Callable[..., LibvirtProvider]) -> LibvirtProvider:
    return make_provider()


def make_request(key: str = "shop/web/0", *, generation: int = 0, size: Size = SIZE,
                 image: str = "base.qcow2", spec_hash: str = "abc123",
                 tags: tuple[tuple[str, str], ...] = (("team", "shop"),),
                 owner: str = OWNER, flavor: str | None = None) -> CreateRequest:
    """The CreateRequest the engine would send for ``key`` (token derived like the engine's)."""
    cluster, member, _ = key.split("/")
    return CreateRequest(
        owner=owner, key=key, name=server_name(key, generation),
        token=idempotency_token(owner, key, spec_hash, generation), generation=generation,
        spec_hash=spec_hash, image=image, size=size, flavor=flavor, user_data=USER_DATA, tags=tags,
        cluster=cluster, member=member,
    )
