"""providers.libvirt.adoption: taking over libvirt domains that already run, and letting them go.

A domain without our ``<metadata>`` element is unowned. It is described from its XML: vCPUs
and memory, its power state, the size of its first disk (``virStorageVolLookupByPath`` on the
disk's file; 0 when there is none or the volume is in no pool), and as image the volume its
first disk is an overlay of (``backingStore``; "" when it is none). It has no user tags: on
libvirt they live in our metadata.

``adopt`` writes our metadata element (``virDomainSetMetadata``, on the definition and, when
it runs, on the live domain): the ownership and guard marks, and the bookkeeping a domain we
define carries — the image and disk size as described, and ``created-at`` (the adoption's
time, without which ``observe`` takes a domain for one still being made) — and the disks that
are the domain's own (``providers.libvirt.disks``: writable, in a pool, used by no other
domain), so that deleting the adopted server removes them with it, as it removes a disk we
made; a disk shared with another domain, or not attached to it, is never one of them. All of
it in one ``virDomainSetMetadata``. ``release`` removes the element.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Sequence
from datetime import datetime
from pathlib import PurePosixPath

import libvirt

from providers.libvirt.disks import own_disks
from providers.libvirt.domain import Domain, Domains
from providers.libvirt.wire import Wire, status_of
from providers.libvirt.xml import GIB, NS, Marks, domain_size
from reconciler.core.clock import isoformat
from reconciler.core.errors import NotFoundError, PermanentError, ProviderError
from reconciler.core.model import TAG_KEY, TAG_OWNER, TAG_TOKEN, ObservedServer
from reconciler.core.provider import AdoptRequest, adoption_conflict, guard_marks


def _flags(live: bool) -> int:
    return int(libvirt.VIR_DOMAIN_AFFECT_CONFIG | (libvirt.VIR_DOMAIN_AFFECT_LIVE if live else 0))


def disk_gb(wire: Wire, dom: Domain) -> int:
    """The capacity (GB, rounded up) of the domain's first disk, 0 when it cannot be told."""
    source = dom.root.find("devices/disk[@device='disk']/source")
    path = source.get("file") if source is not None else None
    if not path:
        return 0
    try:
        volume = wire.call("virStorageVolLookupByPath", lambda: wire.conn().storageVolLookupByPath(path))
        capacity = int(wire.call("virStorageVolGetInfo", lambda: volume.info())[1])
    except ProviderError:
        return 0
    return math.ceil(capacity / GIB)


def image_of(dom: Domain) -> str:
    """The volume the first disk is an overlay of (its base image), or "" when it is none."""
    backing = dom.root.find("devices/disk[@device='disk']/backingStore/source")
    path = backing.get("file") if backing is not None else None
    return PurePosixPath(path).name if path else ""


def unowned(provider: str, domains: Domains, wire: Wire, dom: Domain) -> ObservedServer:
    """An unowned domain as ``describe`` and ``list_unowned`` report it."""
    size = domain_size(dom.root, disk_gb(wire, dom))
    return ObservedServer(
        provider=provider, resource_id=dom.uuid, key="", name=dom.name, owner="",
        status=status_of(*domains.state(dom)), size=size, image=image_of(dom), spec_hash="",
    )


def by_uuids(domains: Domains, resource_ids: Sequence[str]) -> list[Domain]:
    """The domains with these UUIDs that exist (anything that is no UUID names none)."""
    found = []
    for resource_id in dict.fromkeys(resource_ids):
        try:
            uuid.UUID(resource_id)
            found.append(domains.by_uuid(resource_id))
        except (ValueError, NotFoundError):
            continue
    return found


def adopt(
    domains: Domains, dom: Domain, server: ObservedServer, request: AdoptRequest, now: datetime
) -> Domain:
    """Write our marks on the unowned ``dom``; the domain with them."""
    current: dict[str, str] = {}
    if dom.marks is not None:
        current = {TAG_OWNER: dom.marks.owner, TAG_KEY: dom.marks.key, TAG_TOKEN: dom.marks.token}
    elif dom.backup is not None:
        raise PermanentError(f"domain {dom.name} is a backup record, not a server", code="NOT_A_SERVER")
    conflict = adoption_conflict(current, request)
    if conflict is not None:
        raise PermanentError(f"domain {dom.name} cannot be adopted as {request.key}: {conflict}",
                             code="NOT_OWNED")
    if dom.marks is not None:
        return dom  # adopted already by this very request
    marks = Marks(
        owner=request.owner, key=request.key, spec_hash=request.spec_hash, generation=request.generation,
        token=request.token, cluster=request.cluster, member=request.member, image=server.image,
        disk_gb=server.size.disk_gb, created_at=isoformat(now),
        guards=tuple(sorted(guard_marks(request.protect, request.backup_policy).items())),
        adopted_disks=own_disks(domains, dom),
    )
    active = bool(domains.wire.call("virDomainIsActive", lambda: dom.handle.isActive()))
    return domains.write_marks(dom, marks, live=active)


def release(domains: Domains, dom: Domain, owner: str) -> None:
    """Remove our metadata element from ``dom`` if ``owner`` still owns it."""
    if dom.marks is None or not owner or dom.marks.owner != owner:
        return
    active = bool(domains.wire.call("virDomainIsActive", lambda: dom.handle.isActive()))
    domains.wire.call("virDomainSetMetadata", lambda: dom.handle.setMetadata(
        libvirt.VIR_DOMAIN_METADATA_ELEMENT, None, None, NS, _flags(active)))
