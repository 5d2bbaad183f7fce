"""providers.libvirt.disks: which storage volumes are a domain's own, for adopting it.

A domain we define names its disk and seed volumes in our marks. A domain made by hand names
its disks only in its definition: ``<disk device='disk'>`` elements whose source is a file or
a block device (found in its pool with ``virStorageVolLookupByPath``) or a pool volume. At
adoption the domain's own disks are recorded in our marks (``adopted-disk``), so deleting the
adopted server removes them as it removes a disk we made.

A disk is the domain's own when it is writable (no ``<readonly/>``, no ``<shareable/>``), is a
volume of a storage pool, and nothing else uses it: no other domain names it, as a disk source
or in a backing chain, and no volume of its pool is an overlay of it (a base image is never
one server's). CD-ROMs and floppies are never a server's disk. Delete asks again, against the
definitions of that moment: a recorded disk another domain uses by then, or one no longer
attached to this domain, is left alone.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

from providers.libvirt.domain import Domain, Domains
from providers.libvirt.wire import Wire
from providers.libvirt.xml import VolumeRef
from reconciler.core.errors import NotFoundError, ProviderError


@dataclass(frozen=True)
class _Source:
    """What one ``<source>`` element names: a path (file, block device) or a pool volume."""

    path: str = ""
    volume: VolumeRef | None = None


def _source(element: ET.Element | None) -> _Source | None:
    if element is None:
        return None
    path = element.get("file") or element.get("dev") or ""
    pool, volume = element.get("pool"), element.get("volume")
    if pool and volume:
        return _Source(path, VolumeRef(pool, volume))
    return _Source(path) if path else None


def _writable_disks(root: ET.Element) -> list[_Source]:
    """The sources of the domain's writable, unshared disks (CD-ROMs and floppies left out)."""
    found = []
    for disk in root.findall("devices/disk"):
        if disk.get("device", "disk") != "disk":
            continue
        if disk.find("readonly") is not None or disk.find("shareable") is not None:
            continue
        source = _source(disk.find("source"))
        if source is not None:
            found.append(source)
    return found


def _all_sources(root: ET.Element) -> list[_Source]:
    """Everything a domain's disks name: their sources and every step of their backing chains."""
    found = []
    for disk in root.findall("devices/disk"):
        for element in [disk.find("source"), *disk.findall(".//backingStore/source")]:
            source = _source(element)
            if source is not None:
                found.append(source)
    return found


@dataclass(frozen=True)
class _Volume:
    ref: VolumeRef
    path: str


def _resolve(wire: Wire, source: _Source) -> _Volume | None:
    """The pool volume behind a disk source, or None when it is in no pool (or gone)."""
    try:
        if source.volume is not None:
            ref = source.volume
            pool = wire.call("virStoragePoolLookupByName",
                             lambda: wire.conn().storagePoolLookupByName(ref.pool))
            volume = wire.call("virStorageVolLookupByName", lambda: pool.storageVolLookupByName(ref.volume))
            return _Volume(ref, str(wire.call("virStorageVolGetPath", lambda: volume.path())))
        path = source.path
        handle = wire.call("virStorageVolLookupByPath", lambda: wire.conn().storageVolLookupByPath(path))
        pool = wire.call("virStoragePoolLookupByVolume", lambda: handle.storagePoolLookupByVolume())
        return _Volume(VolumeRef(str(pool.name()), str(handle.name())), path)
    except ProviderError:
        return None


def _used_elsewhere(wire: Wire, domains: Domains, dom: Domain, volumes: Sequence[_Volume]) -> set[VolumeRef]:
    """Which of ``volumes`` another domain names, or a volume of their pool is an overlay of."""
    paths: set[str] = set()
    refs: set[VolumeRef] = set()
    for handle in domains.list_all():
        try:
            other = domains.read(handle)
        except NotFoundError:
            continue  # undefined between the listing and the read
        if other.uuid == dom.uuid:
            continue
        for source in _all_sources(other.root):
            paths.add(source.path)
            if source.volume is not None:
                refs.add(source.volume)
    for pool_name in sorted({v.ref.pool for v in volumes}):
        paths.update(_backing_paths(wire, pool_name))
    paths.discard("")
    return {v.ref for v in volumes if v.ref in refs or v.path in paths}


def _backing_paths(wire: Wire, pool_name: str) -> Iterable[str]:
    """The paths the volumes of a pool are overlays of."""
    try:
        pool = wire.call("virStoragePoolLookupByName", lambda: wire.conn().storagePoolLookupByName(pool_name))
        handles: list[Any] = wire.call("virStoragePoolListAllVolumes", lambda: pool.listAllVolumes(0))
    except ProviderError:
        return
    for handle in handles:
        try:
            text = str(wire.call("virStorageVolGetXMLDesc", partial(handle.XMLDesc, 0)))
        except ProviderError:
            continue
        backing = ET.fromstring(text).findtext("backingStore/path")
        if backing:
            yield backing


def own_disks(domains: Domains, dom: Domain) -> tuple[VolumeRef, ...]:
    """The volumes of ``dom``'s disks that are its own (see the module docstring), in device order."""
    wire = domains.wire
    found = (_resolve(wire, source) for source in _writable_disks(dom.root))
    volumes = list({v.ref: v for v in found if v is not None}.values())
    if not volumes:
        return ()
    shared = _used_elsewhere(wire, domains, dom, volumes)
    return tuple(v.ref for v in volumes if v.ref not in shared)


def still_own(domains: Domains, dom: Domain, recorded: Sequence[VolumeRef]) -> tuple[VolumeRef, ...]:
    """The disks recorded at adoption that are still ``dom``'s own now."""
    if not recorded:
        return ()
    now = set(own_disks(domains, dom))
    return tuple(ref for ref in recorded if ref in now)
