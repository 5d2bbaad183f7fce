"""providers.aws.adoption: taking over EC2 instances that already run, and letting them go.

* ``describe``: one ``DescribeInstances`` filtered on the instance ids (an unknown id is simply
  not listed, never an error) and one ``DescribeVolumes`` for their root volumes, whose size an
  unowned instance carries in no tag of ours;
* ``list_unowned``: the ``DescribeInstances`` paginator over every live instance, 1000 a page,
  keeping those without our owner tag, and their root volumes (``DescribeVolumes``, 200
  instances a call);
* ``adopt``: first the instance's EBS volumes get the marks the volumes of an instance we
  launch get (owner, key, cluster, member: one ``DescribeVolumes`` and one ``CreateTags``) —
  each volume attached to this instance alone and tagged by no other owner; a multi-attached
  volume, or one another deployment marked, is left as it is. Then one ``CreateTags`` on the
  instance, the adoption's commit point: the ownership and guard marks — plus the provider's
  own bookkeeping marks an instance we launched carries: the root disk size, the launch time
  and, when the instance has a ``Name``, that the name counts as the server's
  (``TAG_AUTO_NAME``), so it stays as it is and is never a user tag to remove. A kill between
  the two leaves tagged volumes on an instance nobody owns; the retried adoption tags them
  again;
* ``release``: one ``DeleteTags`` of every ``reconciler:`` tag on the instance, then on its
  volumes that carry the same owner;
* ``volumes_go_along``: before an adopted instance is terminated, its own volumes (tagged at
  adoption with its owner and key, attached to it alone) that EC2 would keep
  (``DeleteOnTermination`` false, as set by whoever launched it) are switched to go with it —
  one ``DescribeVolumes`` and one ``ModifyInstanceAttribute``, only when there are such volumes.
  Done before the terminate, so a kill between the two leaves nothing behind: the retried
  delete terminates the instance and EC2 deletes its volumes. A volume of another owner, or
  attached elsewhere too, stays as its launcher set it.

An unowned instance's ``Name`` is its server name, not one of its user tags (as for the
instances we launch), and its image is its ``ImageId``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from providers.aws.api import AwsApi
from providers.aws.common import (
    STATUS_BY_STATE,
    TAG_AUTO_NAME,
    TAG_CREATED_AT,
    TAG_DISK,
    observed_from_instance,
    tag_list,
    tags_of,
    to_int,
    to_utc,
)
from reconciler.core.clock import isoformat
from reconciler.core.errors import NotFoundError, PermanentError
from reconciler.core.model import (
    TAG_CLUSTER,
    TAG_GENERATION,
    TAG_KEY,
    TAG_MEMBER,
    TAG_OWNER,
    TAG_PREFIX,
    TAG_SPEC_HASH,
    TAG_TOKEN,
    ObservedServer,
    Size,
)
from reconciler.core.provider import (
    AdoptRequest,
    adoption_conflict,
    adoption_marks,
    read_guard_marks,
    user_tags,
)

_VOLUME_BATCH = 200  # instance ids per DescribeVolumes filter

Observe = Callable[[list[dict[str, Any]]], list[ObservedServer]]


def root_disks(api: AwsApi, instances: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    """Instance id → the size (GB) of its root EBS volume, for those whose size no tag of ours holds."""
    wanted = {
        str(i["InstanceId"]): str(i.get("RootDeviceName") or "")
        for i in instances
        if not to_int(tags_of(i).get(TAG_DISK))
    }
    sizes: dict[str, int] = {}
    ids = sorted(wanted)
    for start in range(0, len(ids), _VOLUME_BATCH):
        batch = ids[start : start + _VOLUME_BATCH]
        filters = [{"Name": "attachment.instance-id", "Values": batch}]
        for page in api.pages("DescribeVolumes", Filters=filters):
            for volume in page.get("Volumes", ()):
                for attachment in volume.get("Attachments", ()):
                    instance = str(attachment.get("InstanceId", ""))
                    root = wanted.get(instance)
                    if root is not None and (attachment.get("Device") == root or instance not in sizes):
                        sizes[instance] = int(volume.get("Size") or 0)
    return sizes


def described(
    provider: str,
    instance: Mapping[str, Any],
    type_sizes: Mapping[str, tuple[int, int]],
    disks: Mapping[str, int],
) -> ObservedServer | None:
    """An instance as ``describe`` reports it, owned or not; None for one that is not live."""
    tags = tags_of(instance)
    status = STATUS_BY_STATE.get(instance["State"]["Name"])
    if status is None:
        return None
    if tags.get(TAG_KEY) and tags.get(TAG_OWNER):
        return observed_from_instance(provider, instance, type_sizes)
    instance_id = str(instance["InstanceId"])
    flavor = str(instance["InstanceType"])
    cpus, memory = type_sizes.get(flavor, (0, 0))
    disk = to_int(tags.get(TAG_DISK)) or disks.get(instance_id, 0)
    addresses = tuple(a for a in (instance.get("PrivateIpAddress"), instance.get("PublicIpAddress")) if a)
    return ObservedServer(
        provider=provider,
        resource_id=instance_id,
        key=tags.get(TAG_KEY, ""),
        name=tags.get("Name") or instance_id,
        owner=tags.get(TAG_OWNER, ""),
        status=status,
        size=Size(cpus=cpus, memory_mb=memory, disk_gb=disk),
        image=str(instance.get("ImageId", "")),
        spec_hash=tags.get(TAG_SPEC_HASH, ""),
        generation=to_int(tags.get(TAG_GENERATION)),
        token=tags.get(TAG_TOKEN, ""),
        flavor=flavor,
        addresses=addresses,
        created_at=to_utc(instance.get("LaunchTime")),
        tags=user_tags({k: v for k, v in tags.items() if k != "Name"}),
        **read_guard_marks(tags),
    )


def describe_instances(api: AwsApi, resource_ids: Iterable[str]) -> list[dict[str, Any]]:
    """The live instances with these ids: a filter, so that an unknown id is no error."""
    ids = sorted(set(resource_ids))
    if not ids:
        return []
    found: list[dict[str, Any]] = []
    for start in range(0, len(ids), _VOLUME_BATCH):
        found += api.instances([{"Name": "instance-id", "Values": ids[start : start + _VOLUME_BATCH]}])
    return found


def _attached_volumes(api: AwsApi, instance_id: str) -> list[dict[str, Any]]:
    """The EBS volumes attached to an instance (one ``DescribeVolumes``, paged)."""
    filters = [{"Name": "attachment.instance-id", "Values": [instance_id]}]
    return [v for page in api.pages("DescribeVolumes", Filters=filters) for v in page.get("Volumes", ())]


def _tag_volumes(api: AwsApi, instance_id: str, request: AdoptRequest) -> None:
    """The volume marks of a launched instance on each volume that is this instance's alone."""
    marks = {TAG_OWNER: request.owner, TAG_KEY: request.key, TAG_CLUSTER: request.cluster,
             TAG_MEMBER: request.member}
    wanted = []
    for volume in _attached_volumes(api, instance_id):
        attached = {str(a.get("InstanceId", "")) for a in volume.get("Attachments", ())}
        tags = tags_of(volume)
        if attached != {instance_id} or tags.get(TAG_OWNER, request.owner) != request.owner:
            continue  # multi-attached, or another deployment's
        if any(tags.get(k) != v for k, v in marks.items()):
            wanted.append(str(volume["VolumeId"]))
    if wanted:
        api.call("CreateTags", Resources=sorted(wanted), Tags=tag_list(marks))


