"""providers.aws.common: the EC2 provider's tables and translations, kept apart from its API calls.

What lives here is pure (no network): the rule that picks the smallest instance type fitting
a size (from ``spec``'s table), the mapping of botocore failures onto the error tree, a
Provider spec's typed settings (its schema is ``spec``'s), and the mapping of EC2 instances
and images onto ``ObservedServer`` and ``Snapshot``. ``providers.aws.provider`` holds the provider class
that talks to EC2.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as BotoConnectionError
from botocore.parsers import ResponseParserError

from providers.aws.spec import DEFAULT_FAMILIES, FAMILIES, INSTANCE_TYPES
from reconciler.core.clock import parse_timestamp
from reconciler.core.errors import NotFoundError, PermanentError, ProviderError, TransientError, UserError
from reconciler.core.model import (
    TAG_BACKUP_METHOD,
    TAG_GENERATION,
    TAG_KEY,
    TAG_OWNER,
    TAG_POLICY,
    TAG_SPEC_HASH,
    TAG_TAKEN_AT,
    TAG_TOKEN,
    ObservedServer,
    ServerStatus,
    Size,
    Snapshot,
    server_name,
)
from reconciler.core.provider import read_guard_marks, user_tags

# Marks of our own, beside the shared ones (the ``reconciler:`` prefix keeps them out of user tags).
TAG_AUTO_NAME = "reconciler:auto-name"  # "true" when we set the Name tag ourselves
# On instances: the root volume size asked for at creation; on backup images: that of the
# instance backed up (the least a restore may ask for).
TAG_DISK = "reconciler:disk-gb"
TAG_RESOURCE_ID = "reconciler:resource-id"  # on images: the instance a backup was taken of
TAG_IMAGE_ID = "reconciler:image-id"  # on EBS snapshots: the image they back
TAG_METHOD = TAG_BACKUP_METHOD  # on images: the policy's BackupMethod (both are AMIs)
TAG_RESTORED_FROM = "reconciler:restored-from"  # on restored instances: the backup AMI
# On restored instances: the template's image. EC2 reports the backup AMI as their ImageId;
# the engine compares the template's image, so observing reports this one instead.
TAG_TEMPLATE_IMAGE = "reconciler:template-image"
# On instances: when we launched it, by the reconciler's clock. EC2's LaunchTime moves on
# every start (a quiesced backup restarts the server), so it is only the fallback.
TAG_CREATED_AT = "reconciler:created-at"
# On instances whose instance type changed to one of another vCPU count: which count held
# from which hour (see ``providers.aws.metrics``), so CPU seconds stay right for past hours.
TAG_VCPUS = "reconciler:vcpus"

LIVE_STATES = ("pending", "running", "stopping", "stopped")
# A pending instance is one EC2 has accepted and is booting: "running" as far as the engine
# is concerned (a create returns it at once, without waiting). Shutting-down and terminated
# instances are gone.
STATUS_BY_STATE = {
    "pending": ServerStatus.RUNNING,
    "running": ServerStatus.RUNNING,
    "stopping": ServerStatus.STOPPED,
    "stopped": ServerStatus.STOPPED,
}

# --- instance types --------------------------------------------------------------------
def instance_type_for(size: Size, families: Iterable[str] = DEFAULT_FAMILIES) -> str:
    """The smallest instance type of ``families`` with at least ``size``'s vCPUs and memory.

    "Smallest" orders by vCPUs, then memory, then the order of ``families``.
    """
    order = {family: rank for rank, family in enumerate(families)}
    fitting = [
        (cpus, memory, order[name.split(".")[0]], name)
        for name, (cpus, memory) in INSTANCE_TYPES.items()
        if name.split(".")[0] in order and cpus >= size.cpus and memory >= size.memory_mb
    ]
    if not fitting:
        raise PermanentError(
            f"no instance type of {', '.join(order)} has {size.cpus} vCPUs and {size.memory_mb} MB; "
            "name one with flavor.aws in the template",
            code="NoInstanceTypeFits",
        )
    return min(fitting)[3]


# --- errors ----------------------------------------------------------------------------
_TRANSIENT_CODES = frozenset({
    "RequestLimitExceeded", "Throttling", "ThrottlingException", "RequestThrottled",
    "RequestThrottledException", "TooManyRequestsException", "InternalError", "InternalFailure",
    "ServiceUnavailable", "Unavailable", "RequestTimeout", "RequestTimeoutException",
})
# Server-side (5xx) codes that retrying in a loop will not fix.
_PERMANENT_CODES = frozenset({
    "InsufficientInstanceCapacity", "InsufficientCapacity", "InsufficientHostCapacity",
    "InsufficientAddressCapacity", "InsufficientVolumeCapacity", "InsufficientReservedInstanceCapacity",
})


def translate_error(exc: Exception, operation: str, *, not_found: bool = False) -> ProviderError:
    """Map a botocore failure to TransientError / PermanentError (NotFoundError if ``not_found``)."""
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code") or "Unknown")
        message = f"{operation}: {code}: {error.get('Message') or exc}"
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
        if code in _PERMANENT_CODES:
            return PermanentError(message, code=code)
        if code in _TRANSIENT_CODES or status >= 500:
            return TransientError(message, code=code)
        if not_found and (code.endswith(".NotFound") or code == "InvalidAMIID.Unavailable"):
            return NotFoundError(message, code=code)
        return PermanentError(message, code=code)
    if isinstance(exc, BotoConnectionError | HTTPClientError | ResponseParserError):
        return TransientError(f"{operation}: {exc}", code=type(exc).__name__)
    if isinstance(exc, BotoCoreError):
        hint = ""
        if type(exc).__name__ in ("NoCredentialsError", "PartialCredentialsError", "ProfileNotFound"):
            hint = " (credentials come from AWS_* environment variables, the profile, or an instance role)"
        return PermanentError(f"{operation}: {exc}{hint}", code=type(exc).__name__)
    return PermanentError(f"{operation}: {exc}", code=type(exc).__name__)


# --- settings --------------------------------------------------------------------------
@dataclass(frozen=True)
class AwsSettings:
    """A ``type: aws`` Provider's spec, read once."""

    region: str
    endpoint_url: str | None = None
    profile: str | None = None
    subnet_id: str | None = None
    security_group_ids: tuple[str, ...] = ()
    key_name: str | None = None
    instance_families: tuple[str, ...] = DEFAULT_FAMILIES
    max_attempts: int = 3  # botocore standard-mode attempts per call, before our own retries
    page_size: int = 1000  # MaxResults of listing calls (EC2 allows 5–1000)
    poll_interval: float = 5.0  # seconds between state checks while waiting
    wait_timeout: float = 600.0  # seconds to wait for a stop, start or termination
    cloudwatch: bool = True  # metrics() reads CloudWatch; False: no samples (instance-hours only)
    cloudwatch_endpoint_url: str | None = None  # None: endpoint_url (or AWS's own)

    @classmethod
    def from_spec(cls, name: str, spec: Mapping[str, Any]) -> AwsSettings:
        def text(field: str) -> str | None:
            value = spec.get(field)
            if value is not None and (not isinstance(value, str) or not value):
                raise UserError(f"provider {name}: spec.{field} must be a non-empty string")
            return value

        def number(field: str, default: float) -> float:
            value = spec.get(field, default)
            if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
                raise UserError(f"provider {name}: spec.{field} must be a positive number")
            return float(value)

        def strings(field: str, default: tuple[str, ...]) -> tuple[str, ...]:
            value = spec.get(field, list(default))
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise UserError(f"provider {name}: spec.{field} must be a list of strings")
            return tuple(value)

        def flag(field: str, default: bool) -> bool:
            value = spec.get(field, default)
            if not isinstance(value, bool):
                raise UserError(f"provider {name}: spec.{field} must be true or false")
            return value

        region = text("region")
        if region is None:
            raise UserError(f"provider {name}: spec.region is required for type aws (e.g. us-east-1)")
        families = strings("instance_families", DEFAULT_FAMILIES)
        unknown = sorted(set(families) - set(FAMILIES))
        if unknown or not families:
            raise UserError(
                f"provider {name}: spec.instance_families: unknown {', '.join(unknown) or '(empty)'}; "
                f"choose from {', '.join(FAMILIES)}"
            )
        return cls(
            region=region,
            endpoint_url=text("endpoint_url"),
            profile=text("profile"),
            subnet_id=text("subnet_id"),
            security_group_ids=strings("security_group_ids", ()),
            key_name=text("key_name"),
            instance_families=families,
            max_attempts=int(number("max_attempts", 3)),
            page_size=min(1000, max(5, int(number("page_size", 1000)))),
            poll_interval=number("poll_interval", 5.0),
            wait_timeout=number("wait_timeout", 600.0),
            cloudwatch=flag("cloudwatch", True),
            cloudwatch_endpoint_url=text("cloudwatch_endpoint_url"),
        )


