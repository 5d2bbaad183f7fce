"""The backup lifecycle through a real provider: AWS EC2 against moto_server (real boto3 over
HTTP). Nightly AMI backups quiesced by stopping the instance, retention deregistering AMIs
(and deleting their EBS snapshots), a final backup before destroy, and a restore that brings
the key back from that final backup as a running instance of the backed-up size."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from providers.aws.common import TAG_METHOD, TAG_RESTORED_FROM, TAG_TEMPLATE_IMAGE
from reconciler.backup.restore import restore
from reconciler.config import load_desired_state
from reconciler.core.backups import BackupKind
from reconciler.core.model import TAG_GENERATION, TAG_KEY, TAG_OWNER, TAG_POLICY, ServerStatus, Size
from reconciler.core.records import AuditAction, Outcome
from reconciler.run.planning import plan_path
from tests.aws.conftest import aws_env, ec2, moto  # noqa: F401 - the moto_server fixtures, reused as they are
from tests.aws.factory import tags_of
from tests.aws.motoserver import AMI, REGION, MotoServer
from tests.backup.support import (
    DEPLOYMENT,
    EPOCH,
    apply,
    audit,
    cluster_yaml,
    cycle,
    policy_yaml,
    run_context,
    template_yaml,
    workspace,
    write_desired,
)

NIGHTS = 4
KEY = "vault/db/0"
SIZE = Size(cpus=2, memory_mb=1024, disk_gb=10)  # exactly a t3.micro with a 10 GB root disk


def _provider_yaml(url: str) -> str:
    return f"""\
apiVersion: reconciler/v1
kind: Provider
metadata:
  name: aws-lab
spec:
  type: aws
  region: {REGION}
  endpoint_url: {url}
  max_attempts: 1
  poll_interval: 0.01
  wait_timeout: 20
  max_parallel: 4
  price_list: standard
