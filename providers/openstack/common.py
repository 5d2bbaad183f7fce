"""providers.openstack.common: how Nova's servers, flavors and images map onto our model (no I/O).

* **Ownership** is server metadata: the shared ``reconciler:*`` marks (owner, key, spec hash,
  cluster, member, generation, token) plus ``reconciler:image`` (the image as the template
  names it, so a name never looks like drift against the id Nova reports),
  ``reconciler:disk-gb`` (the disk asked for) and, when the flavor was picked by size,
  ``reconciler:size`` (``cpus,memory_mb,flavor``: the size asked for and the flavor picked);
  a restored server also carries ``reconciler:restored-from`` (the backup image's id).
  Metadata is authoritative; two Nova server *tags* (``reconciler:owner=…`` and
  ``reconciler:token=…``) only let the API filter listings for us.
* **Sizes** come from the flavor embedded in each server (microversion 2.47+), so observing
  needs no flavor calls. A flavor picked for a size reports the size that was asked for as
  long as the server still runs that flavor, so a size between two flavors is not drift.
* **Backups** are snapshot images whose properties carry the owner, key, cluster, policy and
  time marks, ``reconciler:snapshot-of`` (the server), ``reconciler:disk-gb`` (the disk the
  server had: a restore needs at least that much) and ``reconciler:backup-method`` (the
  method the policy asked for; Nova has one kind of backup, so both methods take an image).
  Nova copies a server's image properties into its snapshots, so a backup of a restored
  server would inherit its ancestor's marks: every mark is written on every backup.
* **Statuses**: BUILD and the other transitional ones are pending, ACTIVE and VERIFY_RESIZE
  (resized, awaiting confirmation) running, SHUTOFF / SUSPENDED / PAUSED / SHELVED stopped,
  ERROR and UNKNOWN error; DELETED and SOFT_DELETED servers are gone.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from reconciler.core.clock import parse_timestamp
from reconciler.core.errors import PermanentError, UserError
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
    Snapshot,
)
from reconciler.core.provider import read_guard_marks, user_tags

MARK_IMAGE = TAG_PREFIX + "image"
MARK_DISK = TAG_PREFIX + "disk-gb"
MARK_SIZE = TAG_PREFIX + "size"
MARK_SNAPSHOT_OF = TAG_PREFIX + "snapshot-of"
MARK_METHOD = TAG_BACKUP_METHOD
MARK_RESTORED_FROM = TAG_PREFIX + "restored-from"
GIB = 1024**3
NOVA_TAG_MAX = 60  # characters; a tag may not hold ',' or '/'

STATUS: dict[str, ServerStatus] = {
    "BUILD": ServerStatus.PENDING, "REBUILD": ServerStatus.PENDING, "RESIZE": ServerStatus.PENDING,
    "REVERT_RESIZE": ServerStatus.PENDING, "MIGRATING": ServerStatus.PENDING,
    "REBOOT": ServerStatus.PENDING, "HARD_REBOOT": ServerStatus.PENDING, "PASSWORD": ServerStatus.PENDING,
    "ACTIVE": ServerStatus.RUNNING, "VERIFY_RESIZE": ServerStatus.RUNNING,
    "SHUTOFF": ServerStatus.STOPPED, "SUSPENDED": ServerStatus.STOPPED, "PAUSED": ServerStatus.STOPPED,
    "SHELVED": ServerStatus.STOPPED, "SHELVED_OFFLOADED": ServerStatus.STOPPED,
    "RESCUE": ServerStatus.ERROR, "ERROR": ServerStatus.ERROR, "UNKNOWN": ServerStatus.ERROR,
}
GONE = frozenset({"DELETED", "SOFT_DELETED"})


def nova_tag(name: str, value: str) -> str:
    """A Nova server tag standing for metadata ``name`` = ``value`` (hashed when too long or odd)."""
    tag = f"{name}={value}"
    if len(tag) <= NOVA_TAG_MAX and "," not in tag and "/" not in tag:
        return tag
    return f"{name}#{hashlib.sha256(value.encode()).hexdigest()[:32]}"


def owner_tag(owner: str) -> str:
    return nova_tag(TAG_OWNER, owner)


def token_tag(token: str) -> str:
    return nova_tag(TAG_TOKEN, token)


def task_state(server: Mapping[str, Any]) -> str | None:
    value = server.get("OS-EXT-STS:task_state")
    return str(value) if value else None


def busy(server: Mapping[str, Any]) -> bool:
    """Whether Nova is still working on the server: a task runs, or it is still being built.

    Between two build steps (a reschedule to another host) Nova clears the task while the
    server stays in vm_state ``building``; a call refused then is worth waiting out too.
    """
    return task_state(server) is not None or server.get("OS-EXT-STS:vm_state") == "building" \
        or server.get("status") == "BUILD"


def fault_message(server: Mapping[str, Any]) -> str:
    fault = server.get("fault") or {}
    return str(fault.get("message") or "no fault recorded").strip()


def _int(value: Any, default: int = 0) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def _time(value: Any) -> Any:
    if not value:
        return None
    try:
        return parse_timestamp(str(value))
    except UserError:
        return None


def size_mark(size: Size, flavor: str) -> str:
    return f"{size.cpus},{size.memory_mb},{flavor}"


def observed_from_server(provider: str, server: Mapping[str, Any]) -> ObservedServer | None:
    """One of our servers as an ObservedServer; None when it lacks our marks or is gone."""
    marks: Mapping[str, str] = server.get("metadata") or {}
    if TAG_OWNER not in marks or TAG_KEY not in marks or server.get("status") in GONE:
        return None
    flavor = server.get("flavor") or {}
    flavor_name = str(flavor.get("original_name") or flavor.get("id") or "")
    cpus, memory = _int(flavor.get("vcpus")), _int(flavor.get("ram"))
    asked = marks.get(MARK_SIZE, "").split(",", 2)
    if len(asked) == 3 and asked[2] == flavor_name:
        cpus, memory = _int(asked[0], cpus), _int(asked[1], memory)
    image = server.get("image")
    addresses = tuple(
        str(entry["addr"]) for entries in (server.get("addresses") or {}).values()
        for entry in entries if entry.get("addr")
    )
    return ObservedServer(
        provider=provider,
        resource_id=str(server["id"]),
        key=marks[TAG_KEY],
        name=str(server.get("name", "")),
        owner=marks[TAG_OWNER],
        status=STATUS.get(str(server.get("status")), ServerStatus.ERROR),
        size=Size(cpus=cpus, memory_mb=memory, disk_gb=_int(marks.get(MARK_DISK), _int(flavor.get("disk")))),
        image=marks.get(MARK_IMAGE) or (str(image.get("id", "")) if isinstance(image, dict) else ""),
        spec_hash=marks.get(TAG_SPEC_HASH, ""),
        generation=_int(marks.get(TAG_GENERATION)),
        token=marks.get(TAG_TOKEN, ""),
        flavor=flavor_name or None,
        addresses=addresses,
        created_at=_time(server.get("created")),
        tags=user_tags(marks),
        **read_guard_marks(marks),
    )


def snapshot_from_image(provider: str, image: Mapping[str, Any], now: Any) -> Snapshot:
    """One of our backup images (Nova's image API view) as a Snapshot."""
    marks: Mapping[str, str] = image.get("metadata") or {}
    size_bytes = _int(image.get("OS-EXT-IMG-SIZE:size"))
    size_gb = round(size_bytes / GIB, 3) if size_bytes else float(_int(image.get("minDisk")))
    status = str(image.get("status") or "").lower()
    return Snapshot(
        provider=provider,
        snapshot_id=str(image["id"]),
        resource_id=marks.get(MARK_SNAPSHOT_OF, ""),
        key=marks.get(TAG_KEY, ""),
        owner=marks.get(TAG_OWNER, ""),
        name=str(image.get("name") or ""),
        created_at=_time(marks.get(TAG_TAKEN_AT)) or _time(image.get("created")) or now,
        size_gb=size_gb,
        policy=marks.get(TAG_POLICY) or None,
        status="available" if status == "active" else status or "unknown",
    )


def source_disk_gb(image: Mapping[str, Any]) -> int:
    """The root disk (GB) of the server a backup image was taken of: our mark, else Nova's minDisk."""
    marks: Mapping[str, str] = image.get("metadata") or {}
    return _int(marks.get(MARK_DISK), _int(image.get("minDisk")))


# --- flavors ------------------------------------------------------------------------------
@dataclass(frozen=True, order=True)
class Flavor:
    """The parts of a Nova flavor the reconciler reads (ordered smallest first)."""

    vcpus: int
    ram: int
    disk: int
    name: str
    id: str

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> Flavor:
        return cls(vcpus=_int(data.get("vcpus")), ram=_int(data.get("ram")), disk=_int(data.get("disk")),
                   name=str(data.get("name") or data["id"]), id=str(data["id"]))


def find_flavor(flavors: Iterable[Flavor], wanted: str) -> Flavor:
    """The flavor a template names, by name first, then by id."""
    choices = list(flavors)
    for match in ([f for f in choices if f.name == wanted], [f for f in choices if f.id == wanted]):
        if len(match) == 1:
            return match[0]
        if len(match) > 1:
            raise PermanentError(f"{len(match)} flavors are named {wanted!r}; name it by id",
                                 code="AmbiguousFlavor")
    names = ", ".join(sorted(f.name for f in choices)) or "none"
    raise PermanentError(f"flavor {wanted!r} not found on the cloud (available: {names})",
                         code="UnknownFlavor")


def pick_flavor(flavors: Iterable[Flavor], size: Size, *, root_disk: bool) -> Flavor:
    """The smallest flavor with at least ``size``'s vCPUs and memory (and disk, when it holds the root)."""
    fitting = [f for f in flavors if f.vcpus >= size.cpus and f.ram >= size.memory_mb
               and (not root_disk or f.disk >= size.disk_gb)]
    if not fitting:
        disk = f", {size.disk_gb} GB disk" if root_disk else ""
        raise PermanentError(f"no flavor has {size.cpus} vCPUs, {size.memory_mb} MB{disk}; name one with "
                             "flavor.openstack in the template", code="NoFlavorFits")
    return min(fitting)


def user_metadata(tags: Iterable[tuple[str, str]]) -> dict[str, str]:
    """A template's tags as server metadata (the reconciler's own marks are never taken from tags)."""
    return {k: v for k, v in tags if not k.startswith(TAG_PREFIX)}


def generation_of(marks: Mapping[str, str]) -> int:
    return _int(marks.get(TAG_GENERATION))
