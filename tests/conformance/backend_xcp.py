"""Conformance backend for xcp: the XCP provider against the XAPI simulator, over real XML-RPC.

One simulator serves the whole session (each test has its own owner, so tests never see
each other). ``make_provider`` logs the provider in and clears its call counter: a login
is a once-per-provider cost, and the suite counts what ``observe`` costs per call.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from providers.xcp.provider import XcpProvider
from reconciler.core.model import ProviderConfig, Size
from reconciler.core.provider import Provider, create_provider
from tests.conformance.backend import BaseBackend, Shape, fixed_context
from tests.xcp.xapi_sim import XapiSim

PASSWORD_ENV = "RECONCILER_CONFORMANCE_XCP_PASSWORD"


@dataclass
class XcpBackend(BaseBackend):
    sim: XapiSim | None = field(default=None, repr=False)

    def _sim(self) -> XapiSim:
        if self.sim is None:
            self.sim = XapiSim()
            self.sim.start()
        return self.sim

    def make_provider(self, tmp_path: Path) -> Provider:
        sim = self._sim()
        os.environ[PASSWORD_ENV] = sim.users["root"]
        config = ProviderConfig(name="xcp-conformance", type="xcp", max_parallel=4, spec={
            "url": sim.url, "username": "root", "password_env": PASSWORD_ENV, "sr": "Local storage",
            "network": "Pool-wide network associated with eth0", "timeout_seconds": 10,
        })
        provider = create_provider(config, fixed_context(tmp_path))
        assert isinstance(provider, XcpProvider)
        provider.xapi("pool.get_all")  # log in now: the suite counts per-observe calls
        provider.calls.clear()
        return provider

    def create_unowned(self, provider: Provider, name: str) -> None:
        self._sim().add_vm(name, other_config={"made-by": "hand"}, tags=["made-by=hand"])

    def inject_transient(self, provider: Provider, count: int) -> None:
        self._sim().fail("*", "HOST_OFFLINE", "OpaqueRef:host", times=count)

    def inject_permanent(self, provider: Provider) -> None:
        self._sim().fail("*", "LICENCE_RESTRICTION", "VM.start")

    def close(self) -> None:
        if self.sim is not None:
            self.sim.stop()
            self.sim = None


BACKENDS = [
    XcpBackend(
        name="xcp-xapi-sim",
        image="Debian Bookworm 12",
        small=Shape(Size(cpus=1, memory_mb=1024, disk_gb=10)),
        large=Shape(Size(cpus=2, memory_mb=2048, disk_gb=10)),
        listing_operation="VM.get_all_records",
        describe_calls=3,  # the pool's VM, VBD and VDI records
        pagination_skip="XAPI does not page: VM.get_all_records lists the whole pool in one call",
    )
]
