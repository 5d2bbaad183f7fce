"""Conformance backends for libvirt: the in-process test driver, and a real libvirtd when one answers.

``libvirt-test``: ``test:///default`` keeps its state per process while a connection is
open and resets when the last one closes. ``make_provider`` adds the base image to the
driver's ``default-pool`` through a short-lived connection, opens the provider's own
connection and only then closes its own, so each test starts from the driver's pristine
state (plus the image) and ends when the provider is closed. The built-in ``test`` domain
is always there and unowned: reading its XML is the one fixed extra call per observe.

``libvirt-qemu``: ``qemu:///system`` with software-emulated (``type='qemu'``) domains
booting nothing from an empty qcow2 image, in a transient dir pool under a temporary
directory. Starting and stopping QEMU processes makes it take over a minute, so it runs
only with ``RECONCILER_LIBVIRT_QEMU_CONFORMANCE=1`` (tests/libvirt/test_real_libvirtd.py
always covers the real daemon), and is skipped where no libvirtd answers.

Faults are raised through ``Wire.interceptor`` (``tests.libvirt.faults``): the test
driver cannot time out or lose its connection.

Restores work from image backups only: an internal qcow2 snapshot (``method: snapshot``)
cannot be copied out of its disk through libvirt's API, so that restore is refused.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from providers.libvirt.provider import LibvirtProvider
from reconciler.core.model import BackupMethod, ProviderConfig, Size
from reconciler.core.provider import Provider, create_provider
from tests.conformance.backend import BaseBackend, Shape, fixed_context
from tests.libvirt.faults import Faults
from tests.libvirt.world import QemuHost, TestDriverWorld, qemu_skip_reason

PAGINATION = "libvirt does not page: listAllDomains lists every domain in one call"
QEMU_OPT_IN = "RECONCILER_LIBVIRT_QEMU_CONFORMANCE"
RESTORE_METHODS = (BackupMethod.IMAGE,)  # internal snapshots cannot leave their disk


def _qemu_skip_reason() -> str | None:
    if os.environ.get(QEMU_OPT_IN) != "1":
        return f"the conformance run on a real libvirtd takes over a minute; set {QEMU_OPT_IN}=1 to run it"
    return qemu_skip_reason()


def _libvirt(provider: Provider) -> LibvirtProvider:
    assert isinstance(provider, LibvirtProvider)
    return provider


@dataclass
class TestDriverBackend(BaseBackend):
    __test__ = False  # not a pytest test class

    def make_provider(self, tmp_path: Path) -> Provider:
        with TestDriverWorld() as world:
            world.add_image()
            config = ProviderConfig(name="libvirt-conformance", type="libvirt", spec=world.provider_spec())
            provider = _libvirt(create_provider(config, fixed_context(tmp_path)))
            provider.wire.conn()  # hold the driver's state: the world's connection closes now
        provider.calls.clear()
        return provider

    def create_unowned(self, provider: Provider, name: str) -> None:
        with TestDriverWorld() as world:
            world.define_plain(name, memory_mib=64)  # the least memory a template can say

    def inject_transient(self, provider: Provider, count: int) -> None:
        Faults(_libvirt(provider)).timeout(count)

    def inject_permanent(self, provider: Provider) -> None:
        Faults(_libvirt(provider)).denied()


@dataclass
class QemuBackend(BaseBackend):
    host: QemuHost | None = field(default=None, repr=False)

    def _host(self) -> QemuHost:
        if self.host is None:
            self.host = QemuHost.start()
        return self.host

    def make_provider(self, tmp_path: Path) -> Provider:
        host = self._host()
        host.remove_owned(prefix="conf-")  # what earlier tests left running
        self.observe_overhead_calls = host.foreign_domain_count()
        config = ProviderConfig(name="libvirt-conformance", type="libvirt", spec=host.provider_spec())
        provider = _libvirt(create_provider(config, fixed_context(tmp_path)))
        provider.wire.conn()
        provider.calls.clear()
        return provider

    def create_unowned(self, provider: Provider, name: str) -> None:
        self._host().define_plain(name, memory_mib=64)

    def inject_transient(self, provider: Provider, count: int) -> None:
        Faults(_libvirt(provider)).timeout(count)

    def inject_permanent(self, provider: Provider) -> None:
        Faults(_libvirt(provider)).denied()

    def close(self) -> None:
        if self.host is not None:
            self.host.remove_owned(prefix="conf-")
            self.host.stop()
            self.host = None


BACKENDS = [
    TestDriverBackend(
        name="libvirt-test",
        kill_skip="the test driver keeps its state in the test process: a killed child's changes die with it",
        image="base.qcow2",
        small=Shape(Size(cpus=1, memory_mb=512, disk_gb=10)),
        large=Shape(Size(cpus=2, memory_mb=1024, disk_gb=10)),
        listing_operation="virConnectListAllDomains",
        observe_overhead_calls=1,
        observe_calls_per_server=2,
        describe_calls=8,  # per domain: lookup, XML, state, its disk's volume and its size
        pagination_skip=PAGINATION,
        restore_methods=RESTORE_METHODS,
    ),
    QemuBackend(
        name="libvirt-qemu",
        skip_reason=_qemu_skip_reason(),
        image="base.qcow2",
        small=Shape(Size(cpus=1, memory_mb=64, disk_gb=1)),
        large=Shape(Size(cpus=2, memory_mb=96, disk_gb=1)),
        listing_operation="virConnectListAllDomains",
        observe_calls_per_server=2,
        describe_calls=8,  # per domain: lookup, XML, state, its disk's volume and its size
        pagination_skip=PAGINATION,
        restore_methods=RESTORE_METHODS,
    ),
]
