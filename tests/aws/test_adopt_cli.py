"""Taking over EC2 instances made by hand, end to end through the real command on moto_server:
three instances made with boto3 directly (web-a and web-b t3.micro, db-1 t3.medium) →
``generate`` → ``validate`` → ``plan`` adopts exactly three and creates and deletes nothing →
``apply`` → the same instance ids, now carrying the ownership tags, and their EBS volumes the
marks a launched instance's volumes carry (but not a volume another deployment marked) →
``plan --detailed-exitcode`` exits 0 → ``forget`` takes the marks off the instance and its
volumes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from reconciler.core.model import TAG_CLUSTER, TAG_KEY, TAG_MEMBER, TAG_OWNER
from tests.aws.factory import tags_of
from tests.aws.motoserver import AMI, REGION, MotoServer
from tests.aws.test_cli import run

FLEET = [("web-a", "t3.micro"), ("web-b", "t3.micro"), ("db-1", "t3.medium")]


def _instances(ec2: Any) -> dict[str, dict[str, Any]]:
    found = {}
    for reservation in ec2.describe_instances()["Reservations"]:
        for instance in reservation["Instances"]:
            if instance["State"]["Name"] != "terminated":
                found[tags_of(instance)["Name"]] = instance
    return found


def _volumes(ec2: Any, instance_id: str) -> dict[str, dict[str, str]]:
    """Device → tags of the EBS volumes attached to an instance."""
    filters = [{"Name": "attachment.instance-id", "Values": [instance_id]}]
    volumes = ec2.describe_volumes(Filters=filters)["Volumes"]
    return {v["Attachments"][0]["Device"]: tags_of(v) for v in volumes}


def _attach(ec2: Any, instance: dict[str, Any], device: str, tags: dict[str, str]) -> None:
    marks = [{"Key": k, "Value": v} for k, v in tags.items()]
    spec = [{"ResourceType": "volume", "Tags": marks}] if marks else []
    volume = ec2.create_volume(AvailabilityZone=instance["Placement"]["AvailabilityZone"], Size=5,
                               TagSpecifications=spec)
    ec2.attach_volume(VolumeId=volume["VolumeId"], InstanceId=instance["InstanceId"], Device=device)


def test_adopt_three_instances_made_by_hand(tmp_path: Path, moto: MotoServer, ec2: Any,
                                            aws_env: dict[str, str]) -> None:
    for name, instance_type in FLEET:
        ec2.run_instances(
            ImageId=AMI, MinCount=1, MaxCount=1, InstanceType=instance_type,
            TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": "Name", "Value": name}]}],
        )
    made = _instances(ec2)
    before = {name: i["InstanceId"] for name, i in made.items()}
    _attach(ec2, made["db-1"], "/dev/sdf", {"purpose": "data"})
    _attach(ec2, made["web-a"], "/dev/sdg", {TAG_OWNER: "another-deployment", TAG_KEY: "x/y/0"})
    folder = tmp_path / "fleet"
    folder.mkdir()
    provider = {
        "apiVersion": "reconciler/v1", "kind": "Provider", "metadata": {"name": "aws"},
        "spec": {"type": "aws", "region": REGION, "endpoint_url": moto.url, "poll_interval": 0.05,
                 "wait_timeout": 30},
    }
    (folder / "providers.yaml").write_text(json.dumps(provider), encoding="utf-8")

    generated = run(tmp_path, aws_env, "generate", str(folder), "--provider", "aws",
                    "--out", str(folder / "adopted.yaml"))
    assert generated.returncode == 0, generated.stderr
    text = (folder / "adopted.yaml").read_text(encoding="utf-8")
    assert '"t3.micro"' in text and '"t3.medium"' in text and "count: 2" in text
    validated = run(tmp_path, aws_env, "validate", str(folder))
    assert validated.returncode == 0, validated.stderr

    plan = run(tmp_path, aws_env, "plan", str(folder), "--format", "json")
    assert plan.returncode == 0, plan.stderr
    changes = json.loads(plan.stdout)["changes"]
    assert sorted((c["action"], c["key"]) for c in changes) == [
        ("adopt", "aws/db/0"), ("adopt", "aws/web/0"), ("adopt", "aws/web/1"),
    ]  # exactly three adopts: nothing created, nothing deleted, nothing else

    applied = run(tmp_path, aws_env, "apply", str(folder), "--yes")
    assert applied.returncode == 0, applied.stdout + applied.stderr
    after = _instances(ec2)
    assert {name: i["InstanceId"] for name, i in after.items()} == before
    keys = {name: tags_of(i).get(TAG_KEY) for name, i in after.items()}
    assert keys == {"web-a": "aws/web/0", "web-b": "aws/web/1", "db-1": "aws/db/0"}
    assert all(tags_of(i).get(TAG_OWNER) == "fleet" for i in after.values())
    assert all(i["State"]["Name"] == "running" for i in after.values())

    for name, instance in after.items():
        volumes = _volumes(ec2, instance["InstanceId"])
        key = str(keys[name])
        ours = {d: t for d, t in volumes.items() if t.get(TAG_OWNER) == "fleet"}
        assert len(ours) == (2 if name == "db-1" else 1), (name, volumes)  # the root volume, db-1's data
        for tags in ours.values():
            assert (tags[TAG_KEY], tags[TAG_CLUSTER], tags[TAG_MEMBER]) == (key, "aws", key.split("/")[1])
    assert _volumes(ec2, before["db-1"])["/dev/sdf"]["purpose"] == "data"
    assert _volumes(ec2, before["web-a"])["/dev/sdg"] == {TAG_OWNER: "another-deployment", TAG_KEY: "x/y/0"}

    again = run(tmp_path, aws_env, "plan", str(folder), "--detailed-exitcode")
    assert again.returncode == 0, again.stdout + again.stderr

    forgot = run(tmp_path, aws_env, "forget", str(folder), "aws/db/0")
    assert forgot.returncode == 0, forgot.stderr
    assert not any(k.startswith("reconciler:") for k in tags_of(_instances(ec2)["db-1"]))
    for tags in _volumes(ec2, before["db-1"]).values():
        assert not any(k.startswith("reconciler:") for k in tags)
