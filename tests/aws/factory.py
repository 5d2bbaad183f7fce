"""tests.aws.factory: small builders for the AWS provider tests (requests, providers, a fixed clock)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from providers.aws.provider import AwsProvider
from reconciler.core.clock import Clock
from reconciler.core.model import CreateRequest, ProviderConfig, Size, idempotency_token, server_name
from reconciler.core.provider import ProviderContext
from tests.aws.motoserver import AMI, REGION

NOW = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)
OWNER = "shop-prod"
SMALL = Size(cpus=2, memory_mb=1024, disk_gb=10)


def make_provider(url: str, state_dir: Path, name: str = "aws-test", **spec: Any) -> AwsProvider:
    """A provider on the moto endpoint; fast polling and no botocore retries unless asked."""
    settings: dict[str, Any] = {
        "region": REGION,
        "endpoint_url": url,
        "poll_interval": 0.01,
        "wait_timeout": 20,
        "max_attempts": 1,
    }
    settings.update(spec)
    config = ProviderConfig(name=name, type="aws", spec=settings, max_parallel=10)
    return AwsProvider(config, ProviderContext(state_dir=state_dir, clock=Clock(fixed=NOW)))


def create_request(
    key: str,
    *,
    owner: str = OWNER,
    generation: int = 0,
    spec_hash: str = "hash0",
    image: str = AMI,
    size: Size = SMALL,
    flavor: str | None = "t3.micro",
    tags: tuple[tuple[str, str], ...] = (("team", "web"),),
    user_data: str = "",
) -> CreateRequest:
    cluster, member, _ = key.split("/")
    return CreateRequest(
        owner=owner,
        key=key,
        name=server_name(key, generation),
        token=idempotency_token(owner, key, spec_hash, generation),
        generation=generation,
        spec_hash=spec_hash,
        image=image,
        size=size,
        flavor=flavor,
        user_data=user_data,
        tags=tags,
        cluster=cluster,
        member=member,
    )


def tags_of(resource: dict[str, Any]) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in resource.get("Tags", [])}


def describe(ec2: Any, instance_id: str) -> dict[str, Any]:
    """One instance, straight from EC2."""
    reply = ec2.describe_instances(InstanceIds=[instance_id])
    instance: dict[str, Any] = reply["Reservations"][0]["Instances"][0]
    return instance
