"""An adopted instance's own EBS volumes go with it when it is deleted, on moto_server.

Whoever launched it may have set ``DeleteOnTermination`` false (an attached data volume always
has it false): the delete switches the volumes adoption marked as this server's to go along,
then terminates — and leaves alone a volume another deployment marked.
"""

from __future__ import annotations

from typing import Any

from providers.aws.provider import AwsProvider
from reconciler.core.model import TAG_KEY, TAG_OWNER
from reconciler.core.provider import AdoptRequest
from tests.aws.motoserver import AMI


def _volume_states(ec2: Any) -> dict[str, str]:
    return {v["VolumeId"]: v["State"] for v in ec2.describe_volumes()["Volumes"]}


def test_deleting_an_adopted_instance_takes_its_own_volumes(provider: AwsProvider, ec2: Any) -> None:
    [instance] = ec2.run_instances(
        ImageId=AMI, MinCount=1, MaxCount=1, InstanceType="t3.micro",
        BlockDeviceMappings=[{"DeviceName": "/dev/sda1",
                              "Ebs": {"VolumeSize": 8, "DeleteOnTermination": False}}],
        TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": "Name", "Value": "db-1"}]}],
    )["Instances"]
    zone = instance["Placement"]["AvailabilityZone"]
    data = ec2.create_volume(AvailabilityZone=zone, Size=5)["VolumeId"]
    marks = [{"Key": TAG_OWNER, "Value": "another"}, {"Key": TAG_KEY, "Value": "x/y/0"}]
    foreign = ec2.create_volume(AvailabilityZone=zone, Size=5,
                                TagSpecifications=[{"ResourceType": "volume", "Tags": marks}])["VolumeId"]
    for volume, device in ((data, "/dev/sdf"), (foreign, "/dev/sdg")):
        ec2.attach_volume(VolumeId=volume, InstanceId=instance["InstanceId"], Device=device)
    root = next(v for v in _volume_states(ec2) if v not in (data, foreign))

    [server] = [s for s in provider.list_unowned() if s.resource_id == instance["InstanceId"]]
    request = AdoptRequest(owner="acme", key="lab/db/0", token="t" * 32, generation=0, spec_hash="abc",
                           cluster="lab", member="db")
    adopted = provider.adopt(server, request)
    provider.delete(adopted)

    left = _volume_states(ec2)
    assert root not in left and data not in left  # the server's own volumes went with it
    assert left.get(foreign) == "available"  # another deployment's volume stays
