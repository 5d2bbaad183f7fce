"""AWS provider backups: AMIs by CreateImage (NoReboot), listed by owner tag, deleted with their snapshots."""

from __future__ import annotations

from typing import Any

import pytest

from providers.aws.common import TAG_IMAGE_ID, TAG_RESOURCE_ID
from providers.aws.provider import AwsProvider
from reconciler.core.errors import PermanentError
from reconciler.core.model import (
    TAG_KEY,
    TAG_OWNER,
    TAG_POLICY,
    TAG_TAKEN_AT,
    ObservedServer,
    SnapshotRequest,
)
from tests.aws.factory import NOW, OWNER, create_request, tags_of

REQUEST = SnapshotRequest(name="shop-web-0 2026-11-02T10:00Z", policy="nightly", tags=(("tier", "gold"),))


@pytest.fixture
def server(provider: AwsProvider) -> ObservedServer:
    return provider.create(create_request("shop/web/0"))


def test_snapshot_is_a_tagged_image(provider: AwsProvider, server: ObservedServer, ec2: Any) -> None:
    snapshot = provider.snapshot(server, REQUEST)

    assert snapshot.snapshot_id.startswith("ami-")
    assert (snapshot.key, snapshot.owner, snapshot.resource_id) == ("shop/web/0", OWNER, server.resource_id)
    assert snapshot.policy == "nightly"
    assert snapshot.created_at == NOW
    assert snapshot.name == "shop-web-0-2026-11-02T10-00Z"  # AMI names allow no spaces or colons
    assert snapshot.size_gb > 0

    [image] = ec2.describe_images(ImageIds=[snapshot.snapshot_id])["Images"]
    tags = tags_of(image)
    assert tags[TAG_OWNER] == OWNER and tags[TAG_KEY] == "shop/web/0"
    assert tags[TAG_POLICY] == "nightly"
    assert tags[TAG_TAKEN_AT] == "2026-11-02T10:00:00Z"
    assert tags[TAG_RESOURCE_ID] == server.resource_id
    assert tags["tier"] == "gold"
    ebs_ids = [m["Ebs"]["SnapshotId"] for m in image["BlockDeviceMappings"] if "Ebs" in m]
    assert ebs_ids
    for ebs in ec2.describe_snapshots(SnapshotIds=ebs_ids)["Snapshots"]:
        assert tags_of(ebs)[TAG_OWNER] == OWNER
        assert tags_of(ebs)[TAG_IMAGE_ID] == snapshot.snapshot_id


def test_snapshot_retried_finds_the_same_image(
    provider: AwsProvider, server: ObservedServer, ec2: Any
) -> None:
    first = provider.snapshot(server, REQUEST)
    second = provider.snapshot(server, REQUEST)

    assert first.snapshot_id == second.snapshot_id
    assert provider.calls["CreateImage"] == 1
    assert len(ec2.describe_images(Owners=["self"])["Images"]) == 1


def test_list_snapshots_by_owner(provider: AwsProvider, server: ObservedServer) -> None:
    made = provider.snapshot(server, REQUEST)
    other = provider.create(create_request("shop/db/0", owner="other"))
    provider.snapshot(other, SnapshotRequest(name="other-db", policy=None))
    provider.calls.clear()

    [listed] = provider.list_snapshots(OWNER)

    assert listed == made
    assert provider.calls == {"DescribeImages": 1}
    assert [s.policy for s in provider.list_snapshots("other")] == [None]


def test_delete_snapshot_removes_image_and_ebs_snapshots(
    provider: AwsProvider, server: ObservedServer, ec2: Any
) -> None:
    snapshot = provider.snapshot(server, REQUEST)
    [image] = ec2.describe_images(ImageIds=[snapshot.snapshot_id])["Images"]
    ebs_ids = {m["Ebs"]["SnapshotId"] for m in image["BlockDeviceMappings"] if "Ebs" in m}

    provider.delete_snapshot(snapshot)

    assert provider.list_snapshots(OWNER) == []
    assert ec2.describe_images(Owners=["self"])["Images"] == []
    remaining = {s["SnapshotId"] for s in ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]}
    assert not ebs_ids & remaining
    provider.delete_snapshot(snapshot)  # gone already: nothing to do


def test_delete_snapshot_refuses_another_owners_image(
    provider: AwsProvider, server: ObservedServer, ec2: Any
) -> None:
    snapshot = provider.snapshot(server, REQUEST)
    from dataclasses import replace

    with pytest.raises(PermanentError) as caught:
        provider.delete_snapshot(replace(snapshot, owner="intruder"))

    assert caught.value.code == "NotOwned"
    assert len(ec2.describe_images(ImageIds=[snapshot.snapshot_id])["Images"]) == 1
