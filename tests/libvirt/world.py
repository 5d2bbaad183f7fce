"""The libvirt worlds the tests run against, driven with the raw libvirt API (not our provider).

* ``TestDriverWorld``: a connection to ``test:///default``, the in-process test driver. Its
  state is shared by every connection of the process and reset when the last one closes,
  so a test that holds one open sees what the provider does and starts from scratch.
* ``QemuHost``: a real libvirtd (``qemu:///system``) with a transient dir pool in a
  temporary directory holding a tiny empty qcow2 base image. Domains are software-emulated
  (``type='qemu'``), use user-mode networking and boot nothing: they just reach "running".
"""

from __future__ import annotations

import functools
import gc
import shutil
import tempfile
import uuid
import xml.etree.ElementTree as ET
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import TracebackType
from typing import Any

import libvirt

from providers.libvirt.xml import NS

TEST_URI = "test:///default"
QEMU_URI = "qemu:///system"
TEST_POOL = "default-pool"
IMAGE = "base.qcow2"
_UNDEFINE = libvirt.VIR_DOMAIN_UNDEFINE_MANAGED_SAVE | libvirt.VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA


def _image_xml(name: str, capacity_mb: int) -> str:
    return (f"<volume><name>{name}</name><capacity unit='MiB'>{capacity_mb}</capacity>"
            "<allocation>0</allocation><target><format type='qcow2'/></target></volume>")


def _plain_domain_xml(name: str, domain_type: str, memory_mib: int = 32) -> str:
    return (f"<domain type='{domain_type}'><name>{name}</name><memory unit='MiB'>{memory_mib}</memory>"
            "<vcpu>1</vcpu><os><type>hvm</type></os><devices/></domain>")


def _remove_domain(dom: Any) -> None:
    if dom.isActive():
        dom.destroy()
    dom.undefineFlags(_UNDEFINE)


def owner_of(domain: Any) -> str | None:
    """The owner mark in a domain's XML — a server's or an image backup record's (None: not ours)."""
    root = ET.fromstring(domain.XMLDesc(0))
    for kind in ("server", "backup"):
        owner = root.findtext(f"metadata/{{{NS}}}{kind}/{{{NS}}}owner")
        if owner is not None:
            return owner
    return None


class TestDriverWorld:
    """A connection to the test driver, for setting it up and looking at it behind the provider's back."""

    __test__ = False  # not a pytest test class

    def __init__(self) -> None:
        self.conn: Any = None

    def __enter__(self) -> TestDriverWorld:
        self.conn = libvirt.open(TEST_URI)
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None
        gc.collect()  # handles left in reference cycles would keep the driver's state alive

    def provider_spec(self, **extra: Any) -> dict[str, Any]:
        return {"uri": TEST_URI, "storage_pool": TEST_POOL, **extra}

    def pool(self) -> Any:
        return self.conn.storagePoolLookupByName(TEST_POOL)

    def add_image(self, name: str = IMAGE, capacity_mb: int = 64) -> None:
        if name not in self.volumes():
            self.pool().createXML(_image_xml(name, capacity_mb), 0)

    def volumes(self) -> list[str]:
        return sorted(vol.name() for vol in self.pool().listAllVolumes(0))

    def define_plain(self, name: str, memory_mib: int = 32) -> None:
        """A running domain made by hand: no reconciler metadata."""
        self.conn.defineXML(_plain_domain_xml(name, "test", memory_mib)).create()

    def domain(self, name: str) -> Any:
        return self.conn.lookupByName(name)

    def domain_names(self) -> list[str]:
        return sorted(dom.name() for dom in self.conn.listAllDomains(0))

    def xml(self, name: str) -> ET.Element:
        return ET.fromstring(self.domain(name).XMLDesc(0))


@functools.cache
def qemu_skip_reason() -> str | None:
    """Why the real-libvirtd tests cannot run here, or None when ``qemu:///system`` answers."""
    try:
        conn = libvirt.open(QEMU_URI)
    except libvirt.libvirtError as exc:
        return (f"no libvirtd answers on {QEMU_URI} ({exc.get_error_message()}); "
                "run scripts/setup/libvirt.sh as root to set one up")
    try:
        if "qemu" not in conn.getCapabilities():
            return f"{QEMU_URI} has no QEMU emulator (install qemu-system-x86)"
    finally:
        conn.close()
    return None


class QemuHost:
    """A transient dir pool with an empty qcow2 base image on the real libvirtd."""

    def __init__(self, conn: Any, directory: Path, pool_name: str) -> None:
        self.conn = conn
        self.directory = directory
        self.pool_name = pool_name
        self.handmade: list[str] = []

    @classmethod
    def start(cls) -> QemuHost:
        conn = libvirt.open(QEMU_URI)
        directory = Path(tempfile.mkdtemp(prefix="reconciler-libvirt-"))
        name = f"reconciler-test-{uuid.uuid4().hex[:8]}"
        conn.storagePoolCreateXML(
            f"<pool type='dir'><name>{name}</name><target><path>{directory}</path></target></pool>", 0)
        host = cls(conn, directory, name)
        host.pool().createXML(_image_xml(IMAGE, 16), 0)
        return host

    def pool(self) -> Any:
        return self.conn.storagePoolLookupByName(self.pool_name)

    def provider_spec(self, **extra: Any) -> dict[str, Any]:
        return {"uri": QEMU_URI, "storage_pool": self.pool_name, "domain_type": "qemu",
                "interface_type": "user", "shutdown_timeout_seconds": 0.5, **extra}

    def volumes(self) -> list[str]:
        self.pool().refresh(0)
        return sorted(vol.name() for vol in self.pool().listAllVolumes(0))

    def define_plain(self, name: str, memory_mib: int = 32) -> None:
        self.conn.defineXML(_plain_domain_xml(name, "qemu", memory_mib)).create()
        self.handmade.append(name)

    def foreign_domain_count(self) -> int:
        return len(self.conn.listAllDomains(0))

    def remove_owned(self, *, prefix: str) -> None:
        """Remove the domains of owners starting with ``prefix`` (and hand-made ones), and their volumes."""
        def doomed(dom: Any) -> bool:
            owner = owner_of(dom)
            return (owner is not None and owner.startswith(prefix)) or dom.name() in self.handmade

        with ThreadPoolExecutor(max_workers=8) as workers:  # stopping a QEMU process takes a second or so
            list(workers.map(_remove_domain, filter(doomed, self.conn.listAllDomains(0))))
        self.handmade.clear()
        pool = self.pool()
        pool.refresh(0)
        for vol in pool.listAllVolumes(0):
            if vol.name() != IMAGE:
                vol.delete(0)

    def stop(self) -> None:
        try:
            for vol in self.pool().listAllVolumes(0):
                vol.delete(0)
            self.pool().destroy()
        finally:
            self.conn.close()
            shutil.rmtree(self.directory, ignore_errors=True)
