"""providers.libvirt.xml: the XML the libvirt provider writes and reads — domains, volumes, snapshots.

Everything is built with ``xml.etree.ElementTree`` (never by string formatting, so a tag
value or a name can never break out of its element), and every domain definition is
checked by libvirt itself against its schema (``VIR_DOMAIN_DEFINE_VALIDATE``).

Ownership lives in the domain's ``<metadata>`` under our own namespace (``NS``, prefix
``reconciler``): one ``<reconciler:server>`` element holding the marks every provider
keeps (owner, key, spec-hash, generation, token, cluster, member) plus what only we need
(image, disk-gb, flavor, the volumes we made — or, for an adopted domain, the disks that are its
own —, created-at, retired-at) and the user tags:

    <reconciler:server xmlns:reconciler="urn:gitops-reconciler:libvirt:1">
      <reconciler:owner>shop-deploy</reconciler:owner>
      <reconciler:key>shop/web/0</reconciler:key>
      …
      <reconciler:disk pool="default" volume="shop-web-0-3f2a9c1b.qcow2"/>
      <reconciler:tag key="team">shop</reconciler:tag>
    </reconciler:server>

A domain snapshot has no metadata element: its marks are JSON in its ``<description>``,
after a first line saying who wrote it.

An image backup (``BackupMarks``) is a never-started domain definition whose metadata holds
one ``<reconciler:backup>`` element instead (owner, key, name, policy, method, taken-at,
size-gb, the source domain's UUID, the image volume, copied-at once the copy is complete);
``Marks.from_domain`` only reads ``<reconciler:server>``, so such a record is never a server.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from reconciler.core.model import (
    GUARD_TAGS,
    TAG_CLUSTER,
    TAG_GENERATION,
    TAG_KEY,
    TAG_MEMBER,
    TAG_OWNER,
    TAG_PREFIX,
    TAG_SPEC_HASH,
    TAG_TOKEN,
    Size,
)

NS = "urn:gitops-reconciler:libvirt:1"
PREFIX = "reconciler"
ET.register_namespace(PREFIX, NS)

MIB = 1024**2
GIB = 1024**3
SNAPSHOT_HEADER = "gitops-reconciler snapshot"
_UNITS = {"b": 1, "bytes": 1, "k": 1024, "kib": 1024, "kb": 1000, "m": MIB, "mib": MIB, "mb": 1000**2,
          "g": GIB, "gib": GIB, "gb": 1000**3, "t": 1024**4, "tib": 1024**4, "tb": 1000**4}


def _local(tag: str) -> str:
    return tag[len(TAG_PREFIX):]


@dataclass(frozen=True)
class VolumeRef:
    pool: str
    volume: str


@dataclass(frozen=True)
class Marks:
    """What our ``<metadata>`` element says about a domain."""

    owner: str
    key: str
    spec_hash: str
    generation: int
    token: str
    cluster: str = ""
    member: str = ""
    image: str = ""
    disk_gb: int = 0
    flavor: str | None = None
    disk: VolumeRef | None = None
    seed: VolumeRef | None = None
    created_at: str | None = None
    retired_at: str | None = None
    tags: tuple[tuple[str, str], ...] = field(default=())
    restored_from: VolumeRef | None = None  # the backup image a restored server's disk is copied from
    guards: tuple[tuple[str, str], ...] = field(default=())  # the guard marks (GUARD_TAGS) it carries
    # An adopted domain's own disks (``providers.libvirt.disks``): deleted with it, like ``disk``.
    adopted_disks: tuple[VolumeRef, ...] = field(default=())

    def with_(self, **changes: Any) -> Marks:
        return replace(self, **changes)

    def element(self, *, namespaced: bool = True) -> ET.Element:
        """As XML: namespaced inside a domain definition, bare for ``virDomainSetMetadata``."""
        values = [(_local(TAG_OWNER), self.owner), (_local(TAG_KEY), self.key),
                  (_local(TAG_SPEC_HASH), self.spec_hash), (_local(TAG_GENERATION), str(self.generation)),
                  (_local(TAG_TOKEN), self.token), (_local(TAG_CLUSTER), self.cluster),
                  (_local(TAG_MEMBER), self.member), ("image", self.image), ("disk-gb", str(self.disk_gb)),
                  ("flavor", self.flavor), ("created-at", self.created_at), ("retired-at", self.retired_at)]
        values += [(_local(name), value) for name, value in self.guards]
        refs = [("disk", self.disk), ("seed", self.seed), ("restored-from", self.restored_from)]
        refs += [("adopted-disk", ref) for ref in self.adopted_disks]
        return _marks_element("server", values, refs, self.tags, namespaced=namespaced)

    def metadata_xml(self) -> str:
        """The bare element text ``virDomainSetMetadata`` takes (libvirt adds the namespace)."""
        return ET.tostring(self.element(namespaced=False), encoding="unicode")

    @classmethod
    def from_domain(cls, root: ET.Element) -> Marks | None:
        """Our marks in a domain's XML, or None when the domain is not ours at all."""
        element = root.find(f"metadata/{{{NS}}}server")
        if element is None:
            return None

        def text(name: str) -> str | None:
            return _text(element, name)

        def ref(name: str) -> VolumeRef | None:
            return _ref(element, name)

        owner = text(_local(TAG_OWNER))
        if not owner:
            return None
        tags = _tags(element)
        return cls(
            owner=owner, key=text(_local(TAG_KEY)) or "", spec_hash=text(_local(TAG_SPEC_HASH)) or "",
            generation=_int(text(_local(TAG_GENERATION))), token=text(_local(TAG_TOKEN)) or "",
            cluster=text(_local(TAG_CLUSTER)) or "", member=text(_local(TAG_MEMBER)) or "",
            image=text("image") or "", disk_gb=_int(text("disk-gb")), flavor=text("flavor"),
            disk=ref("disk"), seed=ref("seed"), created_at=text("created-at"), retired_at=text("retired-at"),
            tags=tags, restored_from=ref("restored-from"),
            adopted_disks=tuple(VolumeRef(e.get("pool", ""), e.get("volume", ""))
                                for e in element.findall(f"{{{NS}}}adopted-disk")),
            guards=tuple((name, value) for name in GUARD_TAGS if (value := text(_local(name))) is not None),
        )


