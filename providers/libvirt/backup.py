"""providers.libvirt.backup: image backups for the libvirt provider — standalone disk copies that
outlive their server, their records, and what a restore starts from.

An image backup (``SnapshotRequest.method`` = ``image``) is two things libvirt keeps:

* **the image**: a full copy of the server's disk volume in the Provider's storage pool,
  named ``<backup name>-<uuid8>.backup.<qcow2|img>``. It has no backing file (the copy
  flattens the overlay chain) and none of the disk's internal snapshots, so it depends on
  nothing: the server, its disk and the template's image may all go. A shut-off server's
  disk is copied with ``virStorageVolCreateXMLFrom``; a running one's through a block copy
  job (``Domains.live_copy``), because QEMU holds a write lock on a running disk and a
  plain copy would be torn anyway. Drivers without block copy (the test driver) copy the
  volume as it is.
* **the record**: a persistent domain definition named ``<backup name>.backup-<hash8(owner)>``
  that is never started, whose only disk is the image (read-only) and whose ``<metadata>``
  holds a ``<reconciler:backup>`` element: owner, key, name, policy, method, taken-at,
  size-gb (the source's disk), the source domain's UUID, the image volume and, once the
  copy is complete, ``copied-at``. A domain definition is the one place libvirt keeps
  arbitrary metadata that every driver supports and ``listAllDomains`` finds: listing
  backups costs no call beyond the domain scan ``observe`` already makes (volumes carry no
  metadata, and a side file in the pool would need a download per backup). The record is
  not a server (``Marks.from_domain`` reads ``<reconciler:server>`` only), so ``observe``
  never lists it. Its snapshot id is its UUID (internal snapshots' ids are ``uuid/name``).

Taking one is define record → copy → ``copied-at``, resumable: a retry with the same name
finds the record and returns it when the copy is complete, else copies again (whatever an
interrupted attempt left of the image is removed first); until then the backup lists as
``creating``. Deleting removes the image, then the record.
"""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

import libvirt

from providers.libvirt.domain import Domain, Domains, State
from providers.libvirt.storage import UNSUPPORTED, Storage
from providers.libvirt.wire import SHUTOFF, Wire
from providers.libvirt.xml import (
    GIB,
    BackupMarks,
    VolumeInfo,
    VolumeRef,
    backup_domain_xml,
    copy_target_xml,
    disk_target,
    domain_size,
)
from reconciler.core.clock import Clock, isoformat, parse_timestamp
from reconciler.core.errors import NotFoundError, PermanentError, ProviderError
from reconciler.core.model import BackupMethod, CreateRequest, Snapshot, SnapshotRequest
from reconciler.core.provider import user_tags

BACKUP = ".backup-"
CREATING = "creating"
_UNDEFINE = libvirt.VIR_DOMAIN_UNDEFINE_MANAGED_SAVE | libvirt.VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA


def record_name(backup_name: str, owner: str) -> str:
    """The record's domain name: the backup's name, unique per owner on a shared host."""
    return f"{backup_name}{BACKUP}{hashlib.sha256(owner.encode()).hexdigest()[:8]}"


def is_image_backup(snapshot_id: str) -> bool:
    return "/" not in snapshot_id



def boot_disk(dom: Domain) -> VolumeRef | None:
    """The disk an image backup copies: the one we made, or an adopted domain's first own disk.

    An adopted domain with several own disks is backed up by its first (in device order): a
    server has one disk in our model, and a restore makes a one-disk domain.
    """
    if dom.owned.disk is not None:
        return dom.owned.disk
    return dom.owned.adopted_disks[0] if dom.owned.adopted_disks else None

