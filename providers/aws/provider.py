"""providers.aws.provider: Amazon EC2 (and EC2-compatible endpoints) as ``type: aws``.

Design decisions this module embodies:

* Ownership lives in instance tags (``reconciler.core.provider.ownership_tags``); observing is one
  ``DescribeInstances`` paginator filtered on the owner tag, 1000 per page, so 1,500
  servers cost two calls. Sizes come from a built-in instance type table (asking
  ``DescribeInstanceTypes`` only for types the table lacks); the root disk size is the one
  we asked for at creation, kept in a tag, so observing needs no volume calls. So is the
  creation time: EC2's ``LaunchTime`` moves on every start.
* Creates are idempotent twice over: ``RunInstances`` gets the deterministic ``ClientToken``
  and, because not every EC2-compatible endpoint honours it, we first look for an instance
  already carrying the ``reconciler:token`` tag.
* Every call goes through the provider's ``AwsApi`` (``providers.aws.api``), which counts
  it and turns botocore failures into the error tree: throttling, 5xx and connection
  trouble are ``TransientError`` (botocore's ``standard`` retry mode absorbs the short ones
  first), everything the cloud refuses is ``PermanentError`` carrying the AWS code and message.
* A create returns as soon as EC2 accepts the instance (``pending`` counts as running);
  an instance type change is stop → modify → start and only with ``allow_restart``; a
  delete waits (polling, bounded by ``wait_timeout``) until the instance is terminated.
* Backups are AMIs (CreateImage) for either backup method, EC2 having one restorable kind;
  a restore is the create path (same token lookup, tags and ClientToken) launched from the
  backup AMI, its root volume sized as the request says but never below the backed-up disk.
* Credentials come only from botocore's (boto3's) normal chain (environment, ``profile``,
  instance role); the spec schema has no place for a key.
* Usage counters for measured billing come from CloudWatch (``GetMetricData``, 500
  queries per call, on ``cloudwatch_endpoint_url`` or else the EC2 endpoint), summed over
  settled hours only so they never go down; a memo file in the state directory keeps the
  sums, so each sample reads only the hours since the last one. ``cloudwatch: false`` turns
  sampling off for an endpoint without CloudWatch. A type change that alters the vCPU count
  is recorded in a tag first, so past hours keep their own vCPU count.

This module holds the decisions. The botocore session, the clients, counted calls, pages
and state polls are ``providers.aws.api``; the pure parts — type table, error mapping, spec
schema, instance/image mapping — live in ``providers.aws.common``; the metric windows and
sums in ``providers.aws.metrics``; the memo in ``providers.aws.memo``.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, ClassVar

from providers.aws import adoption
from providers.aws.api import AwsApi
from providers.aws.common import (
    STATUS_BY_STATE,
    TAG_AUTO_NAME,
    TAG_CREATED_AT,
    TAG_DISK,
    TAG_IMAGE_ID,
    TAG_METHOD,
    TAG_RESOURCE_ID,
    TAG_RESTORED_FROM,
    TAG_TEMPLATE_IMAGE,
    TAG_VCPUS,
    AwsSettings,
    backing_snapshots,
    image_name,
    instance_type_for,
    observed_from_instance,
    root_volume_gb,
    snapshot_from_image,
    tag_list,
    tags_of,
)
from providers.aws.memo import Memo, memo_path
from providers.aws.metrics import Reading, VcpuHistory, settled_end, target_of
from providers.aws.spec import CAPABILITIES, INSTANCE_TYPES, SPEC_SCHEMA, USER_DATA_LIMIT
from reconciler.core.clock import isoformat
from reconciler.core.errors import NotFoundError, PermanentError, TransientError
from reconciler.core.model import (
    GUARD_TAGS,
    TAG_CLUSTER,
    TAG_KEY,
    TAG_MEMBER,
    TAG_OWNER,
    TAG_POLICY,
    TAG_PREFIX,
    TAG_TAKEN_AT,
    TAG_TOKEN,
    CreateRequest,
    MetricSample,
    ObservedServer,
    ProviderConfig,
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
    ownership_tags,
    register,
    user_tags,
)


@register("aws")
class AwsProvider(Provider):
    """EC2 instances, tagged with our ownership marks; backups are AMIs (CreateImage)."""

    capabilities: ClassVar[Capabilities] = CAPABILITIES
    spec_schema: ClassVar[dict[str, Any]] = SPEC_SCHEMA

    def __init__(self, config: ProviderConfig, context: ProviderContext) -> None:
        super().__init__(config, context)
        self.settings = AwsSettings.from_spec(config.name, config.spec)
        self.api = AwsApi(self.settings, max_parallel=config.max_parallel, count_call=self.count_call,
                          clock=context.clock)
        self._memo: Memo | None = None
        self._lock = threading.Lock()
        self._vcpu_tags: dict[str, str] = {}  # instance id → its TAG_VCPUS ("" for none), as last seen
        self._root_devices: dict[str, str] = {}
        self._type_sizes: dict[str, tuple[int, int]] = dict(INSTANCE_TYPES)

    # --- reads the decisions share -------------------------------------------------------
    def _owned(self, server: ObservedServer) -> dict[str, Any]:
        """The live instance behind ``server``, refusing one that is gone or not ours."""
        instance = self.api.describe(server.resource_id)
        if instance is None:
            raise NotFoundError(f"instance {server.resource_id} ({server.key}) is gone", code="Gone")
        owner = tags_of(instance).get(TAG_OWNER)
        if owner != server.owner:
            raise PermanentError(
                f"instance {server.resource_id} is owned by {owner or 'nobody'}, not {server.owner}; "
                "the reconciler leaves it alone",
                code="NotOwned",
            )
        return instance

    def _sizes(self, instance_types: Iterable[str]) -> None:
        """Learn (vCPUs, MiB) of types missing from the table; one DescribeInstanceTypes per 100."""
        missing = sorted(set(instance_types) - set(self._type_sizes))
        for start in range(0, len(missing), 100):
            batch = missing[start:start + 100]
            self._type_sizes.update(dict.fromkeys(batch, (0, 0)))  # unknown unless the call says otherwise
            try:
                reply = self.api.call("DescribeInstanceTypes", InstanceTypes=batch)
            except PermanentError:
                continue  # an endpoint without the call, or an unknown type: size stays unknown
            for info in reply.get("InstanceTypes", ()):
                self._type_sizes[info["InstanceType"]] = (
                    int(info["VCpuInfo"]["DefaultVCpus"]), int(info["MemoryInfo"]["SizeInMiB"])
                )

    def _all_observed(self, instances: list[dict[str, Any]]) -> list[ObservedServer]:
        self._sizes(i["InstanceType"] for i in instances)
        self._vcpu_tags.update({str(i["InstanceId"]): tags_of(i).get(TAG_VCPUS, "") for i in instances})
        found = (observed_from_instance(self.name, i, self._type_sizes) for i in instances)
        return sorted((s for s in found if s is not None), key=lambda s: (s.key, s.generation, s.resource_id))

    def _root_device(self, image: str) -> str:
        """The AMI's root device name (also proves the AMI exists); cached per image."""
        if image not in self._root_devices:
            reply = self.api.call("DescribeImages", ImageIds=[image])
            images = reply.get("Images") or []
            if not images:
                raise PermanentError(f"DescribeImages: no image {image}", code="InvalidAMIID.NotFound")
            self._root_devices[image] = str(images[0].get("RootDeviceName") or "/dev/xvda")
        return self._root_devices[image]

    # --- the contract --------------------------------------------------------------------
    def flavor_for(self, size: Size) -> str | None:
        """The smallest instance type that fits ``size``: what create picks when no flavor is named."""
        return instance_type_for(size, self.settings.instance_families)

    def observe(self, owner: str) -> list[ObservedServer]:
        return self._all_observed(self.api.instances([{"Name": f"tag:{TAG_OWNER}", "Values": [owner]}]))

    def lookup(self, owner: str, token: str) -> ObservedServer | None:
        # The token (unique per owner, key, spec and generation) first: the most selective filter.
        found = self._all_observed(self.api.instances([
            {"Name": f"tag:{TAG_TOKEN}", "Values": [token]},
            {"Name": f"tag:{TAG_OWNER}", "Values": [owner]},
        ]))
        return min(found, key=lambda s: (s.created_at or datetime.max.replace(tzinfo=UTC), s.resource_id),
                   default=None)

    # --- taking over (providers.aws.adoption) --------------------------------------------
    def _described(self, instances: list[dict[str, Any]]) -> list[ObservedServer]:
        self._sizes(i["InstanceType"] for i in instances)
        disks = adoption.root_disks(self.api, instances)
        found = (adoption.described(self.name, i, self._type_sizes, disks) for i in instances)
        return sorted((s for s in found if s is not None), key=lambda s: (s.name, s.resource_id))

    def describe(self, resource_ids: Sequence[str]) -> list[ObservedServer]:
        return self._described(adoption.describe_instances(self.api, resource_ids))

    def list_unowned(self) -> list[ObservedServer]:
        return self._described([i for i in self.api.instances([]) if TAG_OWNER not in tags_of(i)])

    def adopt(self, server: ObservedServer, request: AdoptRequest) -> ObservedServer:
        return adoption.adopt(self.api, server, request, self._all_observed)

    def release(self, server: ObservedServer) -> None:
        adoption.release(self.api, server)

    def create(self, request: CreateRequest) -> ObservedServer:
        existing = self.lookup(request.owner, request.token)
        if existing is not None:
            return existing
        return self._launch(request, request.image, self._root_device(request.image))

    def create_from_snapshot(self, request: CreateRequest, snapshot: Snapshot) -> ObservedServer:
        """RunInstances from the backup AMI: a server of ``request.size`` (the root volume as
        large as asked, never smaller than the backed-up server's), marked and idempotent by
        token exactly like ``create``. The instance remembers the template's image in a tag, so
        the engine sees the image it asked for rather than the backup AMI."""
        existing = self.lookup(request.owner, request.token)
        if existing is not None:
            return existing  # also after the backup itself was deleted
        image = self._backup_image(request, snapshot)
        needed = root_volume_gb(image)
        if request.size.disk_gb > 0 and request.size.disk_gb < needed:
            raise PermanentError(
                f"{request.key}: backup {snapshot.snapshot_id} holds a {needed} GB root disk; a restore "
                f"onto {request.size.disk_gb} GB cannot hold it (ask for at least {needed} GB)",
                code="DiskTooSmallForBackup",
            )
        marks = {TAG_RESTORED_FROM: snapshot.snapshot_id, TAG_TEMPLATE_IMAGE: request.image}
        root_device = str(image.get("RootDeviceName") or "/dev/xvda")
        return self._launch(request, snapshot.snapshot_id, root_device, marks=marks, own_root=True)

    def _backup_image(self, request: CreateRequest, snapshot: Snapshot) -> dict[str, Any]:
        """The backup AMI behind ``snapshot``, refusing one that is gone, not ours or not ready."""
        try:
            reply = self.api.call("DescribeImages", not_found=True, ImageIds=[snapshot.snapshot_id])
        except NotFoundError:
            reply = {}
        images = [i for i in reply.get("Images") or () if i.get("State") != "deregistered"]
        if not images:
            raise NotFoundError(
                f"{request.key}: backup {snapshot.snapshot_id} ({snapshot.name}) no longer exists; "
                "nothing to restore from",
                code="InvalidAMIID.NotFound",
            )
        image = dict(images[0])
        owner = tags_of(image).get(TAG_OWNER)
        if owner != request.owner:
            raise PermanentError(
                f"{request.key}: image {snapshot.snapshot_id} is owned by {owner or 'nobody'}, not "
                f"{request.owner}; only the deployment's own backups are restored",
                code="NotOwned",
            )
        state = str(image.get("State", "available"))
        if state == "pending":
            raise TransientError(
                f"{request.key}: backup {snapshot.snapshot_id} is still being made (pending)",
                code="ImagePending",
            )
        if state != "available":
            raise PermanentError(
                f"{request.key}: backup {snapshot.snapshot_id} is {state} and cannot be restored",
                code="ImageNotAvailable",
            )
        return image

    def _launch(
        self,
        request: CreateRequest,
        image: str,
        root_device: str,
        *,
        marks: Mapping[str, str] | None = None,
        own_root: bool = False,
    ) -> ObservedServer:
        """RunInstances for ``request`` from ``image``: the shared body of create and restore.

        ``marks`` are extra tags of ours for the instance; ``own_root`` maps the root volume
        (deleted with the instance) even when the request gives no disk size, rather than
        keeping whatever the image's mapping says.
        """
        if len(request.user_data.encode()) > USER_DATA_LIMIT:
            raise PermanentError(
                f"{request.key}: rendered boot scripts are {len(request.user_data.encode())} bytes; "
                f"EC2 user data holds at most {USER_DATA_LIMIT}",
                code="UserDataTooLarge",
            )
        instance_type = request.flavor or instance_type_for(request.size, self.settings.instance_families)
        tags = ownership_tags(request)
        if "Name" not in tags:
            tags.update({"Name": request.name, TAG_AUTO_NAME: "true"})
        if request.size.disk_gb > 0:
            tags[TAG_DISK] = str(request.size.disk_gb)
        tags[TAG_CREATED_AT] = isoformat(self.context.clock.now())
        tags.update(marks or {})
        volume_tags = {k: tags[k] for k in (TAG_OWNER, TAG_KEY, TAG_CLUSTER, TAG_MEMBER)}
        params: dict[str, Any] = {
            "ImageId": image,
            "InstanceType": instance_type,
            "MinCount": 1,
            "MaxCount": 1,
            "ClientToken": request.token,
            "TagSpecifications": [
                {"ResourceType": "instance", "Tags": tag_list(tags)},
                {"ResourceType": "volume", "Tags": tag_list(volume_tags)},
            ],
        }
        if request.size.disk_gb > 0 or own_root:
            ebs: dict[str, Any] = {"DeleteOnTermination": True}
            if request.size.disk_gb > 0:
                ebs["VolumeSize"] = request.size.disk_gb
            params["BlockDeviceMappings"] = [{"DeviceName": root_device, "Ebs": ebs}]
        if request.user_data:
            params["UserData"] = request.user_data  # botocore base64-encodes it
        if self.settings.subnet_id:
            params["SubnetId"] = self.settings.subnet_id
        if self.settings.security_group_ids:
            params["SecurityGroupIds"] = list(self.settings.security_group_ids)
        if self.settings.key_name:
            params["KeyName"] = self.settings.key_name
        reply = self.api.call("RunInstances", **params)
        instance = dict(reply["Instances"][0])
        if instance["State"]["Name"] not in STATUS_BY_STATE:
            raise PermanentError(
                f"{request.key}: token {request.token} belongs to instance {instance['InstanceId']}, "
                f"which is {instance['State']['Name']}; a new generation is needed",
                code="IdempotentInstanceTerminated",
            )
        instance.setdefault("Tags", tag_list(tags))
        observed = self._all_observed([instance])
        if not observed:
            raise PermanentError(f"{request.key}: RunInstances returned an instance without our tags")
        return observed[0]

    def update(self, server: ObservedServer, request: UpdateRequest) -> ObservedServer:
        instance = self._owned(server)
        wanted = request.flavor or instance_type_for(request.size, self.settings.instance_families)
        if server.size.disk_gb and request.size.disk_gb != server.size.disk_gb:
            raise PermanentError(
                f"{server.key}: the root disk cannot change in place ({server.size.disk_gb} → "
                f"{request.size.disk_gb} GB)",
                code="DiskChangeNeedsReplace",
            )
        if wanted != instance["InstanceType"]:
            if not request.allow_restart:
                raise PermanentError(
                    f"{server.key}: changing {instance['InstanceType']} to {wanted} needs a stop and start, "
                    "which this member does not allow",
                    code="RestartNotAllowed",
                )
            instance = self._change_type(instance, wanted)
        instance["Tags"] = tag_list(self._retag(instance, request, server.name))
        observed = self._all_observed([instance])
        if not observed:
            raise NotFoundError(f"instance {server.resource_id} lost its ownership tags", code="Gone")
        return observed[0]

    def _change_type(self, instance: dict[str, Any], instance_type: str) -> dict[str, Any]:
        """Stop → ModifyInstanceAttribute → start (only if it was running).

        A change of vCPU count is recorded in ``TAG_VCPUS`` first: metrics weigh each hour's
        CPU use by the vCPUs of that hour, and an unrecorded change would re-weigh past hours.
        """
        instance_id = str(instance["InstanceId"])
        self._record_vcpus(instance, instance_type)
        state = instance["State"]["Name"]
        was_running = state in ("pending", "running")
        if state == "pending":
            self.api.wait(instance_id, ("running",))
        if state != "stopped":
            self.api.call("StopInstances", not_found=True, InstanceIds=[instance_id])
            self.api.wait(instance_id, ("stopped",))
        try:
            self.api.call("ModifyInstanceAttribute", not_found=True, InstanceId=instance_id,
                       InstanceType={"Value": instance_type})
        finally:
            if was_running:
                self.api.call("StartInstances", not_found=True, InstanceIds=[instance_id])
        return self.api.wait(instance_id, ("running",) if was_running else ("stopped",))

    def _record_vcpus(self, instance: Mapping[str, Any], instance_type: str) -> None:
        """Append the new vCPU count to the instance's ``TAG_VCPUS`` when it changes (one CreateTags)."""
        self._sizes([instance["InstanceType"], instance_type])
        before, after = self._type_sizes[instance["InstanceType"]][0], self._type_sizes[instance_type][0]
        if before == after or not (before and after):
            return
        tags = tags_of(instance)
        history = VcpuHistory.parse(tags.get(TAG_VCPUS)) or VcpuHistory(before)
        value = history.changed(self.context.clock.now(), after).render()
        self.api.call("CreateTags", Resources=[instance["InstanceId"]], Tags=tag_list({TAG_VCPUS: value}))
        self._vcpu_tags[str(instance["InstanceId"])] = value

    def _retag(self, instance: Mapping[str, Any], request: UpdateRequest, name: str) -> dict[str, str]:
        """Make the instance's user tags and guard marks equal ``request``'s (the Name tag
        defaults to ours): one CreateTags for what changed, one DeleteTags for what went."""
        tags = tags_of(instance)
        auto_name = tags.get(TAG_AUTO_NAME) == "true"
        current = {k: v for k, v in user_tags(tags) if not (auto_name and k == "Name")}
        current.update((k, tags[k]) for k in GUARD_TAGS if k in tags)
        desired = {k: v for k, v in request.tags if not k.startswith(TAG_PREFIX)}
        desired.update(guard_marks(request.protect, request.backup_policy))
        to_set = {k: v for k, v in desired.items() if current.get(k) != v}
        to_delete = [k for k in current if k not in desired]
        if "Name" in desired and auto_name:
            to_delete.append(TAG_AUTO_NAME)
        elif "Name" not in desired and not auto_name:
            to_delete = [k for k in to_delete if k != "Name"]
            to_set.update({"Name": name, TAG_AUTO_NAME: "true"})
        if to_set:
            self.api.call("CreateTags", Resources=[instance["InstanceId"]], Tags=tag_list(to_set))
        if to_delete:
            keys = [{"Key": k} for k in sorted(to_delete)]
            self.api.call("DeleteTags", Resources=[instance["InstanceId"]], Tags=keys)
        tags.update(to_set)
        return {k: v for k, v in tags.items() if k not in to_delete}

    def delete(self, server: ObservedServer) -> None:
        try:
            instance = self._owned(server)
        except NotFoundError:
            return
        if instance["State"]["Name"] != "shutting-down":
            adoption.volumes_go_along(self.api, instance, server.owner, server.key)
            try:
                self.api.call("TerminateInstances", not_found=True, InstanceIds=[server.resource_id])
            except NotFoundError:
                return
        self.api.wait(server.resource_id, ("terminated",), gone_ok=True)

    def start(self, server: ObservedServer) -> ObservedServer:
        return self._power(server, "StartInstances", "running")

    def stop(self, server: ObservedServer) -> ObservedServer:
        return self._power(server, "StopInstances", "stopped")

    def _power(self, server: ObservedServer, operation: str, state: str) -> ObservedServer:
        instance = self._owned(server)
        if instance["State"]["Name"] != state:
            self.api.call(operation, not_found=True, InstanceIds=[server.resource_id])
            instance = self.api.wait(server.resource_id, (state,))
        observed = self._all_observed([instance])
        if not observed:
            raise NotFoundError(f"instance {server.resource_id} lost its ownership tags", code="Gone")
        return observed[0]

    # --- backups -------------------------------------------------------------------------
    def snapshot(self, server: ObservedServer, request: SnapshotRequest) -> Snapshot:
        """An AMI of the server (CreateImage, NoReboot); a retry finds the image by name.

        EC2 has one restorable kind of backup, the AMI, so both ``BackupMethod`` values take
        one and the same way; the method asked for is recorded in the ``TAG_METHOD`` tag. The
        server's root disk size goes in ``TAG_DISK``: the least a restore may ask for.
        """
        name = image_name(request.name)
        existing = self.api.images([
            {"Name": "name", "Values": [name]}, {"Name": f"tag:{TAG_OWNER}", "Values": [server.owner]}
        ])
        if existing:
            return snapshot_from_image(self.name, existing[0], self.context.clock.now())
        self._owned(server)
        tags = {k: v for k, v in request.tags if not k.startswith(TAG_PREFIX)}
        tags.update({
            "Name": name, TAG_OWNER: server.owner, TAG_KEY: server.key, TAG_CLUSTER: server.cluster,
            TAG_RESOURCE_ID: server.resource_id, TAG_TAKEN_AT: isoformat(self.context.clock.now()),
        })
        tags[TAG_METHOD] = request.method.value
        if server.size.disk_gb > 0:
            tags[TAG_DISK] = str(server.size.disk_gb)
        if request.policy:
            tags[TAG_POLICY] = request.policy
        reply = self.api.call(
            "CreateImage", InstanceId=server.resource_id, Name=name, NoReboot=True,
            Description=f"reconciler backup of {server.key}",
            TagSpecifications=[{"ResourceType": "image", "Tags": tag_list(tags)}],
        )
        image_id = str(reply["ImageId"])
        images = self.api.call("DescribeImages", ImageIds=[image_id]).get("Images") or [
            {"ImageId": image_id, "Name": name, "State": "pending", "Tags": tag_list(tags)}
        ]
        snapshot_ids = backing_snapshots(images[0])
        if snapshot_ids:  # best effort: a pending image may not name its snapshots yet
            snapshot_tags = {k: tags[k] for k in (TAG_OWNER, TAG_KEY, TAG_TAKEN_AT)}
            snapshot_tags[TAG_IMAGE_ID] = image_id
            self.api.call("CreateTags", Resources=snapshot_ids, Tags=tag_list(snapshot_tags))
        return snapshot_from_image(self.name, images[0], self.context.clock.now())

    def list_snapshots(self, owner: str) -> list[Snapshot]:
        images = self.api.images([{"Name": f"tag:{TAG_OWNER}", "Values": [owner]}])
        now = self.context.clock.now()
        found = (snapshot_from_image(self.name, i, now) for i in images)
        return sorted(found, key=lambda s: (s.key, s.created_at, s.snapshot_id))

    def delete_snapshot(self, snapshot: Snapshot) -> None:
        """Deregister the AMI, then delete its EBS snapshots (also ones a crash left behind)."""
        try:
            reply = self.api.call("DescribeImages", not_found=True, ImageIds=[snapshot.snapshot_id])
            images = reply.get("Images") or []
        except NotFoundError:
            images = []
        snapshot_ids = set(backing_snapshots(images[0])) if images else set()
        if images:
            owner = tags_of(images[0]).get(TAG_OWNER)
            if owner != snapshot.owner:
                raise PermanentError(
                    f"image {snapshot.snapshot_id} is owned by {owner or 'nobody'}, not {snapshot.owner}",
                    code="NotOwned",
                )
        leftovers = self.api.call("DescribeSnapshots", OwnerIds=["self"], Filters=[
            {"Name": f"tag:{TAG_IMAGE_ID}", "Values": [snapshot.snapshot_id]},
            {"Name": f"tag:{TAG_OWNER}", "Values": [snapshot.owner]},
        ])
        snapshot_ids.update(s["SnapshotId"] for s in leftovers.get("Snapshots", ()))
        if images:
            try:
                self.api.call("DeregisterImage", not_found=True, ImageId=snapshot.snapshot_id)
            except NotFoundError:
                pass
        for snapshot_id in sorted(snapshot_ids):
            try:
                self.api.call("DeleteSnapshot", not_found=True, SnapshotId=snapshot_id)
            except NotFoundError:
                pass

    # --- usage ---------------------------------------------------------------------------
    @property
    def reports_metrics(self) -> bool:
        return self.settings.cloudwatch

    def metrics(self, servers: list[ObservedServer]) -> list[MetricSample]:
        """Cumulative CPU seconds and network bytes per server from CloudWatch, up to the end of
        the last settled hour (see ``providers.aws.metrics``). The memo holds each instance's sums
        so far, so only the hours after them are read: about 3 calls per 500 servers."""
        if not servers or not self.settings.cloudwatch:
            return []
        now = self.context.clock.now()
        end = settled_end(now)
        memo = self._metrics_memo()
        known = memo.read(s.resource_id for s in servers)
        behind = {s.resource_id for s in servers if s.resource_id not in known
                  or known[s.resource_id].through < end}
        unseen = sorted(behind - set(self._vcpu_tags))
        for first in range(0, len(unseen), 200):  # servers observed by another provider object
            chunk = unseen[first:first + 200]
            self._all_observed(self.api.instances([{"Name": "instance-id", "Values": chunk}]))
        found = (target_of(s, end, now, self._vcpu_tags.get(s.resource_id), known.get(s.resource_id))
                 for s in servers)
        reading = Reading([t for t in found if t is not None], end)
        try:
            reading.read(lambda **params: self.api.cloudwatch_call("GetMetricData", **params))
        finally:  # the sums of every server whose queries were all answered, even on a failure
            memo.write(reading.memo_rows(), seen=now)
        return reading.samples(self.name)

    def _metrics_memo(self) -> Memo:
        with self._lock:
            if self._memo is None:
                self._memo = Memo(memo_path(self.context.state_dir, self.name))
            return self._memo

    def close(self) -> None:
        self.api.close()
        with self._lock:
            if self._memo is not None:
                self._memo.close()