def _ref(element: ET.Element, name: str) -> VolumeRef | None:
    found = element.find(f"{{{NS}}}{name}")
    if found is None:
        return None
    return VolumeRef(found.get("pool", ""), found.get("volume", ""))


def _text(element: ET.Element, name: str) -> str | None:
    found = element.find(f"{{{NS}}}{name}")
    return None if found is None else (found.text or "")


def _tags(element: ET.Element) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((tag.get("key", ""), tag.text or "") for tag in element.findall(f"{{{NS}}}tag")))


def _marks_element(
    kind: str,
    values: Iterable[tuple[str, str | None]],
    refs: Iterable[tuple[str, VolumeRef | None]],
    tags: Iterable[tuple[str, str]],
    *,
    namespaced: bool,
) -> ET.Element:
    """``<reconciler:KIND>`` with a text child per value, a pool/volume child per ref and the tags
    (namespaced inside a domain definition, bare for ``virDomainSetMetadata``); Nones are left out."""
    def q(name: str) -> str:
        return f"{{{NS}}}{name}" if namespaced else name

    root = ET.Element(q(kind))
    for name, value in values:
        if value is not None:
            ET.SubElement(root, q(name)).text = value
    for name, ref in refs:
        if ref is not None:
            ET.SubElement(root, q(name), {"pool": ref.pool, "volume": ref.volume})
    for key, value in tags:
        ET.SubElement(root, q("tag"), {"key": key}).text = value
    return root


