"""providers.xcp.adoption: taking over XCP VMs that already run, and letting them go.

A VM is unowned when its ``other_config`` carries no owner mark (templates, snapshots, our
backups and the control domain are never servers). It is described from its record — vCPUs,
memory, power state, its ``key=value`` tags as user tags, the template it was made from
(``base_template_name``) as its image — and its root disk's size from the VDI behind its
device-0 disk. ``describe`` and ``list_unowned`` read the pool's VM, VBD and VDI records
(three calls, however many VMs).

``adopt`` is one ``VM.set_other_config``: the ownership and guard marks, plus what a VM we
create carries for us — the image and disk size as described (the disk only when known) and
``reconciler:created-at`` (the adoption's time; without it ``observe`` takes the VM for one
still being made). Its disks are not marked, so deleting an adopted server leaves them.
``release`` removes every ``reconciler:`` key.
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
from reconciler.core.model import GUARD_TAGS, TAG_OWNER, ObservedServer, ServerStatus, Size
from reconciler.core.provider import AdoptRequest, adoption_conflict, adoption_marks, released_tags, user_tags

Xapi = Callable[..., Any]
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


def adopt(xapi: Xapi, server: ObservedServer, request: AdoptRequest, now: datetime) -> str:
    """One ``VM.set_other_config`` with our marks; the VM's ref."""
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
    if server.owner and marks.get(TAG_OWNER) == server.owner:
        xapi("VM.set_other_config", ref, released_tags(marks))
