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

from providers.aws.provider import AwsProvider
from reconciler.core.model import TAG_KEY, TAG_OWNER
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


def test_listing_asks_for_pages_of_1000(new_provider: Callable[..., AwsProvider], ec2: Any) -> None:
    """The default page is EC2's largest, 1000 instances: N servers cost ceil(N / 1000) calls.
    (``bench/bench_aws_observe.py`` observes 1,500 in exactly two; too slow on moto for a test.)"""
    make_owned(ec2, 3)
    provider = new_provider()
    sent: list[dict[str, Any]] = []
    provider.api.client.meta.events.register(
        "provide-client-params.ec2.DescribeInstances", lambda params, **_: sent.append(dict(params))
    )

    assert len(provider.observe(OWNER)) == 3

    assert [p["MaxResults"] for p in sent] == [1000]
    assert provider.calls == {"DescribeInstances": 1}
