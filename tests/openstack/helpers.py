"""Helpers of the OpenStack provider tests: requests built the way the engine builds them."""

from __future__ import annotations

import hashlib

from reconciler.core.model import CreateRequest, Size, UpdateRequest, idempotency_token, server_name

IMAGE_ID = "155d900f-4e14-4e4c-a73d-069cbf4541e6"  # GlanceFixture's first image
TINY = Size(cpus=1, memory_mb=512, disk_gb=1)  # m1.tiny
SMALL = Size(cpus=1, memory_mb=2048, disk_gb=1)  # m1.small's vCPUs and memory, a 1 GB disk asked for
USER_DATA = "#!/bin/sh\necho openstack-user-data-marker > /etc/motd\n"
TAGS = (("env", "test"), ("team", "red"))


def request(
    owner: str,
    key: str,
    *,
    flavor: str | None = "m1.tiny",
    size: Size = TINY,
    image: str = IMAGE_ID,
    generation: int = 0,
    spec: str = "spec-a",
    tags: tuple[tuple[str, str], ...] = TAGS,
    user_data: str = USER_DATA,
) -> CreateRequest:
    cluster, member, _ordinal = key.split("/")
    digest = hashlib.sha256(spec.encode()).hexdigest()[:16]
    return CreateRequest(
        owner=owner, key=key, name=server_name(key, generation),
        token=idempotency_token(owner, key, digest, generation), generation=generation, spec_hash=digest,
        image=image, size=size, flavor=flavor, user_data=user_data, tags=tags, cluster=cluster, member=member,
    )


def resize(size: Size, flavor: str | None, *, tags: tuple[tuple[str, str], ...] = TAGS,
           allow_restart: bool = True) -> UpdateRequest:
    return UpdateRequest(size=size, flavor=flavor, tags=tags, allow_restart=allow_restart)