"""


@pytest.fixture
def aws_desired(moto: MotoServer, ec2: Any, tmp_path: Path) -> Path:  # noqa: F811
    """vault/db/0 on (a freshly reset) moto under a nightly policy: image method, quiesced by a
    stop, keeping the last two backups."""
    policy = policy_yaml(quiesce="shutdown", keep_last=2, keep_daily=0, keep_weekly=0, method="image")
    return write_desired(
        tmp_path,
        provider=_provider_yaml(moto.url),
        policy=policy,
        template=template_yaml(image_type="aws", image=AMI, cpus=SIZE.cpus, memory_mb=SIZE.memory_mb,
                               disk_gb=SIZE.disk_gb),
        cluster=cluster_yaml(provider="aws-lab"),
    )


def _instances(client: Any) -> list[dict[str, Any]]:
    """Our live instances (anything not terminated), straight from EC2."""
    reply = client.describe_instances(Filters=[
        {"Name": f"tag:{TAG_OWNER}", "Values": [DEPLOYMENT]},
        {"Name": "instance-state-name", "Values": ["pending", "running", "stopping", "stopped"]},
    ])
    return [i for r in reply["Reservations"] for i in r["Instances"]]


def _images(client: Any) -> dict[str, dict[str, str]]:
    """Our backup AMIs: image id → tags."""
    filters = [{"Name": f"tag:{TAG_OWNER}", "Values": [DEPLOYMENT]}]
    images = client.describe_images(Owners=["self"], Filters=filters)
    return {i["ImageId"]: tags_of(i) for i in images["Images"]}


def _ebs_snapshots(client: Any) -> set[str]:
    """The EBS snapshots marked ours (the provider tags those behind each backup AMI)."""
    filters = [{"Name": f"tag:{TAG_OWNER}", "Values": [DEPLOYMENT]}]
    snapshots = client.describe_snapshots(OwnerIds=["self"], Filters=filters)["Snapshots"]
    return {s["SnapshotId"] for s in snapshots}


def _backing(client: Any, image_ids: set[str]) -> set[str]:
    images = client.describe_images(ImageIds=sorted(image_ids))["Images"]
    return {m["Ebs"]["SnapshotId"] for i in images for m in i["BlockDeviceMappings"] if "Ebs" in m}


def test_backup_lifecycle_on_aws(ec2: Any, aws_desired: Path, tmp_path: Path) -> None:  # noqa: F811
    state = tmp_path / "state"
    assert apply(aws_desired, state, EPOCH).ok
    [instance] = _instances(ec2)
    assert (instance["InstanceType"], instance["State"]["Name"]) == ("t3.micro", "running")

    before = audit(state)[-1].seq
    nights = [EPOCH + timedelta(hours=1, days=n) for n in range(NIGHTS)]
    for n, night in enumerate(nights):
        report = cycle(aws_desired, state, night)
        assert report.ok, report.failures
        assert report.count(BackupKind.TAKE) == 1
        assert len(_images(ec2)) == min(n + 1, 2)  # keep_last 2
        [now_running] = _instances(ec2)
        assert now_running["InstanceId"] == instance["InstanceId"]
        assert now_running["State"]["Name"] == "running"  # started again after its backup
    steps = [(e.record.action, e.record.outcome) for e in audit(state) if e.seq > before]
    assert steps.count((AuditAction.STOP, Outcome.SUCCEEDED)) == NIGHTS  # quiesced every night…
    assert steps.count((AuditAction.START, Outcome.SUCCEEDED)) == NIGHTS  # …and started again
    assert steps.count((AuditAction.SNAPSHOT, Outcome.SUCCEEDED)) == NIGHTS
    kept = _images(ec2)
    assert {t[TAG_KEY] for t in kept.values()} == {KEY}
    assert {(t[TAG_POLICY], t[TAG_METHOD]) for t in kept.values()} == {("nightly", "image")}
    assert _ebs_snapshots(ec2) == _backing(ec2, set(kept))  # pruned AMIs took their EBS snapshots along
    assert cycle(aws_desired, state, nights[-1] + timedelta(hours=1)).results == ()

    destroyed = apply(aws_desired, state, nights[-1] + timedelta(hours=2), destroy=True)
    assert destroyed.ok, destroyed.results
    assert [b.action.kind for b in destroyed.backups] == [BackupKind.FINAL]
    assert _instances(ec2) == []
    final = destroyed.backups[0].snapshot_id
    assert final in _images(ec2) and _images(ec2)[final][TAG_METHOD] == "image"

    asked: list[str] = []
    ws = workspace(state, nights[-1] + timedelta(hours=3))
    try:
        result = restore(
            load_desired_state(aws_desired),
            ws,
            run_context(),
            KEY,
            final,
            confirm=lambda text: not asked.append(text),
        )
    finally:
        ws.close()
    [description] = asked
    assert final in description and str(SIZE) in description
    server = result.server
    assert server is not None and result.replaced == () and result.backups == ()
    assert (server.key, server.generation, server.status, server.size) == (KEY, 1, ServerStatus.RUNNING, SIZE)
    [restored] = _instances(ec2)
    assert restored["InstanceId"] == server.resource_id != instance["InstanceId"]
    assert (restored["ImageId"], restored["InstanceType"]) == (final, "t3.micro")
    assert restored["State"]["Name"] == "running"
    tags = tags_of(restored)
    assert (tags[TAG_KEY], tags[TAG_GENERATION]) == (KEY, "1")
    assert (tags[TAG_RESTORED_FROM], tags[TAG_TEMPLATE_IMAGE]) == (final, AMI)
    attached = [{"Name": "attachment.instance-id", "Values": [server.resource_id]}]
    volumes = ec2.describe_volumes(Filters=attached)
    assert [v["Size"] for v in volumes["Volumes"]] == [SIZE.disk_gb]
    assert final in _images(ec2)  # the backup outlives the restore

    ws = workspace(state, nights[-1] + timedelta(hours=4))
    try:
        store = ws.store()
        assert store.verify().ok
        assert store.unresolved_intents(DEPLOYMENT) == []
        creates = [e.record for e in store.recent_audit(DEPLOYMENT, [AuditAction.CREATE], key=KEY, limit=10)]
        assert any(r.outcome is Outcome.SUCCEEDED and r.resource_id == server.resource_id for r in creates)
        plan = plan_path(aws_desired, ws)
        assert plan.changes == ()  # the restored server is the desired one: same size, same image
        assert [s.resource_id for s in plan.basis] == [server.resource_id]
    finally:
        ws.close()