def tags_of(resource: Mapping[str, Any]) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in resource.get("Tags") or ()}


def tag_list(tags: Mapping[str, str]) -> list[dict[str, str]]:
    return [{"Key": k, "Value": v} for k, v in sorted(tags.items())]


def to_int(text: str | None) -> int:
    return int(text) if text and text.isdigit() else 0


def to_utc(moment: Any) -> datetime | None:
    return moment.astimezone(UTC) if isinstance(moment, datetime) else None


def method_name(operation: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in operation).lstrip("_")


def backing_snapshots(image: Mapping[str, Any]) -> list[str]:
    mappings = image.get("BlockDeviceMappings") or ()
    return [m["Ebs"]["SnapshotId"] for m in mappings if m.get("Ebs", {}).get("SnapshotId")]


def root_volume_gb(image: Mapping[str, Any]) -> int:
    """The size of an image's root volume: what a server launched from it needs at least.

    Our backup images carry the backed-up instance's root disk in ``TAG_DISK``; other images
    (or ours taken of an instance of unknown disk) answer from their root block device mapping.
    """
    recorded = to_int(tags_of(image).get(TAG_DISK))
    if recorded:
        return recorded
    root = image.get("RootDeviceName")
    for mapping in image.get("BlockDeviceMappings") or ():
        if mapping.get("DeviceName") == root and "Ebs" in mapping:
            return int(mapping["Ebs"].get("VolumeSize") or 0)
    return 0