@dataclass(frozen=True)
class BackupMarks:
    """What the ``<reconciler:backup>`` element of an image backup's record says."""

    owner: str
    key: str
    name: str  # the backup's name (the SnapshotRequest's), unique per owner
    image: VolumeRef  # the standalone copy of the server's disk
    taken_at: str
    size_gb: int  # the source server's disk size
    source: str  # the source domain's UUID
    method: str = "image"
    policy: str | None = None
    copied_at: str | None = None  # set once the copy is complete; until then the backup is "creating"
    tags: tuple[tuple[str, str], ...] = field(default=())

    def with_(self, **changes: Any) -> BackupMarks:
        return replace(self, **changes)

    def element(self, *, namespaced: bool = True) -> ET.Element:
        values = [(_local(TAG_OWNER), self.owner), (_local(TAG_KEY), self.key), ("name", self.name),
                  ("method", self.method), ("policy", self.policy), ("taken-at", self.taken_at),
                  ("size-gb", str(self.size_gb)), ("source", self.source), ("copied-at", self.copied_at)]
        return _marks_element("backup", values, [("image", self.image)], self.tags, namespaced=namespaced)

    def metadata_xml(self) -> str:
        return ET.tostring(self.element(namespaced=False), encoding="unicode")

    @classmethod
    def from_domain(cls, root: ET.Element) -> BackupMarks | None:
        """The backup marks in a domain's XML, or None when the domain is not a backup of ours."""
        element = root.find(f"metadata/{{{NS}}}backup")
        if element is None:
            return None

        def text(name: str) -> str | None:
            return _text(element, name)

        owner, image = text(_local(TAG_OWNER)), _ref(element, "image")
        if not owner or image is None:
            return None
        tags = _tags(element)
        return cls(owner=owner, key=text(_local(TAG_KEY)) or "", name=text("name") or "", image=image,
                   taken_at=text("taken-at") or "", size_gb=_int(text("size-gb")),
                   source=text("source") or "",
                   method=text("method") or "image", policy=text("policy"), copied_at=text("copied-at"),
                   tags=tags)


def _int(text: str | None) -> int:
    try:
        return int(text or 0)
    except ValueError:
        return 0


# --- domains -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Interface:
    """The NIC: a libvirt network, a host bridge, or QEMU user-mode networking."""

    type: str  # "network", "bridge" or "user"
    source: str = ""


def domain_xml(*, name: str, uuid: str, domain_type: str, size: Size, marks: Marks, disk_format: str,
               interface: Interface) -> str:
    """A complete domain definition: vCPUs, memory, the disk, the seed CD-ROM, one NIC, a console."""
    dom = ET.Element("domain", {"type": domain_type})
    ET.SubElement(dom, "name").text = name
    ET.SubElement(dom, "uuid").text = uuid
    ET.SubElement(dom, "title").text = f"{marks.key} (gitops-reconciler, owner {marks.owner})"
    ET.SubElement(dom, "metadata").append(marks.element())
    ET.SubElement(dom, "memory", {"unit": "MiB"}).text = str(size.memory_mb)
    ET.SubElement(dom, "currentMemory", {"unit": "MiB"}).text = str(size.memory_mb)
    ET.SubElement(dom, "vcpu", {"placement": "static"}).text = str(size.cpus)
    os_el = ET.SubElement(dom, "os")
    ET.SubElement(os_el, "type").text = "hvm"
    ET.SubElement(os_el, "boot", {"dev": "hd"})
    features = ET.SubElement(dom, "features")
    ET.SubElement(features, "acpi")
    ET.SubElement(features, "apic")
    for event, action in (("on_poweroff", "destroy"), ("on_reboot", "restart"), ("on_crash", "destroy")):
        ET.SubElement(dom, event).text = action
    devices = ET.SubElement(dom, "devices")
    if marks.disk is not None:
        _volume_disk(devices, marks.disk, "disk", disk_format, "vda", "virtio")
    if marks.seed is not None:
        _volume_disk(devices, marks.seed, "cdrom", "raw", "sda", "sata")
    nic = ET.SubElement(devices, "interface", {"type": interface.type})
    if interface.type == "network":
        ET.SubElement(nic, "source", {"network": interface.source})
    elif interface.type == "bridge":
        ET.SubElement(nic, "source", {"bridge": interface.source})
    ET.SubElement(nic, "model", {"type": "virtio"})
    ET.SubElement(devices, "serial", {"type": "pty"})
    ET.SubElement(devices, "console", {"type": "pty"})
    return ET.tostring(dom, encoding="unicode")


