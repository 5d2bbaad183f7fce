"""providers.libvirt.provider: KVM/QEMU hosts through libvirt, registered as ``type: libvirt``.

Design decisions, each forced by libvirt:

* **Ownership lives in the domain XML's ``<metadata>``** under our own namespace
  (``providers.libvirt.xml``): owner, key, spec hash, generation, token, cluster, member,
  image, disk size, the volumes we made, ``created-at`` and user tags. Domains without it
  (the test driver's ``test``, anything made by hand) are read once and never touched.
* **Create is define → volumes → start → ``created-at``**, resumable at every step. The
  definition comes first and names the volumes it will use (``<name>-<uuid[:8]>.qcow2``
  and ``…-seed.iso``, after the domain's own UUID, which we choose), so a crash never
  leaves a volume nobody owns. Until ``created-at`` is written, ``lookup`` says "not
  created" (the engine's retry finishes the job, finding the domain by name and token) and
  ``observe`` reports it as ``error`` (so it is replaced or deleted if the retry never
  comes). Definitions are validated against libvirt's schema (``VIR_DOMAIN_DEFINE_VALIDATE``).
* **The disk** is a copy-on-write qcow2 overlay of the template's image volume
  (``image.libvirt`` = ``volume`` in the Provider's ``storage_pool``, or ``pool/volume``),
  or a full clone with ``disk_mode: clone`` for pools that cannot hold backing chains.
* **Boot scripts** reach the guest through a cloud-init NoCloud seed (``cidata`` ISO,
  ``providers.libvirt.seed``) uploaded into the pool and attached read-only — where the
  pool supports uploads. Where it does not (the test driver), the server is made without a
  seed and a warning says so. Anyone allowed to read the pool can read the seed.
* **Observe** is one ``listAllDomains`` plus, per domain, its XML (our metadata, vCPUs,
  memory) and, per owned domain, its state: libvirt has no call that returns metadata
  for many domains at once.
* **Resizing** rewrites the persistent definition and restarts the domain (clean shutdown,
  ``destroy`` after ``shutdown_timeout_seconds``), only when the update allows a restart;
  if the new size does not start, the old definition is restored and started again.
* **Deleting** destroys the domain, removes its volumes, then undefines it with its snapshot
  metadata. An adopted domain's volumes are the disks recorded as its own at adoption that are
  still its own then (``providers.libvirt.disks``): attached to it, used by no other domain.
  A domain that still holds snapshots we took is *retired* instead (shut off,
  renamed ``<name>.retired-<uuid8>``, marked ``retired-at``, invisible to ``observe``):
  internal snapshots live inside its disk, and backups must outlive their server. Deleting
  its last snapshot removes it for good.
* **Backups** come in two kinds. ``method: snapshot`` is an internal qcow2 snapshot
  (``snapshotCreateXML``) inside the server's disk: quick, but it cannot be restored into
  a new domain (libvirt has no call that copies a snapshot out of a disk), so
  ``create_from_snapshot`` refuses it. ``method: image`` is a standalone copy of the disk
  in the pool plus a never-started record domain carrying the backup's marks
  (``providers.libvirt.backup``): it outlives the server and restores.
* **Restoring** (``create_from_snapshot``) is ``create`` with one difference: the disk is a
  full copy of the backup's image (marked ``restored-from``), not an overlay of the
  template's image — a copy, so pruning the backup later never touches the restored
  server. Idempotent and resumable by token exactly like create, seed ISO included.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, ClassVar

import libvirt

from providers.libvirt import adoption
from providers.libvirt.backup import ImageBackups, is_image_backup
from providers.libvirt.disks import still_own
from providers.libvirt.domain import Domain, Domains, State
from providers.libvirt.seed import build_seed, seed_files
from providers.libvirt.spec import CAPABILITIES, SPEC_SCHEMA
from providers.libvirt.storage import Storage
from providers.libvirt.wire import BLOCKED, PAUSED, RUNNING, SHUTOFF, Wire, status_of
from providers.libvirt.xml import (
    Interface,
    Marks,
    SnapshotInfo,
    VolumeInfo,
    VolumeRef,
    domain_size,
    domain_xml,
    resized,
    snapshot_info,
    snapshot_xml,
    without_seed,
)
from reconciler.core.clock import isoformat, parse_timestamp
from reconciler.core.errors import NotFoundError, PermanentError, UserError
from reconciler.core.model import (
    BackupMethod,
    CreateRequest,
    MetricSample,
    ObservedServer,
    ProviderConfig,
    ServerStatus,
    Size,
    Snapshot,
    SnapshotRequest,
    UpdateRequest,
)
from reconciler.core.provider import (
    AdoptRequest,
    Capabilities,
    Provider,
    ProviderContext,
    guard_marks,
    read_guard_marks,
    register,
    user_tags,
)

log = logging.getLogger(__name__)


def _guards(request: CreateRequest | UpdateRequest) -> tuple[tuple[str, str], ...]:
    """The guard marks a request asks for, as ``Marks.guards``."""
    return tuple(sorted(guard_marks(request.protect, request.backup_policy).items()))

RETIRED = ".retired-"
_STATS = (libvirt.VIR_DOMAIN_STATS_STATE | libvirt.VIR_DOMAIN_STATS_CPU_TOTAL
          | libvirt.VIR_DOMAIN_STATS_BALLOON | libvirt.VIR_DOMAIN_STATS_INTERFACE)
_UNDEFINE = libvirt.VIR_DOMAIN_UNDEFINE_MANAGED_SAVE | libvirt.VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA


@register("libvirt")
class LibvirtProvider(Provider):
    """One libvirt host (or anything a libvirt URI reaches), one connection shared by threads."""

    capabilities: ClassVar[Capabilities] = CAPABILITIES
    spec_schema: ClassVar[dict[str, Any]] = SPEC_SCHEMA

    def __init__(self, config: ProviderConfig, context: ProviderContext) -> None:
        super().__init__(config, context)
        spec = config.spec
        uri = str(spec.get("uri", ""))
        if "://" not in uri:
            raise UserError(f"provider {config.name}: spec.uri must be a libvirt URI such as qemu:///system")
        self.wire = Wire(uri, self.count_call)
        self.pool_name = str(spec.get("storage_pool", "default"))
        self.storage = Storage(self.wire, pool=self.pool_name,
                               disk_mode=str(spec.get("disk_mode", "overlay")))
        self.domains = Domains(self.wire, shutdown_timeout=float(spec.get("shutdown_timeout_seconds", 60)))
        self.domain_type = str(spec.get("domain_type", "kvm"))
        self.interface = Interface(str(spec.get("interface_type", "network")),
                                   str(spec.get("network", "default")))
        self.cloud_init = bool(spec.get("cloud_init", True))
        self._seed_supported: bool | None = None  # learnt on the first seed upload
        self.backups = ImageBackups(self.wire, self.domains, self.storage, provider=config.name,
                                    clock=context.clock)

    @property
    def uri(self) -> str:
        return self.wire.uri

    def close(self) -> None:
        self.wire.close()

    # --- reading ----------------------------------------------------------------------------
    def _scan(self, owner: str) -> list[Domain]:
        """Every domain carrying ``owner``'s marks (retired ones too): one listing plus one read each."""
        return self._scan_all(owner)[0]

    def _scan_all(self, owner: str) -> tuple[list[Domain], list[Domain]]:
        """``owner``'s server domains and image backup records, from the same listing and reads."""
        servers, records = [], []
        for handle in self.domains.list_all():
            try:
                dom = self.domains.read(handle)
            except NotFoundError:
                continue  # undefined between the listing and the read
            if dom.marks is not None and dom.marks.owner == owner:
                servers.append(dom)
            elif dom.backup is not None and dom.backup.owner == owner:
                records.append(dom)
        return servers, records

    def _observed(self, dom: Domain, state: State | None = None) -> ObservedServer:
        marks = dom.owned
        state = self.domains.state(dom) if state is None else state
        return ObservedServer(
            provider=self.name, resource_id=dom.uuid, key=marks.key, name=dom.name, owner=marks.owner,
            status=status_of(*state) if marks.created_at else ServerStatus.ERROR,
            size=domain_size(dom.root, marks.disk_gb), image=marks.image, spec_hash=marks.spec_hash,
            generation=marks.generation, token=marks.token, flavor=marks.flavor,
            created_at=parse_timestamp(marks.created_at) if marks.created_at else None,
            tags=user_tags(dict(marks.tags)), **read_guard_marks(dict(marks.guards)),
        )

    def _fresh(self, dom: Domain) -> ObservedServer:
        return self._observed(self.domains.read(dom.handle))

    def observe(self, owner: str) -> list[ObservedServer]:
        servers = []
        for dom in self._scan(owner):
            if not dom.owned.retired_at:
                try:
                    servers.append(self._observed(dom))
                except NotFoundError:
                    continue
        return sorted(servers, key=lambda s: (s.key, s.generation, s.resource_id))

    def lookup(self, owner: str, token: str) -> ObservedServer | None:
        for dom in self._scan(owner):
            marks = dom.owned
            if marks.token == token and marks.created_at and not marks.retired_at:
                return self._observed(dom)
        return None

    def _owned(self, resource_id: str, owner: str, key: str = "") -> Domain:
        """An owned domain by UUID; ``NotFoundError`` when gone, ``PermanentError`` when not ours."""
        try:
            dom = self.domains.by_uuid(resource_id)
        except NotFoundError as exc:
            raise NotFoundError(f"{key or resource_id}: domain {resource_id} no longer exists on {self.uri}",
                                code=exc.code) from None
        if dom.marks is None or dom.marks.owner != owner:
            raise PermanentError(f"domain {dom.name} ({resource_id}) is not owned by {owner!r}; "
                                 "refusing to touch it", code="NOT_OWNED")
        return dom

    # --- taking over (providers.libvirt.adoption) -------------------------------------------
    def _described(self, dom: Domain) -> ObservedServer | None:
        if dom.marks is not None:
            return None if dom.owned.retired_at else self._observed(dom)
        if dom.backup is not None:
            return None  # an image backup's record, never a server
        return adoption.unowned(self.name, self.domains, self.wire, dom)

    def describe(self, resource_ids: Sequence[str]) -> list[ObservedServer]:
        found = (self._described(dom) for dom in adoption.by_uuids(self.domains, resource_ids))
        return [s for s in found if s is not None]

    def list_unowned(self) -> list[ObservedServer]:
        found = []
        for handle in self.domains.list_all():
            try:
                dom = self.domains.read(handle)
                if dom.marks is None and dom.backup is None:
                    found.append(adoption.unowned(self.name, self.domains, self.wire, dom))
            except NotFoundError:
                continue  # undefined between the listing and the read
        return sorted(found, key=lambda s: (s.name, s.resource_id))

    def adopt(self, server: ObservedServer, request: AdoptRequest) -> ObservedServer:
        try:
            dom = self.domains.by_uuid(server.resource_id)
        except NotFoundError as exc:
            raise NotFoundError(f"domain {server.resource_id} no longer exists on {self.uri}",
                                code=exc.code) from None
        return self._fresh(adoption.adopt(self.domains, dom, server, request, self.context.clock.now()))

    def release(self, server: ObservedServer) -> None:
        try:
            dom = self.domains.by_uuid(server.resource_id)
        except NotFoundError:
            return
        adoption.release(self.domains, dom, server.owner)

    # --- power ------------------------------------------------------------------------------
    def start(self, server: ObservedServer) -> ObservedServer:
        dom = self._owned(server.resource_id, server.owner, server.key)
        self.domains.power_on(dom, self.domains.state(dom))
        return self._fresh(dom)

    def stop(self, server: ObservedServer) -> ObservedServer:
        dom = self._owned(server.resource_id, server.owner, server.key)
        self.domains.power_off(dom, self.domains.state(dom), graceful=True)
        return self._fresh(dom)

    # --- create -----------------------------------------------------------------------------
    def create(self, request: CreateRequest) -> ObservedServer:
        return self._create(request, None)

    def create_from_snapshot(self, request: CreateRequest, snapshot: Snapshot) -> ObservedServer:
        """``create`` with the disk a full copy of an image backup; internal snapshots are refused."""
        return self._create(request, self.backups.restore_source(request, snapshot))

    def _create(self, request: CreateRequest, restore: tuple[VolumeRef, VolumeInfo] | None) -> ObservedServer:
        try:
            dom = self.domains.by_name(request.name)
        except NotFoundError:
            dom = self._define(request, restore)
        else:
            if dom.marks is None or (dom.marks.owner, dom.marks.token) != (request.owner, request.token):
                raise PermanentError(f"{request.key}: a domain named {request.name!r} already exists on "
                                     f"{self.uri} and is not this server; rename or remove it",
                                     code="NAME_TAKEN")
            if dom.owned.created_at:
                return self._observed(dom)  # the create already finished
        marks = dom.owned
        if marks.disk is None:
            raise PermanentError(f"{request.key}: domain {request.name} carries our marks but names no disk "
                                 "volume; delete it and apply again", code="NO_DISK_MARK")
        self.storage.ensure_disk(marks.disk, marks.image, marks.disk_gb, source=marks.restored_from)
        if marks.seed is not None:
            dom = self._ensure_seed(dom, request)
        self.domains.power_on(dom, self.domains.state(dom))
        created = dom.owned.with_(created_at=isoformat(self.context.clock.now()))
        return self._fresh(self.domains.write_marks(dom, created, live=True))

    def _define(self, request: CreateRequest, restore: tuple[VolumeRef, VolumeInfo] | None) -> Domain:
        if restore is None:
            _, base = self.storage.image(request.image)  # fail before anything exists on a missing image
            disk_format = self.storage.disk_format(base)
        else:
            disk_format = restore[1].format  # a copy of the backup's image keeps its format
        domain_uuid = str(uuid.uuid4())
        stem = f"{request.name}-{domain_uuid[:8]}"  # unique per domain, even when a token comes back
        seed = None
        if self.cloud_init and self._seed_supported is not False:
            seed = VolumeRef(self.pool_name, f"{stem}-seed.iso")
        marks = Marks(
            owner=request.owner, key=request.key, spec_hash=request.spec_hash, generation=request.generation,
            token=request.token, cluster=request.cluster, member=request.member, image=request.image,
            disk_gb=request.size.disk_gb, flavor=request.flavor,
            disk=VolumeRef(self.pool_name, f"{stem}.{'qcow2' if disk_format == 'qcow2' else 'img'}"),
            seed=seed, tags=user_tags(dict(request.tags)), restored_from=restore[0] if restore else None,
            guards=_guards(request),
        )
        xml = domain_xml(name=request.name, uuid=domain_uuid, domain_type=self.domain_type, size=request.size,
                         marks=marks, disk_format=disk_format, interface=self.interface)
        try:
            return self.domains.read(self.domains.define(xml))
        except PermanentError as exc:
            raise PermanentError(f"{request.key}: libvirt refused the domain definition: {exc}",
                                 code=exc.code) from None

    def _ensure_seed(self, dom: Domain, request: CreateRequest) -> Domain:
        """Upload the NoCloud seed; where the pool takes no uploads, redefine the domain without it."""
        ref = dom.owned.seed
        assert ref is not None
        files = seed_files(instance_id=dom.uuid, hostname=request.name, user_data=request.user_data)
        if self.storage.upload_seed(ref, build_seed(files, when=self.context.clock.now())):
            self._seed_supported = True
            return dom
        log.warning("storage pool %s on %s takes no uploads: %s is made without its cloud-init seed",
                    ref.pool, self.uri, request.key)
        self._seed_supported = False
        bare = without_seed(self.domains.inactive_xml(dom), ref, dom.owned)
        return self.domains.read(self.domains.define(bare))

    # --- update / delete --------------------------------------------------------------------
    def update(self, server: ObservedServer, request: UpdateRequest) -> ObservedServer:
        dom = self._owned(server.resource_id, server.owner, server.key)
        marks = dom.owned
        if marks.disk_gb and request.size.disk_gb != marks.disk_gb:  # 0: an adopted disk of unknown size
            raise PermanentError(f"{server.key}: the disk size cannot change in place on libvirt; "
                                 "replace the server", code="DISK_RESIZE_NOT_SUPPORTED")
        state = self.domains.state(dom)
        active = state[0] != SHUTOFF
        now = domain_size(dom.root, marks.disk_gb)
        resize = (now.cpus, now.memory_mb) != (request.size.cpus, request.size.memory_mb)
        if resize and active and not request.allow_restart:  # refuse before changing anything
            raise PermanentError(f"{server.key}: changing vCPUs/memory needs a restart and the update "
                                 "policy forbids one", code="RESTART_NOT_ALLOWED")
        if resize:
            self._check_vcpus(request.size)
        wanted = marks.with_(tags=user_tags(dict(request.tags)), flavor=request.flavor,
                             guards=_guards(request))
        if wanted != marks:
            dom = self.domains.write_marks(dom, wanted, live=active)
        if resize:
            old = self.domains.inactive_xml(dom)
            self.domains.define(resized(old, request.size))
            if active:
                self._restart(dom, state, old, server.key, request.size)
        return self._fresh(dom)

    def _restart(self, dom: Domain, state: State, old: str, key: str, size: Size) -> None:
        """Restart into the new definition; if it does not start, restore the old one and start that."""
        self.domains.power_off(dom, state, graceful=True)
        try:
            self.domains.power_on(dom, (SHUTOFF, 0))
        except PermanentError as exc:
            self.domains.define(old)
            self.domains.power_on(dom, (SHUTOFF, 0))
            raise PermanentError(f"{key}: the domain did not start with {size} ({exc}); it runs again with "
                                 "its old size", code=exc.code) from None

    def _check_vcpus(self, size: Size) -> None:
        limit = int(self.wire.call("virConnectGetMaxVcpus",
                                   lambda: self.wire.conn().getMaxVcpus(self.domain_type)))
        if size.cpus > limit:
            raise PermanentError(f"{size.cpus} vCPUs is more than {self.domain_type} guests on {self.uri} "
                                 f"can have ({limit})", code="TOO_MANY_VCPUS")

    def delete(self, server: ObservedServer) -> None:
        try:
            dom = self._owned(server.resource_id, server.owner, server.key)
        except NotFoundError:
            return  # already gone
        if dom.owned.retired_at:
            return  # gone as far as the engine is concerned; its snapshots keep it
        self.domains.power_off(dom, self.domains.state(dom), graceful=False)
        if self._our_snapshots(dom):
            self._retire(dom)
        else:
            self._purge(dom)

    def _retire(self, dom: Domain) -> None:
        """Keep a deleted server's disk for its snapshots: renamed out of the way and marked retired."""
        retired_name = f"{dom.name.split(RETIRED)[0]}{RETIRED}{dom.uuid[:8]}"
        if dom.name != retired_name:
            self.wire.call("virDomainRename", lambda: dom.handle.rename(retired_name, 0))
        retired = dom.owned.with_(retired_at=isoformat(self.context.clock.now()))
        self.domains.write_marks(dom, retired, live=False)

    def _purge(self, dom: Domain) -> None:
        """Volumes first, then the definition: a crash in between leaves an owned, visible domain."""
        for ref in (dom.owned.disk, dom.owned.seed, *still_own(self.domains, dom, dom.owned.adopted_disks)):
            if ref is not None:
                self.storage.delete_volume(ref)
        try:
            self.wire.call("virDomainUndefineFlags", lambda: dom.handle.undefineFlags(_UNDEFINE))
        except NotFoundError:
            pass

    # --- snapshots --------------------------------------------------------------------------
    def _snapshot_info(self, handle: Any) -> SnapshotInfo:
        return snapshot_info(self.wire.call("virDomainSnapshotGetXMLDesc", _xml_of(handle)))

    def _our_snapshots(self, dom: Domain) -> list[SnapshotInfo]:
        found = []
        for handle in self.wire.call("virDomainListAllSnapshots", lambda: dom.handle.listAllSnapshots(0)):
            try:
                info = self._snapshot_info(handle)
            except NotFoundError:
                continue
            if info.marks is not None and info.marks.get("owner") == dom.owned.owner:
                found.append(info)
        return found

    def _named_snapshot(self, dom: Domain, name: str, owner: str) -> tuple[Any, SnapshotInfo] | None:
        """The snapshot ``name`` of ``dom`` if it exists; ``PermanentError`` if we did not take it."""
        try:
            handle = self.wire.call("virDomainSnapshotLookupByName",
                                    lambda: dom.handle.snapshotLookupByName(name, 0))
        except NotFoundError:
            return None
        info = self._snapshot_info(handle)
        if info.marks is None or info.marks.get("owner") != owner:
            raise PermanentError(f"snapshot {name!r} of domain {dom.name} was not taken by {owner!r}; "
                                 "refusing to touch it", code="NOT_OWNED")
        return handle, info

    def _snapshot(self, dom: Domain, info: SnapshotInfo) -> Snapshot:
        marks = info.marks or {}
        taken = marks.get("taken-at")
        return Snapshot(
            provider=self.name, snapshot_id=f"{dom.uuid}/{info.name}", resource_id=dom.uuid,
            key=str(marks.get("key", "")), owner=str(marks.get("owner", "")), name=info.name,
            created_at=parse_timestamp(taken) if taken else datetime.fromtimestamp(info.created, UTC),
            size_gb=float(marks.get("size-gb", 0)), policy=marks.get("policy"),
        )

    def snapshot(self, server: ObservedServer, request: SnapshotRequest) -> Snapshot:
        """``method: snapshot``: an internal snapshot (``snapshotCreateXML``) — disk and, while running,
        memory, inside the qcow2. ``method: image``: a standalone copy (``providers.libvirt.backup``)."""
        dom = self._owned(server.resource_id, server.owner, server.key)
        if request.method is BackupMethod.IMAGE:
            return self.backups.take(dom, request, self.domains.state(dom))
        existing = self._named_snapshot(dom, request.name, server.owner)
        if existing is not None:  # a retried snapshot: the first one made it
            return self._snapshot(dom, existing[1])
        marks = {"owner": server.owner, "key": server.key, "policy": request.policy,
                 "taken-at": isoformat(self.context.clock.now()), "size-gb": dom.owned.disk_gb,
                 "tags": dict(user_tags(dict(request.tags)))}
        xml = snapshot_xml(request.name, marks)
        handle = self.wire.call("virDomainSnapshotCreateXML", lambda: dom.handle.snapshotCreateXML(xml, 0))
        return self._snapshot(dom, self._snapshot_info(handle))

    def list_snapshots(self, owner: str) -> list[Snapshot]:
        """Both kinds from one domain scan: internal snapshots of our domains (one listing each, plus
        one read per snapshot) and image backup records (no call beyond the scan)."""
        servers, records = self._scan_all(owner)
        snaps = [self._snapshot(dom, info) for dom in servers for info in self._our_snapshots(dom)]
        snaps += [self.backups.snapshot_of(record) for record in records]
        return sorted(snaps, key=lambda s: (s.key, s.created_at, s.snapshot_id))

    def delete_snapshot(self, snapshot: Snapshot) -> None:
        if is_image_backup(snapshot.snapshot_id):
            self.backups.delete(snapshot)
            return
        uuid, _, name = snapshot.snapshot_id.partition("/")
        try:
            dom = self._owned(uuid, snapshot.owner, snapshot.key)
        except NotFoundError:
            return
        found = self._named_snapshot(dom, name, snapshot.owner)
        if found is not None:
            try:
                self.wire.call("virDomainSnapshotDelete", lambda: found[0].delete(0))
            except NotFoundError:
                pass
        if dom.owned.retired_at and not self._our_snapshots(dom):
            self._purge(dom)  # the last backup of a deleted server is gone: so is its disk

    # --- measured usage ---------------------------------------------------------------------
    def metrics(self, servers: list[ObservedServer]) -> list[MetricSample]:
        """CPU time, memory (balloon) and NIC byte counters of every server in one ``getAllDomainStats``."""
        if not servers:
            return []
        stats = self.wire.call("virConnectGetAllDomainStats",
                               lambda: self.wire.conn().getAllDomainStats(_STATS, 0))
        by_uuid: dict[str, dict[str, Any]] = {handle.UUIDString(): record for handle, record in stats}
        now = self.context.clock.now()
        samples = []
        for server in servers:
            record = by_uuid.get(server.resource_id)
            if record is None:
                continue
            running = record.get("state.state") in (RUNNING, BLOCKED, PAUSED)
            nics = range(int(record.get("net.count", 0)))
            memory_kib = record.get("balloon.current") if running else 0
            samples.append(MetricSample(
                provider=self.name, resource_id=server.resource_id, key=server.key, at=now,
                cpu_seconds=round(int(record.get("cpu.time", 0)) / 1e9, 3),
                memory_mb=int(memory_kib) // 1024 if memory_kib is not None else server.size.memory_mb,
                net_rx_bytes=sum(int(record.get(f"net.{n}.rx.bytes", 0)) for n in nics),
                net_tx_bytes=sum(int(record.get(f"net.{n}.tx.bytes", 0)) for n in nics),
                disk_gb=server.size.disk_gb,
            ))
        return samples


def _xml_of(handle: Any) -> Callable[[], str]:
    return lambda: str(handle.getXMLDesc(0))

