"""providers.xcp.records: what the ``reconciler:`` marks in a VM's ``other_config`` say.

Which VM records are ours (servers, never backups, templates or the control domain) and
how one reads as an ``ObservedServer``: the marks XCP keeps for us beside the shared
ownership and guard marks, and the power states XAPI reports.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from providers.xcp.wire import MIB, split_tags, xint
from reconciler.core.clock import parse_timestamp
from reconciler.core.model import (
    TAG_BACKUP_METHOD,
    TAG_GENERATION,
    TAG_KEY,
    TAG_OWNER,
    TAG_POLICY,
    TAG_PREFIX,
    TAG_SPEC_HASH,
    TAG_TAKEN_AT,
    TAG_TOKEN,
    ObservedServer,
    ServerStatus,
    Size,
)
from reconciler.core.provider import read_guard_marks, user_tags

MARK_IMAGE = TAG_PREFIX + "image"
MARK_DISK_GB = TAG_PREFIX + "disk-gb"
MARK_CREATED = TAG_PREFIX + "created-at"
MARK_SNAPSHOT_OF = TAG_PREFIX + "snapshot-of"
MARK_SIZE_GB = TAG_PREFIX + "size-gb"
MARK_METHOD = TAG_BACKUP_METHOD
MARK_BACKUP_ID = TAG_PREFIX + "backup-id"  # an image backup's own uuid (its clones have another)
MARK_RESTORED_FROM = TAG_PREFIX + "restored-from"
# Marks that make a VM a backup; a server restored from one carries none of them.
BACKUP_MARKS = (TAG_TAKEN_AT, TAG_POLICY, MARK_SNAPSHOT_OF, MARK_SIZE_GB, MARK_METHOD, MARK_BACKUP_ID)

_STATUS = {"Running": ServerStatus.RUNNING, "Halted": ServerStatus.STOPPED,
           "Paused": ServerStatus.STOPPED, "Suspended": ServerStatus.STOPPED}


def is_backup(record: Mapping[str, Any]) -> bool:
    """A snapshot VM, or an image backup (a template that names its own uuid as the backup)."""
    return bool(record.get("is_a_snapshot")) or (
        record.get("other_config", {}).get(MARK_BACKUP_ID) == record.get("uuid"))


def owned(record: Mapping[str, Any], owner: str) -> bool:
    """One of ``owner``'s servers (never a backup or the control domain)."""
    return (not is_backup(record) and not record.get("is_control_domain")
            and record.get("other_config", {}).get(TAG_OWNER) == owner)


def observed_from_record(provider: str, record: Mapping[str, Any]) -> ObservedServer:
    """An owned VM record as an ObservedServer (``error`` until its create finished)."""
    marks: Mapping[str, str] = record["other_config"]
    complete = MARK_CREATED in marks and not record["is_a_template"]
    status = _STATUS.get(record["power_state"], ServerStatus.ERROR) if complete else ServerStatus.ERROR
    created = marks.get(MARK_CREATED)
    return ObservedServer(
        provider=provider, resource_id=record["uuid"], key=marks.get(TAG_KEY, ""),
        name=record["name_label"], owner=marks[TAG_OWNER], status=status,
        size=Size(cpus=xint(record["VCPUs_at_startup"]),
                  memory_mb=xint(record["memory_static_max"]) // MIB,
                  disk_gb=xint(marks.get(MARK_DISK_GB))),
        image=marks.get(MARK_IMAGE, ""), spec_hash=marks.get(TAG_SPEC_HASH, ""),
        generation=xint(marks.get(TAG_GENERATION)), token=marks.get(TAG_TOKEN, ""), flavor=None,
        created_at=parse_timestamp(created) if created else None,
        tags=user_tags(split_tags(list(record["tags"]))[1]), **read_guard_marks(marks),
    )
