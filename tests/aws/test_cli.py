"""End to end on EC2: the real ``reconciler`` command in subprocesses, against moto_server.

The desired state is examples/clusters-aws (the shop) plus two more clusters, with the
provider pointed at moto and the example AMIs swapped for one moto knows. Every check of
what happened is made through boto3 directly.
"""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from reconciler.core.model import TAG_KEY, TAG_OWNER
from tests.aws.factory import tags_of
from tests.aws.motoserver import AMI, MotoServer

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "clusters-aws"
NOW = "2026-11-02T10:00:00Z"
PASSWORD = (EXAMPLE / "secrets" / "db-password.txt").read_text().strip()

EXTRA_CLUSTERS = """\
apiVersion: reconciler/v1
kind: Cluster
metadata:
  name: blog
spec:
  provider: aws-us-east-1
  members:
    web:
      template: web
      count: 2
      inputs:
        server_name: blog.example.com
---
apiVersion: reconciler/v1
kind: Cluster
metadata:
  name: status
spec:
  provider: aws-us-east-1
  members:
    web:
      template: sized
      count: 1
---
apiVersion: reconciler/v1
kind: ServerTemplate
metadata:
  name: sized
spec:
  image: {aws: AMI}
  size: {cpus: 1, memory_mb: 3000, disk_gb: 8}
"""


@pytest.fixture
def workdir(tmp_path: Path, moto: MotoServer) -> Path:
    """examples/clusters-aws on moto, with three clusters: shop (6 servers), blog (2), status (1)."""
    target = tmp_path / "infra"
    shutil.copytree(EXAMPLE, target)
    provider_file = target / "providers.yaml"
    provider = yaml.safe_load(provider_file.read_text())
    spec = provider["spec"]
    for name in ("subnet_id", "security_group_ids", "key_name"):  # resources moto does not have
        spec.pop(name)
    spec.update(endpoint_url=moto.url, poll_interval=0.05, wait_timeout=30)
    provider_file.write_text(yaml.safe_dump(provider, sort_keys=False))
    templates = target / "templates.yaml"
    text = templates.read_text()
    for line in text.splitlines():
        if line.strip().startswith("aws: ami-"):
            text = text.replace(line.split(": ")[1], AMI)
    templates.write_text(text)
    (target / "more.yaml").write_text(EXTRA_CLUSTERS.replace("AMI", AMI))
    return target


def run(tmp_path: Path, aws_env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RECONCILER_", "AWS_"))}
    env.update(aws_env)
    env.update(RECONCILER_STATE_DIR=str(tmp_path / "state"), RECONCILER_NOW=NOW, PYTHONPATH=str(REPO))
    return subprocess.run(
        [sys.executable, "-m", "reconciler", *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        stdin=subprocess.DEVNULL,
    )


def owned(ec2: Any, owner: str) -> dict[str, dict[str, Any]]:
    """Live instances carrying ``owner``'s mark, by key."""
    found: dict[str, dict[str, Any]] = {}
    filters = [{"Name": f"tag:{TAG_OWNER}", "Values": [owner]}]
    for reservation in ec2.describe_instances(Filters=filters)["Reservations"]:
        for instance in reservation["Instances"]:
            if instance["State"]["Name"] not in ("shutting-down", "terminated"):
                found[tags_of(instance)[TAG_KEY]] = instance
    return found


@pytest.mark.slow
def test_apply_converges_then_heals_drift(
    tmp_path: Path, workdir: Path, ec2: Any, aws_env: dict[str, str]
) -> None:
    first = run(tmp_path, aws_env, "plan", str(workdir), "--detailed-exitcode")
    assert first.returncode == 2, first.stderr
    assert PASSWORD not in first.stdout + first.stderr

    applied = run(tmp_path, aws_env, "apply", str(workdir), "--yes")
    assert applied.returncode == 0, applied.stdout + applied.stderr

    servers = owned(ec2, "infra")
    assert sorted(servers) == [
        "blog/web/0",
        "blog/web/1",
        "shop/app/0",
        "shop/app/1",
        "shop/db/0",
        "shop/web/0",
        "shop/web/1",
        "shop/web/2",
        "status/web/0",
    ]
    assert servers["shop/db/0"]["InstanceType"] == "t3.medium"
    assert servers["shop/app/1"]["InstanceType"] == "t3.small"
    # a template with a size and no flavor gets the smallest type that fits (3000 MB: t3.medium),
    # and is then compared by that type, so the next plan is empty
    assert servers["status/web/0"]["InstanceType"] == "t3.medium"
    assert tags_of(servers["shop/web/0"])["role"] == "web"
    db_id = servers["shop/db/0"]["InstanceId"]
    user_data = ec2.describe_instance_attribute(InstanceId=db_id, Attribute="userData")["UserData"]["Value"]
    assert PASSWORD in base64.b64decode(user_data).decode()  # the secret reached the boot script only

    app_id = servers["shop/app/0"]["InstanceId"]
    converged = run(tmp_path, aws_env, "plan", str(workdir), "--detailed-exitcode")
    assert converged.returncode == 0, converged.stdout + converged.stderr

    # Drift behind the reconciler's back: a tag removed, a server terminated.
    ec2.delete_tags(Resources=[servers["shop/app/0"]["InstanceId"]], Tags=[{"Key": "role"}])
    ec2.terminate_instances(InstanceIds=[servers["status/web/0"]["InstanceId"]])
    drifted = run(tmp_path, aws_env, "plan", str(workdir), "--detailed-exitcode")
    assert drifted.returncode == 2, drifted.stdout + drifted.stderr
    healed = run(tmp_path, aws_env, "apply", str(workdir), "--yes")
    assert healed.returncode == 0, healed.stdout + healed.stderr

    servers = owned(ec2, "infra")
    assert len(servers) == 9
    assert tags_of(servers["shop/app/0"])["role"] == "application"
    assert servers["shop/app/0"]["InstanceId"] == app_id  # healed in place, not replaced
    assert run(tmp_path, aws_env, "plan", str(workdir), "--detailed-exitcode").returncode == 0


@pytest.mark.slow
def test_tag_update_on_a_type_larger_than_its_size_converges(
    tmp_path: Path, workdir: Path, ec2: Any, aws_env: dict[str, str]
) -> None:
    assert run(tmp_path, aws_env, "apply", str(workdir), "--yes").returncode == 0
    web = owned(ec2, "infra")["blog/web/0"]["InstanceId"]
    ec2.delete_tags(Resources=[web], Tags=[{"Key": "role"}])

    healed = run(tmp_path, aws_env, "apply", str(workdir), "--yes")

    assert tags_of(owned(ec2, "infra")["blog/web/0"])["role"] == "web"
    assert healed.returncode == 0, healed.stdout + healed.stderr
