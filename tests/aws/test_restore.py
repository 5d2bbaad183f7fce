"""AWS provider restores: RunInstances from a backup AMI, through the same path (token lookup,
tags, ClientToken, user data) as a create; refusals for a missing, foreign or too-big backup."""

from __future__ import annotations

import base64
import dataclasses
from typing import Any

import pytest

from providers.aws.common import TAG_DISK, TAG_METHOD, TAG_RESTORED_FROM, TAG_TEMPLATE_IMAGE
from providers.aws.provider import AwsProvider
from reconciler.core.errors import NotFoundError, PermanentError
from reconciler.core.model import (
    TAG_GENERATION,
    TAG_KEY,
    TAG_OWNER,
    TAG_TOKEN,
    BackupMethod,
    ServerStatus,
    Size,
    Snapshot,
    SnapshotRequest,
)
from tests.aws.factory import NOW, OWNER, SMALL, create_request, describe, tags_of
from tests.aws.motoserver import AMI

KEY = "shop/db/0"


@pytest.fixture
def backup(provider: AwsProvider) -> Snapshot:
    """A nightly backup (method image) of a 10 GB server that has since been deleted."""
    source = provider.create(create_request(KEY))
    snapshot = provider.snapshot(source, SnapshotRequest(name="db-nightly", policy="nightly",
                                                         method=BackupMethod.IMAGE))
    provider.delete(source)
    return snapshot


def _root_volume(ec2: Any, instance_id: str) -> dict[str, Any]:
    volumes = ec2.describe_volumes(Filters=[{"Name": "attachment.instance-id", "Values": [instance_id]}])
    [volume] = volumes["Volumes"]
    return dict(volume)


@pytest.mark.parametrize("method", list(BackupMethod), ids=str)
def test_both_methods_take_an_ami_recording_the_method(provider: AwsProvider, ec2: Any,
                                                       method: BackupMethod) -> None:
    server = provider.create(create_request(KEY))
    snapshot = provider.snapshot(server, SnapshotRequest(name=f"db-{method}", policy=None, method=method))

    [image] = ec2.describe_images(ImageIds=[snapshot.snapshot_id])["Images"]
    assert image["ImageId"].startswith("ami-")
    assert tags_of(image)[TAG_METHOD] == method.value
    assert tags_of(image)[TAG_DISK] == str(SMALL.disk_gb)
    assert provider.calls["CreateImage"] == 1


def test_restore_is_a_create_from_the_backup_ami(provider: AwsProvider, backup: Snapshot, ec2: Any) -> None:
    bigger = dataclasses.replace(SMALL, disk_gb=30)
    script = "#!/bin/sh\necho restored\n"
    request = create_request(KEY, generation=1, spec_hash="hash-r", size=bigger, user_data=script)
    restored = provider.create_from_snapshot(request, backup)

    assert (restored.key, restored.generation, restored.status) == (KEY, 1, ServerStatus.RUNNING)
    assert restored.size == Size(cpus=2, memory_mb=1024, disk_gb=30)
    assert restored.image == AMI  # the template's image, so the next plan compares like with like
    assert restored.tags == (("team", "web"),)
    assert restored.created_at == NOW  # by the reconciler's clock: LaunchTime moves on every start
    instance = describe(ec2, restored.resource_id)
    assert instance["ImageId"] == backup.snapshot_id
    assert instance["InstanceType"] == "t3.micro"
    tags = tags_of(instance)
    assert (tags[TAG_OWNER], tags[TAG_KEY], tags[TAG_GENERATION]) == (OWNER, KEY, "1")
    assert (tags[TAG_TOKEN], tags[TAG_DISK]) == (request.token, "30")
    assert (tags[TAG_RESTORED_FROM], tags[TAG_TEMPLATE_IMAGE]) == (backup.snapshot_id, AMI)
    volume = _root_volume(ec2, restored.resource_id)
    assert volume["Size"] == 30 and tags_of(volume)[TAG_OWNER] == OWNER
    [root] = instance["BlockDeviceMappings"]
    assert (root["DeviceName"], root["Ebs"]["DeleteOnTermination"]) == ("/dev/sda1", True)
    user_data = ec2.describe_instance_attribute(InstanceId=restored.resource_id, Attribute="userData")
    assert base64.b64decode(user_data["UserData"]["Value"]).decode() == script


def test_restore_picks_the_instance_type_for_the_size(
    provider: AwsProvider, backup: Snapshot, ec2: Any
) -> None:
    request = create_request(KEY, generation=1, flavor=None, size=Size(cpus=2, memory_mb=4096, disk_gb=10))
    restored = provider.create_from_snapshot(request, backup)

    assert restored.flavor == provider.flavor_for(request.size) == "t3.medium"
    assert describe(ec2, restored.resource_id)["InstanceType"] == "t3.medium"


def test_restore_retried_finds_the_instance_even_after_the_backup_is_gone(
    provider: AwsProvider, backup: Snapshot
) -> None:
    request = create_request(KEY, generation=1)
    first = provider.create_from_snapshot(request, backup)
    provider.delete_snapshot(backup)
    provider.calls.clear()

    again = provider.create_from_snapshot(request, backup)

    assert again.resource_id == first.resource_id
    assert provider.calls["RunInstances"] == 0 and provider.calls["DescribeImages"] == 0
    assert [s.resource_id for s in provider.observe(OWNER)] == [first.resource_id]


def test_restore_refuses_a_disk_smaller_than_the_backup(
    provider: AwsProvider, backup: Snapshot
) -> None:
    request = create_request(KEY, generation=1, size=dataclasses.replace(SMALL, disk_gb=8))

    with pytest.raises(PermanentError, match="10 GB root disk") as caught:
        provider.create_from_snapshot(request, backup)

    assert caught.value.code == "DiskTooSmallForBackup"
    assert provider.calls["RunInstances"] == 1  # the source's create only
    assert provider.observe(OWNER) == []


def test_restore_of_a_missing_backup_is_not_found(provider: AwsProvider, backup: Snapshot) -> None:
    provider.delete_snapshot(backup)

    with pytest.raises(NotFoundError, match="no longer exists"):
        provider.create_from_snapshot(create_request(KEY, generation=1), backup)
    with pytest.raises(NotFoundError):
        provider.create_from_snapshot(create_request(KEY, generation=1),
                                      dataclasses.replace(backup, snapshot_id="ami-0123456789abcdef0"))
    assert provider.observe(OWNER) == []


def test_restore_refuses_another_owners_backup(provider: AwsProvider, backup: Snapshot) -> None:
    request = create_request(KEY, owner="intruder", generation=1)

    with pytest.raises(PermanentError, match="owned by shop-prod") as caught:
        provider.create_from_snapshot(request, backup)

    assert caught.value.code == "NotOwned"
    assert provider.observe("intruder") == []


def test_restore_refuses_an_image_without_our_marks(provider: AwsProvider, backup: Snapshot) -> None:
    foreign = dataclasses.replace(backup, snapshot_id=AMI)  # a public AMI: nobody's backup

    with pytest.raises(PermanentError, match="owned by nobody"):
        provider.create_from_snapshot(create_request(KEY, generation=1), foreign)