def _volume_disk(devices: ET.Element, ref: VolumeRef, device: str, fmt: str, target: str, bus: str,
                 *, readonly: bool = False) -> None:
    disk = ET.SubElement(devices, "disk", {"type": "volume", "device": device})
    ET.SubElement(disk, "driver", {"name": "qemu", "type": fmt})
    ET.SubElement(disk, "source", {"pool": ref.pool, "volume": ref.volume})
    ET.SubElement(disk, "target", {"dev": target, "bus": bus})
    if device == "cdrom" or readonly:
        ET.SubElement(disk, "readonly")


def backup_domain_xml(*, name: str, uuid: str, domain_type: str, size: Size, marks: BackupMarks,
                      disk_format: str) -> str:
    """The record of an image backup: a domain never started, its one disk the image, read-only."""
    dom = ET.Element("domain", {"type": domain_type})
    ET.SubElement(dom, "name").text = name
    ET.SubElement(dom, "uuid").text = uuid
    ET.SubElement(dom, "title").text = (f"backup {marks.name} of {marks.key} "
                                        f"(gitops-reconciler, owner {marks.owner})")
    ET.SubElement(dom, "description").text = ("An image backup kept by gitops-reconciler: never start this "
                                              "domain; restore it with `reconciler restore`.")
    ET.SubElement(dom, "metadata").append(marks.element())
    ET.SubElement(dom, "memory", {"unit": "MiB"}).text = str(size.memory_mb)
    ET.SubElement(dom, "vcpu", {"placement": "static"}).text = str(size.cpus)
    os_el = ET.SubElement(dom, "os")
    ET.SubElement(os_el, "type").text = "hvm"
    devices = ET.SubElement(dom, "devices")
    _volume_disk(devices, marks.image, "disk", disk_format, "vda", "virtio", readonly=True)
    return ET.tostring(dom, encoding="unicode")


def disk_target(root: ET.Element, ref: VolumeRef) -> str | None:
    """The target device (``vda``) of the disk backed by volume ``ref`` in a domain's XML."""
    for disk in root.findall("devices/disk"):
        source = disk.find("source")
        if source is not None and (source.get("pool"), source.get("volume")) == (ref.pool, ref.volume):
            target = disk.find("target")
            return target.get("dev") if target is not None else None
    return None


def mirror_state(root: ET.Element, target: str) -> str | None:
    """The ``ready`` state of the block copy job on disk ``target`` ("" while copying; None: no job)."""
    for disk in root.findall("devices/disk"):
        found = disk.find("target")
        if found is not None and found.get("dev") == target:
            mirror = disk.find("mirror")
            return None if mirror is None else mirror.get("ready", "")
    return None


def copy_target_xml(path: str, fmt: str, kind: str) -> str:
    """The ``<disk>`` a block copy writes into: an existing file (or block device) of format ``fmt``."""
    block = kind == "block"
    disk = ET.Element("disk", {"type": "block" if block else "file"})
    ET.SubElement(disk, "driver", {"type": fmt})
    ET.SubElement(disk, "source", {"dev" if block else "file": path})
    return ET.tostring(disk, encoding="unicode")


def without_seed(domain: str, seed: VolumeRef, marks: Marks) -> str:
    """A definition (inactive XML) with the seed CD-ROM and its mark removed."""
    root = ET.fromstring(domain)
    devices = root.find("devices")
    if devices is not None:
        for disk in devices.findall("disk"):
            source = disk.find("source")
            if source is not None and (source.get("pool"), source.get("volume")) == (seed.pool, seed.volume):
                devices.remove(disk)
    _replace_marks(root, marks.with_(seed=None))
    return ET.tostring(root, encoding="unicode")


def _replace_marks(root: ET.Element, marks: Marks) -> None:
    metadata = root.find("metadata")
    if metadata is None:
        metadata = ET.SubElement(root, "metadata")
    for old in metadata.findall(f"{{{NS}}}server"):
        metadata.remove(old)
    metadata.append(marks.element())