def image_name(name: str) -> str:
    """An AMI name: 3–128 characters of letters, digits and ( ) [ ] . / - ' @ _."""
    allowed = "()[]./-'@_"
    cleaned = "".join(c if c.isascii() and (c.isalnum() or c in allowed) else "-" for c in name)
    return cleaned[:128].ljust(3, "-")


def _created_at(tags: Mapping[str, str]) -> datetime | None:
    try:
        return parse_timestamp(tags[TAG_CREATED_AT])
    except (KeyError, UserError):
        return None


def observed_from_instance(
    provider: str, instance: Mapping[str, Any], type_sizes: Mapping[str, tuple[int, int]]
) -> ObservedServer | None:
    """An owned EC2 instance as an ObservedServer; None for one without our key tag or not live."""
    tags = tags_of(instance)
    key = tags.get(TAG_KEY)
    status = STATUS_BY_STATE.get(instance["State"]["Name"])
    if key is None or status is None:
        return None
    generation = to_int(tags.get(TAG_GENERATION))
    auto_name = tags.get(TAG_AUTO_NAME) == "true"
    visible = {k: v for k, v in tags.items() if not (auto_name and k == "Name")}
    flavor = str(instance["InstanceType"])
    cpus, memory = type_sizes.get(flavor, (0, 0))
    disk = to_int(tags.get(TAG_DISK))
    addresses = tuple(a for a in (instance.get("PrivateIpAddress"), instance.get("PublicIpAddress")) if a)
    return ObservedServer(
        provider=provider,
        resource_id=str(instance["InstanceId"]),
        key=key,
        name=tags["Name"] if auto_name and "Name" in tags else server_name(key, generation),
        owner=tags.get(TAG_OWNER, ""),
        status=status,
        size=Size(cpus=cpus, memory_mb=memory, disk_gb=disk),
        image=tags.get(TAG_TEMPLATE_IMAGE) or str(instance.get("ImageId", "")),
        spec_hash=tags.get(TAG_SPEC_HASH, ""),
        generation=generation,
        token=tags.get(TAG_TOKEN, ""),
        flavor=flavor,
        addresses=addresses,
        created_at=_created_at(tags) or to_utc(instance.get("LaunchTime")),
        tags=user_tags(visible),
        **read_guard_marks(tags),
    )


def snapshot_from_image(provider: str, image: Mapping[str, Any], now: datetime) -> Snapshot:
    """One of our backup AMIs as a Snapshot (taken-at from its tag, else its CreationDate)."""
    tags = tags_of(image)
    try:
        created = parse_timestamp(tags.get(TAG_TAKEN_AT) or str(image.get("CreationDate")))
    except UserError:
        created = now
    mappings = image.get("BlockDeviceMappings") or ()
    size = sum(int(m["Ebs"].get("VolumeSize", 0)) for m in mappings if "Ebs" in m)
    return Snapshot(
        provider=provider,
        snapshot_id=str(image["ImageId"]),
        resource_id=tags.get(TAG_RESOURCE_ID, str(image.get("SourceInstanceId", ""))),
        key=tags.get(TAG_KEY, ""),
        owner=tags.get(TAG_OWNER, ""),
        name=str(image.get("Name", "")),
        created_at=created,
        size_gb=float(size),
        policy=tags.get(TAG_POLICY),
        status=str(image.get("State", "available")),
    )
