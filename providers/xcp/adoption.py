"""providers.xcp.adoption: taking over XCP VMs that already run, and letting them go.

A VM is unowned when its ``other_config`` carries no owner mark (templates, snapshots, our
backups and the control domain are never servers). It is described from its record — vCPUs,
memory, power state, its ``key=value`` tags as user tags, the template it was made from
(``base_template_name``) as its image — and its root disk's size from the VDI behind its
device-0 disk. ``describe`` and ``list_unowned`` read the pool's VM, VBD and VDI records
(three calls, however many VMs).

``adopt`` marks the VM's own disks first — the VDIs behind its read-write ``Disk`` VBDs that are
no snapshot, not sharable, not read-only and attached to no other VM — with the owner and key
(``VDI.set_other_config``, as a VM we create has its disks marked), so that deleting the
adopted server destroys them like a disk we made; a disk shared with another VM, or not
attached to it, is never marked. Then one ``VM.set_other_config``, the adoption's commit
point: the ownership and guard marks, plus what a VM we create carries for us — the image and
disk size as described (the disk only when known) and ``reconciler:created-at`` (the
adoption's time; without it ``observe`` takes the VM for one still being made). A kill between
the two leaves marked disks on a VM nobody owns: the retried adoption marks them again, and
nothing deletes a disk but the delete of the VM it is attached to. ``release`` removes every
``reconciler:`` key from the VM, then from its disks.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from providers.xcp.records import MARK_CREATED, MARK_DISK_GB, MARK_IMAGE, is_backup, observed_from_record
from providers.xcp.wire import GIB, MIB, split_tags, xint
from reconciler.core.clock import isoformat
from reconciler.core.errors import NotFoundError, PermanentError
from reconciler.core.model import GUARD_TAGS, TAG_KEY, TAG_OWNER, ObservedServer, ServerStatus, Size
from reconciler.core.provider import AdoptRequest, adoption_conflict, adoption_marks, released_tags, user_tags

Xapi = Callable[..., Any]
NULL_REF = "OpaqueRef:NULL"
_STATUS = {"Running": ServerStatus.RUNNING, "Halted": ServerStatus.STOPPED,
           "Paused": ServerStatus.STOPPED, "Suspended": ServerStatus.STOPPED}


def _server(record: Mapping[str, Any]) -> bool:
    return not (is_backup(record) or record.get("is_a_template") or record.get("is_control_domain"))


def _root_disks(xapi: Xapi) -> dict[str, int]:
    """VM ref → the size (GB, rounded up) of its device-0 disk."""
    vbds: dict[str, Any] = xapi("VBD.get_all_records")
    vdis: dict[str, Any] = xapi("VDI.get_all_records")
    sizes = {}
    for vbd in vbds.values():
        vdi = vdis.get(vbd.get("VDI"))
        if vbd.get("type") == "Disk" and str(vbd.get("userdevice")) == "0" and vdi is not None:
            sizes[str(vbd["VM"])] = math.ceil(xint(vdi.get("virtual_size")) / GIB)
    return sizes


def described(provider: str, ref: str, record: Mapping[str, Any], disks: Mapping[str, int]) -> ObservedServer:
    """A VM as ``describe`` reports it: an owned one as ``observe`` does, an unowned one from its record."""
    marks: Mapping[str, str] = record["other_config"]
    if marks.get(TAG_OWNER):
        return observed_from_record(provider, record)
    return ObservedServer(
        provider=provider, resource_id=record["uuid"], key="", name=record["name_label"], owner="",
        status=_STATUS.get(record["power_state"], ServerStatus.ERROR),
        size=Size(cpus=xint(record["VCPUs_at_startup"]), memory_mb=xint(record["memory_static_max"]) // MIB,
                  disk_gb=disks.get(ref, 0)),
        image=str(marks.get("base_template_name", "")), spec_hash="",
        tags=user_tags(split_tags(list(record["tags"]))[1]),
    )


def servers(provider: str, xapi: Xapi, wanted: Sequence[str] | None) -> list[ObservedServer]:
    """The pool's servers with these uuids (owned or not), or with ``wanted`` None every unowned one."""
    records: dict[str, Any] = xapi("VM.get_all_records")
    chosen = {
        ref: rec for ref, rec in records.items()
        if _server(rec) and (rec["uuid"] in wanted if wanted is not None
                             else not rec["other_config"].get(TAG_OWNER))
    }
    if not chosen:
        return []
    disks = _root_disks(xapi)
    return sorted((described(provider, ref, rec, disks) for ref, rec in chosen.items()),
                  key=lambda s: (s.name, s.resource_id))


