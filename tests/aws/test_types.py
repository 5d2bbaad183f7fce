"""The built-in instance type table and the smallest-fitting-type rule (checked against moto's AWS data)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from providers.aws.common import INSTANCE_TYPES, instance_type_for
from providers.aws.provider import AwsProvider
from reconciler.core.errors import PermanentError
from reconciler.core.model import Size
from tests.aws.factory import OWNER, create_request


def test_table_agrees_with_aws_instance_type_data(ec2: Any) -> None:
    names = sorted(INSTANCE_TYPES)
    known: dict[str, tuple[int, int]] = {}
    for start in range(0, len(names), 100):
        reply = ec2.describe_instance_types(InstanceTypes=names[start : start + 100])
        for info in reply["InstanceTypes"]:
            known[info["InstanceType"]] = (info["VCpuInfo"]["DefaultVCpus"], info["MemoryInfo"]["SizeInMiB"])
    assert len(known) > 0.9 * len(names)
    assert {name: INSTANCE_TYPES[name] for name in known} == known


@pytest.mark.parametrize(
    ("size", "families", "expected"),
    [
        (Size(1, 512, 10), ("t3", "c6i", "m6i", "r6i"), "t3.nano"),
        (Size(2, 3000, 10), ("t3", "c6i", "m6i", "r6i"), "t3.medium"),
        (Size(4, 8192, 10), ("t3", "c6i", "m6i", "r6i"), "c6i.xlarge"),
        (Size(8, 65536, 10), ("t3", "c6i", "m6i", "r6i"), "r6i.2xlarge"),
        (Size(2, 4096, 10), ("c6i", "t3"), "c6i.large"),
        (Size(1, 512, 10), ("m6i",), "m6i.large"),
    ],
)
def test_smallest_fitting_type(size: Size, families: tuple[str, ...], expected: str) -> None:
    assert instance_type_for(size, families) == expected


def test_no_fitting_type_is_permanent() -> None:
    with pytest.raises(PermanentError) as caught:
        instance_type_for(Size(cpus=512, memory_mb=1024, disk_gb=10))
    assert caught.value.code == "NoInstanceTypeFits"


def test_unlisted_type_is_sized_once_by_describe_instance_types(
    provider: AwsProvider, new_provider: Callable[..., AwsProvider]
) -> None:
    provider.create(create_request("shop/gpu/0", flavor="g4dn.xlarge"))
    observer = new_provider()

    [server] = observer.observe(OWNER)
    assert server.size == Size(cpus=4, memory_mb=16384, disk_gb=10)
    assert server.flavor == "g4dn.xlarge"
    assert observer.calls == {"DescribeInstances": 1, "DescribeInstanceTypes": 1}

    observer.calls.clear()
    observer.observe(OWNER)
    assert observer.calls == {"DescribeInstances": 1}
