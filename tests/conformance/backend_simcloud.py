"""Conformance backend for simcloud: a fresh SQLite world per test, small pages, faults via its table."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from providers.simcloud.admin import admin_create, admin_inject_faults
from providers.simcloud.provider import SimCloud
from reconciler.core.model import CreateRequest, ProviderConfig
from reconciler.core.provider import Provider, create_provider
from tests.conformance.backend import BaseBackend, fixed_context


def _simcloud(provider: Provider) -> SimCloud:
    assert isinstance(provider, SimCloud)
    return provider


@dataclass
class SimCloudBackend(BaseBackend):
    provider_name: str = "sim-conformance"

    def make_provider(self, tmp_path: Path) -> Provider:
        config = ProviderConfig(name=self.provider_name, type="simcloud", spec={"page_size": self.page_size})
        return create_provider(config, fixed_context(tmp_path))

    def create_unowned(self, provider: Provider, name: str) -> None:
        sim = _simcloud(provider)
        admin_create(
            sim.context.state_dir,
            provider=sim.name,
            name=name,
            tags={"made-by": "hand"},
            state_file=sim.path.name,
            clock=sim.context.clock,
        )

    def make_many(self, provider: Provider, requests: Sequence[CreateRequest]) -> None:
        _simcloud(provider).bulk_create(requests)

    def inject_transient(self, provider: Provider, count: int) -> None:
        admin_inject_faults(provider.context.state_dir, provider=provider.name, kind="transient", count=count)

    def inject_permanent(self, provider: Provider) -> None:
        admin_inject_faults(provider.context.state_dir, provider=provider.name, kind="permanent", count=1)


BACKENDS = [SimCloudBackend(name="simcloud", image="ubuntu-24.04", page_size=4)]