def _vm(xapi: Xapi, uuid: str) -> tuple[str, dict[str, Any]]:
    ref = str(xapi("VM.get_by_uuid", uuid))
    record: dict[str, Any] = xapi("VM.get_record", ref)
    return ref, record


def attached_disks(xapi: Xapi, record: Mapping[str, Any]) -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    """(VDI ref, VDI record, VBD record) of each disk attached to a VM (CD drives and empty ones skipped)."""
    found = []
    for vbd in record["VBDs"]:
        vbd_rec: dict[str, Any] = xapi("VBD.get_record", vbd)
        if vbd_rec["type"] == "Disk" and vbd_rec["VDI"] != NULL_REF:
            found.append((str(vbd_rec["VDI"]), xapi("VDI.get_record", vbd_rec["VDI"]), vbd_rec))
    return found


def only_attached_to(vdi_rec: Mapping[str, Any], record: Mapping[str, Any]) -> bool:
    """Whether every VBD of the disk is one of this VM's (no other VM uses it)."""
    return set(vdi_rec.get("VBDs", ())) <= set(record["VBDs"])


def _own(vdi_rec: Mapping[str, Any], vbd_rec: Mapping[str, Any], record: Mapping[str, Any]) -> bool:
    """A disk that is the VM's alone: read-write, no snapshot, not sharable, on no other VM."""
    return (str(vbd_rec.get("mode", "RW")) == "RW" and not vdi_rec.get("is_a_snapshot")
            and not vdi_rec.get("sharable") and not vdi_rec.get("read_only")
            and only_attached_to(vdi_rec, record))


def _mark_disks(xapi: Xapi, record: Mapping[str, Any], request: AdoptRequest) -> None:
    """The owner and key on each of the VM's own disks (marks another adoption left are replaced)."""
    for vdi, vdi_rec, vbd_rec in attached_disks(xapi, record):
        marks: dict[str, str] = dict(vdi_rec["other_config"])
        wanted = {**marks, TAG_OWNER: request.owner, TAG_KEY: request.key}
        if _own(vdi_rec, vbd_rec, record) and wanted != marks:
            xapi("VDI.set_other_config", vdi, wanted)


def adopt(xapi: Xapi, server: ObservedServer, request: AdoptRequest, now: datetime) -> str:
    """The VM's own disks marked, then one ``VM.set_other_config`` with our marks; the VM's ref."""
    ref, record = _vm(xapi, server.resource_id)
    if not _server(record):
        raise PermanentError(
            f"VM {server.resource_id} is a template or a backup, not a server", code="NOT_A_VM"
        )
    marks: dict[str, str] = dict(record["other_config"])
    conflict = adoption_conflict(marks, request)
    if conflict is not None:
        raise PermanentError(f"VM {server.resource_id} cannot be adopted as {request.key}: {conflict}",
                             code="NOT_OWNED")
    if marks.get(TAG_OWNER):
        return ref  # adopted already by this very request
    _mark_disks(xapi, record, request)
    marks = {k: v for k, v in marks.items() if k not in GUARD_TAGS}
    marks.update(adoption_marks(request))
    marks[MARK_IMAGE] = server.image
    if server.size.disk_gb > 0:
        marks[MARK_DISK_GB] = str(server.size.disk_gb)
    marks[MARK_CREATED] = isoformat(now)
    xapi("VM.set_other_config", ref, marks)
    return ref


def release(xapi: Xapi, server: ObservedServer) -> None:
    """Remove every mark of ours from the VM, if ``server.owner`` still owns it."""
    try:
        ref, record = _vm(xapi, server.resource_id)
    except NotFoundError:
        return
    marks: dict[str, str] = record["other_config"]
    if not server.owner or marks.get(TAG_OWNER) != server.owner:
        return
    xapi("VM.set_other_config", ref, released_tags(marks))
    for vdi, vdi_rec, _ in attached_disks(xapi, record):
        if vdi_rec["other_config"].get(TAG_OWNER) == server.owner:
            xapi("VDI.set_other_config", vdi, released_tags(vdi_rec["other_config"]))
