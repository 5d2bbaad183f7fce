"""providers.libvirt.storage: the libvirt provider's volumes — image lookup, disks, seeds, removal.

The provider's decisions about *when* a volume exists live in ``providers.libvirt.provider``; this
module knows *how*: find a pool and check it is running, find the template's base image
(``volume`` in the Provider's pool, or ``pool/volume``), make a server's disk as a qcow2
copy-on-write overlay of it (or a full clone), copy volumes (image backups, restored disks:
``virStorageVolCreateXMLFrom``, grown afterwards when the copy must be larger — libvirt's
copy keeps the source's capacity on real pools), upload a cloud-init seed through libvirt's
stream API, and remove volumes. Missing pools and images are ``PermanentError`` s that say
what to fix. Every call goes through the provider's ``Wire`` (counted, errors mapped).
"""

from __future__ import annotations

from typing import Any

from providers.libvirt.wire import Wire
from providers.libvirt.xml import GIB, VolumeInfo, VolumeRef, volume_info, volume_xml
from reconciler.core.errors import NotFoundError, PermanentError, ProviderError

UNSUPPORTED = frozenset({"VIR_ERR_NO_SUPPORT", "VIR_ERR_OPERATION_UNSUPPORTED"})
_CHUNK = 256 * 1024


class Storage:
    """Volumes in the pools of one libvirt connection."""

    def __init__(self, wire: Wire, *, pool: str, disk_mode: str) -> None:
        self.wire = wire
        self.pool_name = pool
        self.disk_mode = disk_mode

    def pool(self, name: str) -> Any:
        """An active pool by name (``PermanentError`` naming the fix when missing or stopped)."""
        try:
            pool = self.wire.call("virStoragePoolLookupByName",
                                  lambda: self.wire.conn().storagePoolLookupByName(name))
        except NotFoundError:
            raise PermanentError(f"storage pool {name!r} not found on {self.wire.uri}; set the Provider's "
                                 "spec.storage_pool to an existing pool (virsh pool-list --all)",
                                 code="POOL_NOT_FOUND") from None
        if not self.wire.call("virStoragePoolIsActive", lambda: pool.isActive()):
            raise PermanentError(f"storage pool {name!r} on {self.wire.uri} is not active; start it with "
                                 f"virsh pool-start {name}", code="POOL_INACTIVE")
        return pool

    def image(self, image: str) -> tuple[Any, VolumeInfo]:
        """The base image volume (``volume`` in our pool, or ``pool/volume``) and what it is."""
        pool_name, _, volume = image.rpartition("/")
        pool_name = pool_name or self.pool_name
        pool = self.pool(pool_name)
        try:
            handle = self.wire.call("virStorageVolLookupByName", lambda: pool.storageVolLookupByName(volume))
        except NotFoundError:
            raise PermanentError(f"image volume {volume!r} not found in storage pool {pool_name!r} on "
                                 f"{self.wire.uri}; set the template's image.libvirt to a volume of that "
                                 "pool (or 'pool/volume')", code="IMAGE_NOT_FOUND") from None
        return handle, volume_info(self.wire.call("virStorageVolGetXMLDesc", lambda: handle.XMLDesc(0)))

    def disk_format(self, base: VolumeInfo) -> str:
        return "qcow2" if self.disk_mode == "overlay" else base.format

    def volume(self, pool: Any, name: str) -> Any | None:
        try:
            return self.wire.call("virStorageVolLookupByName", lambda: pool.storageVolLookupByName(name))
        except NotFoundError:
            return None

    def info(self, handle: Any) -> VolumeInfo:
        return volume_info(self.wire.call("virStorageVolGetXMLDesc", lambda: handle.XMLDesc(0)))

    def lookup(self, ref: VolumeRef) -> tuple[Any, VolumeInfo] | None:
        """A volume by pool and name and what it is; None when it (or its pool) is gone."""
        try:
            pool = self.wire.call("virStoragePoolLookupByName",
                                  lambda: self.wire.conn().storagePoolLookupByName(ref.pool))
        except NotFoundError:
            return None
        handle = self.volume(pool, ref.volume)
        if handle is None:
            return None
        try:
            return handle, self.info(handle)
        except NotFoundError:
            return None

    def ensure_disk(self, ref: VolumeRef, image: str, disk_gb: int, *,
                    source: VolumeRef | None = None) -> None:
        """The server's disk: kept when an earlier attempt made it, else an overlay or clone of the
        image — or, for a restored server, a full copy of the backup image ``source``."""
        pool = self.pool(ref.pool)
        if self.volume(pool, ref.volume) is not None:
            return
        if source is not None:
            found = self.lookup(source)
            if found is None:
                raise PermanentError(f"backup image {source.pool}/{source.volume} is gone from "
                                     f"{self.wire.uri}; restore from another backup",
                                     code="BACKUP_IMAGE_GONE")
            self.copy(pool, ref.volume, found, max(disk_gb * GIB, found[1].capacity))
            return
        base_handle, base = self.image(image)
        capacity = max(disk_gb * GIB, base.capacity)
        if self.disk_mode == "overlay":
            xml = volume_xml(ref.volume, capacity, "qcow2", backing=base)
            self.wire.call("virStorageVolCreateXML", lambda: pool.createXML(xml, 0))
        else:
            self.copy(pool, ref.volume, (base_handle, base), capacity)

    def copy(self, pool: Any, name: str, source: tuple[Any, VolumeInfo], capacity: int) -> Any:
        """A full, standalone copy of ``source`` (its backing chain flattened) as volume ``name``,
        of at least ``capacity`` bytes."""
        handle, info = source
        xml = volume_xml(name, capacity, info.format)
        made = self.wire.call("virStorageVolCreateXMLFrom", lambda: pool.createXMLFrom(xml, handle, 0))
        if self.info(made).capacity < capacity:  # real pools keep the source's size: grow it
            self.wire.call("virStorageVolResize", lambda: made.resize(capacity, 0))
        return made

    def create_empty(self, pool: Any, name: str, capacity: int, fmt: str) -> tuple[Any, VolumeInfo]:
        """A new, empty (sparse) volume, for a block copy to write into."""
        made = self.wire.call("virStorageVolCreateXML",
                              lambda: pool.createXML(volume_xml(name, capacity, fmt), 0))
        return made, self.info(made)

    def delete_volume(self, ref: VolumeRef) -> None:
        """Remove a volume; one already gone (or whose pool is gone) is fine."""
        try:
            pool = self.wire.call("virStoragePoolLookupByName",
                                  lambda: self.wire.conn().storagePoolLookupByName(ref.pool))
        except NotFoundError:
            return
        volume = self.volume(pool, ref.volume)
        if volume is not None:
            try:
                self.wire.call("virStorageVolDelete", lambda: volume.delete(0))
            except NotFoundError:
                pass

    def upload_seed(self, ref: VolumeRef, data: bytes) -> bool:
        """Write ``data`` as the raw volume ``ref`` (made afresh); False when the pool takes no uploads."""
        pool = self.pool(ref.pool)
        old = self.volume(pool, ref.volume)
        if old is not None:  # from an earlier attempt: start again, its size may differ
            self.wire.call("virStorageVolDelete", lambda: old.delete(0))
        xml = volume_xml(ref.volume, len(data), "raw")
        volume = self.wire.call("virStorageVolCreateXML", lambda: pool.createXML(xml, 0))
        stream = self.wire.conn().newStream(0)  # local: no call to the daemon yet
        try:
            self.wire.call("virStorageVolUpload", lambda: volume.upload(stream, 0, len(data), 0))
            self.wire.call("virStreamSend", lambda: _send_all(stream, data))
            self.wire.call("virStreamFinish", lambda: stream.finish())
        except ProviderError as exc:
            _abort(stream)
            if exc.code not in UNSUPPORTED:
                raise
            self.wire.call("virStorageVolDelete", lambda: volume.delete(0))
            return False
        return True


def _send_all(stream: Any, data: bytes) -> None:
    view = memoryview(data)
    while view:
        sent = stream.send(bytes(view[:_CHUNK]))
        view = view[sent:]


def _abort(stream: Any) -> None:
    try:
        stream.abort()
    except Exception:  # noqa: BLE001 - best effort: the stream never started, or is gone already
        pass