def resized(domain: str, size: Size) -> str:
    """A definition (inactive XML) with new vCPUs and memory, everything else kept."""
    root = ET.fromstring(domain)
    vcpu = root.find("vcpu")
    if vcpu is None:
        vcpu = ET.SubElement(root, "vcpu")
    vcpu.attrib.pop("current", None)
    vcpu.text = str(size.cpus)
    for tag in ("memory", "currentMemory"):
        element = root.find(tag)
        if element is None:
            element = ET.SubElement(root, tag)
        element.attrib.clear()
        element.set("unit", "MiB")
        element.text = str(size.memory_mb)
    maximum = root.find("maxMemory")
    if maximum is not None:
        root.remove(maximum)
    return ET.tostring(root, encoding="unicode")


def domain_size(root: ET.Element, disk_gb: int) -> Size:
    """vCPUs (the current count) and memory (MiB) from a domain's XML."""
    vcpu = root.find("vcpu")
    cpus = _int(vcpu.get("current") or vcpu.text) if vcpu is not None else 0
    memory = root.find("memory")
    memory_bytes = scaled(memory.text, memory.get("unit", "KiB")) if memory is not None else 0
    return Size(cpus=cpus, memory_mb=memory_bytes // MIB, disk_gb=disk_gb)


def scaled(value: str | None, unit: str) -> int:
    """A libvirt ``<memory unit=…>``/``<capacity unit=…>`` value in bytes."""
    return _int(value) * _UNITS.get(unit.lower(), 1024)


# --- volumes -------------------------------------------------------------------------------
@dataclass(frozen=True)
class VolumeInfo:
    path: str
    format: str
    capacity: int  # bytes
    kind: str = "file"  # libvirt's volume type: file, block, network…


def volume_info(xml_text: str) -> VolumeInfo:
    root = ET.fromstring(xml_text)
    capacity = root.find("capacity")
    fmt = root.find("target/format")
    return VolumeInfo(
        path=root.findtext("target/path") or "",
        format=(fmt.get("type") if fmt is not None else None) or "raw",
        capacity=scaled(capacity.text, capacity.get("unit", "bytes")) if capacity is not None else 0,
        kind=root.get("type") or "file",
    )


def volume_xml(name: str, capacity: int, fmt: str, *, backing: VolumeInfo | None = None) -> str:
    """A new volume; ``backing`` makes it a copy-on-write overlay of that volume."""
    vol = ET.Element("volume")
    ET.SubElement(vol, "name").text = name
    ET.SubElement(vol, "capacity", {"unit": "bytes"}).text = str(capacity)
    ET.SubElement(vol, "allocation", {"unit": "bytes"}).text = "0"  # sparse: pools are not filled up front
    ET.SubElement(ET.SubElement(vol, "target"), "format", {"type": fmt})
    if backing is not None:
        store = ET.SubElement(vol, "backingStore")
        ET.SubElement(store, "path").text = backing.path
        ET.SubElement(store, "format", {"type": backing.format})
    return ET.tostring(vol, encoding="unicode")


# --- snapshots -----------------------------------------------------------------------------
def snapshot_xml(name: str, marks: dict[str, Any]) -> str:
    snap = ET.Element("domainsnapshot")
    ET.SubElement(snap, "name").text = name
    ET.SubElement(snap, "description").text = SNAPSHOT_HEADER + "\n" + json.dumps(marks, sort_keys=True)
    return ET.tostring(snap, encoding="unicode")


@dataclass(frozen=True)
class SnapshotInfo:
    name: str
    created: int  # seconds since the epoch, as libvirt reports it
    marks: dict[str, Any] | None  # None: not a snapshot we took


def snapshot_info(xml_text: str) -> SnapshotInfo:
    root = ET.fromstring(xml_text)
    description = root.findtext("description") or ""
    header, _, body = description.partition("\n")
    marks: dict[str, Any] | None = None
    if header == SNAPSHOT_HEADER:
        try:
            loaded = json.loads(body)
        except ValueError:
            loaded = None
        marks = loaded if isinstance(loaded, dict) else None
    return SnapshotInfo(name=root.findtext("name") or "", created=_int(root.findtext("creationTime")),
                        marks=marks)