class ImageBackups:
    """Image backups over one connection (see the module docstring)."""

    def __init__(self, wire: Wire, domains: Domains, storage: Storage, *, provider: str,
                 clock: Clock) -> None:
        self.wire = wire
        self.domains = domains
        self.storage = storage
        self.provider = provider
        self.clock = clock
        self._live_copy: bool | None = None  # learnt on the first copy of a running disk

    # --- reading ----------------------------------------------------------------------------
    def snapshot_of(self, record: Domain) -> Snapshot:
        marks = record.backup
        assert marks is not None
        return Snapshot(
            provider=self.provider, snapshot_id=record.uuid, resource_id=marks.source, key=marks.key,
            owner=marks.owner, name=marks.name, created_at=parse_timestamp(marks.taken_at),
            size_gb=float(marks.size_gb), policy=marks.policy,
            status="available" if marks.copied_at else CREATING,
        )

    def _record(self, snapshot_id: str, owner: str) -> Domain | None:
        """The record by UUID (None when gone); ``PermanentError`` when it is not a backup of ``owner``."""
        try:
            record = self.domains.by_uuid(snapshot_id)
        except NotFoundError:
            return None
        if record.backup is None or record.backup.owner != owner:
            raise PermanentError(f"domain {record.name} ({snapshot_id}) is not a backup taken by {owner!r}; "
                                 "refusing to touch it", code="NOT_OWNED")
        return record

    # --- taking -----------------------------------------------------------------------------
    def take(self, dom: Domain, request: SnapshotRequest, state: State) -> Snapshot:
        owner = dom.owned.owner
        source = self._source_disk(dom)
        name = record_name(request.name, owner)
        try:
            record = self.domains.by_name(name)
        except NotFoundError:
            record = self._define(dom, request, name, source[1])
        else:
            if record.backup is None or (record.backup.owner, record.backup.name) != (owner, request.name):
                raise PermanentError(f"{dom.owned.key}: a domain named {name!r} already exists on "
                                     f"{self.wire.uri} and is not this backup", code="NAME_TAKEN")
            if record.backup.copied_at:
                return self.snapshot_of(record)  # a retried backup: the first one made it
        marks = record.backup
        assert marks is not None
        self.storage.delete_volume(marks.image)  # what an interrupted copy left, if anything
        self._copy(dom, source, marks.image, state)
        done = marks.with_(copied_at=isoformat(self.clock.now()), source=dom.uuid, size_gb=dom.owned.disk_gb)
        return self.snapshot_of(self.domains.write_backup_marks(record, done))

    def _source_disk(self, dom: Domain) -> tuple[Any, VolumeInfo]:
        ref = boot_disk(dom)
        found = self.storage.lookup(ref) if ref is not None else None
        if ref is None or found is None:
            raise PermanentError(f"{dom.owned.key}: the disk volume of domain {dom.name} is gone; "
                                 "there is nothing to back up", code="NO_DISK")
        return found

    def _define(self, dom: Domain, request: SnapshotRequest, name: str, disk: VolumeInfo) -> Domain:
        record_uuid = str(uuid.uuid4())
        ext = "qcow2" if disk.format == "qcow2" else "img"
        marks = BackupMarks(
            owner=dom.owned.owner, key=dom.owned.key, name=request.name, policy=request.policy,
            method=BackupMethod.IMAGE.value, taken_at=isoformat(self.clock.now()), size_gb=dom.owned.disk_gb,
            source=dom.uuid, tags=user_tags(dict(request.tags)),
            image=VolumeRef(self.storage.pool_name, f"{request.name}-{record_uuid[:8]}.backup.{ext}"),
        )
        xml = backup_domain_xml(name=name, uuid=record_uuid, domain_type=dom.root.get("type") or "kvm",
                                size=domain_size(dom.root, dom.owned.disk_gb), marks=marks,
                                disk_format=disk.format)
        return self.domains.read(self.domains.define(xml))

    def _copy(self, dom: Domain, source: tuple[Any, VolumeInfo], image: VolumeRef, state: State) -> None:
        """The image as a full copy of the server's disk: live through a block copy while it runs."""
        pool = self.storage.pool(image.pool)
        disk = source[1]
        if state[0] != SHUTOFF and self._live_copy is not False:
            _, made = self.storage.create_empty(pool, image.volume, disk.capacity, disk.format)
            ref = boot_disk(dom)
            target = (disk_target(dom.root, ref) if ref else None) or "vda"
            try:
                self.domains.live_copy(dom, target, copy_target_xml(made.path, made.format, made.kind))
            except PermanentError as exc:
                self._discard(image)
                if exc.code not in UNSUPPORTED:
                    raise
                self._live_copy = False  # this driver has no block copy: copy the volume as it is
            except BaseException:
                self._discard(image)
                raise
            else:
                self._live_copy = True
                return
        self.storage.copy(pool, image.volume, source, disk.capacity)

    def _discard(self, image: VolumeRef) -> None:
        try:
            self.storage.delete_volume(image)
        except ProviderError:
            pass  # best effort: the retry removes it before copying again

    # --- deleting ---------------------------------------------------------------------------
    def delete(self, snapshot: Snapshot) -> None:
        """Remove the image, then the record; a backup already gone is fine."""
        record = self._record(snapshot.snapshot_id, snapshot.owner)
        if record is None:
            return
        marks = record.backup
        assert marks is not None
        self.domains.power_off(record, self.domains.state(record), graceful=False)  # if someone started it
        self.storage.delete_volume(marks.image)
        try:
            self.wire.call("virDomainUndefineFlags", lambda: record.handle.undefineFlags(_UNDEFINE))
        except NotFoundError:
            pass

    # --- restoring --------------------------------------------------------------------------
    def restore_source(self, request: CreateRequest, snapshot: Snapshot) -> tuple[VolumeRef, VolumeInfo]:
        """The image a restore copies, after checking the backup is ours, complete and fits the disk."""
        if not is_image_backup(snapshot.snapshot_id):
            raise PermanentError(
                f"{request.key}: backup {snapshot.snapshot_id} is an internal qcow2 snapshot, which lives "
                "inside its server's disk; libvirt has no call that copies one out into a new domain's disk. "
                "Restores on libvirt need image backups: set `method: image` on the BackupPolicy",
                code="RESTORE_NEEDS_IMAGE")
        record = self._record(snapshot.snapshot_id, request.owner)
        if record is None:
            raise PermanentError(f"{request.key}: backup {snapshot.snapshot_id} no longer exists on "
                                 f"{self.wire.uri}", code="BACKUP_GONE")
        marks = record.backup
        assert marks is not None
        if not marks.copied_at:
            raise PermanentError(f"{request.key}: backup {marks.name} was never completed; restore from "
                                 "another", code="BACKUP_INCOMPLETE")
        found = self.storage.lookup(marks.image)
        if found is None:
            raise PermanentError(f"{request.key}: the image {marks.image.pool}/{marks.image.volume} of "
                                 f"backup {marks.name} is gone", code="BACKUP_IMAGE_GONE")
        info = found[1]
        if request.size.disk_gb < marks.size_gb or request.size.disk_gb * GIB < info.capacity:
            raise PermanentError(f"{request.key}: a {request.size.disk_gb} GB disk cannot hold backup "
                                 f"{marks.name} of a {marks.size_gb} GB disk", code="DISK_TOO_SMALL")
        return marks.image, info