def adopt(
    api: AwsApi, server: ObservedServer, request: AdoptRequest, observe: Observe
) -> ObservedServer:
    """One CreateTags: our marks on the instance (see the module docstring); the instance after it."""
    instance = api.describe(server.resource_id)
    if instance is None:
        raise NotFoundError(f"instance {server.resource_id} is gone", code="Gone")
    tags = tags_of(instance)
    conflict = adoption_conflict(tags, request)
    if conflict is not None:
        raise PermanentError(
            f"instance {server.resource_id} cannot be adopted as {request.key}: {conflict}", code="NotOwned"
        )
    _tag_volumes(api, server.resource_id, request)
    marks = adoption_marks(request)
    if "Name" in tags:
        marks[TAG_AUTO_NAME] = "true"
    if server.size.disk_gb > 0:
        marks[TAG_DISK] = str(server.size.disk_gb)
    if server.created_at is not None:
        marks[TAG_CREATED_AT] = tags.get(TAG_CREATED_AT) or isoformat(server.created_at)
    api.call("CreateTags", Resources=[server.resource_id], Tags=tag_list(marks))
    instance["Tags"] = tag_list({**tags, **marks})
    observed = observe([instance])
    if not observed:
        raise NotFoundError(f"instance {server.resource_id} is no longer live", code="Gone")
    return observed[0]


def release(api: AwsApi, server: ObservedServer) -> None:
    """One DeleteTags of every mark of ours, if ``server.owner`` still owns the instance."""
    instance = api.describe(server.resource_id)
    if instance is None or not server.owner:
        return
    tags = tags_of(instance)
    if tags.get(TAG_OWNER) != server.owner:
        return
    ours = sorted(k for k in tags if k.startswith(TAG_PREFIX))
    api.call("DeleteTags", Resources=[server.resource_id], Tags=[{"Key": k} for k in ours])
    for volume in _attached_volumes(api, server.resource_id):
        marks = tags_of(volume)
        if marks.get(TAG_OWNER) == server.owner:
            keys = sorted(k for k in marks if k.startswith(TAG_PREFIX))
            api.call("DeleteTags", Resources=[str(volume["VolumeId"])], Tags=[{"Key": k} for k in keys])


def volumes_go_along(api: AwsApi, instance: Mapping[str, Any], owner: str, key: str) -> None:
    """Make the instance's own volumes that EC2 would keep go with it (see the module docstring)."""
    kept = {
        str(m["Ebs"]["VolumeId"]): str(m["DeviceName"])
        for m in instance.get("BlockDeviceMappings", ())
        if "Ebs" in m and m["Ebs"].get("DeleteOnTermination") is False and m["Ebs"].get("VolumeId")
    }
    if not kept:
        return
    instance_id = str(instance["InstanceId"])
    reply = api.call("DescribeVolumes", VolumeIds=sorted(kept))
    ours = []
    for volume in reply.get("Volumes", ()):
        tags = tags_of(volume)
        attached = {str(a.get("InstanceId", "")) for a in volume.get("Attachments", ())}
        if tags.get(TAG_OWNER) == owner and tags.get(TAG_KEY) == key and attached == {instance_id}:
            ours.append(kept[str(volume["VolumeId"])])
    if ours:
        api.call("ModifyInstanceAttribute", InstanceId=instance_id, BlockDeviceMappings=[
            {"DeviceName": device, "Ebs": {"DeleteOnTermination": True}} for device in sorted(ours)
        ])
