"""Observing many servers: one DescribeInstances page per 1000 (moto pages by reservation).

The servers are made straight through boto3, one reservation each (moto counts a page in
reservations, EC2 in instances), with only the tags observe needs: moto's tag filter scans
every tag it holds for every instance, so fewer tags keep this test quick without
changing what it checks.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from providers.aws import AwsProvider
from reconciler.model import TAG_KEY, TAG_OWNER
from tests.aws.factory import OWNER
from tests.aws.motoserver import AMI


def make_owned(ec2: Any, count: int, *, owner: str = OWNER, workers: int = 4) -> None:
    def run(ordinal: int) -> None:
        tags = {TAG_OWNER: owner, TAG_KEY: f"big/node/{ordinal}"}
        ec2.run_instances(
            ImageId=AMI,
            MinCount=1,
            MaxCount=1,
            InstanceType="t3.micro",
            TagSpecifications=[
                {"ResourceType": "instance", "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}
            ],
        )

    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(run, range(count)))


def test_small_pages_are_all_followed(new_provider: Callable[..., AwsProvider], ec2: Any) -> None:
    make_owned(ec2, 12)
    make_owned(ec2, 3, owner="neighbour")
    provider = new_provider(page_size=5)

    observed = provider.observe(OWNER)

    assert sorted(s.key for s in observed) == sorted(f"big/node/{i}" for i in range(12))
    assert provider.calls == {"DescribeInstances": 3}


@pytest.mark.slow
def test_1500_servers_in_two_pages(provider: AwsProvider, ec2: Any) -> None:
    make_owned(ec2, 1500)

    observed = provider.observe(OWNER)

    assert len(observed) == 1500
    assert len({s.resource_id for s in observed}) == 1500
    assert provider.calls == {"DescribeInstances": 2}
    assert provider.total_calls == 2
