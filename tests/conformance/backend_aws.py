"""Conformance backend for aws: the EC2 provider against one real moto_server, over HTTP.

The server starts on first use and serves the whole session (each test has its own owner,
so tests never see each other). Providers get dummy credentials from the environment only
while their boto3 client is made, so no real AWS profile is read and nothing leaks into
other tests. Faults are injected into the HTTP exchange with a botocore ``before-send``
hook; providers are made with ``max_attempts: 1`` so each injected fault is one failed call.
Listing pages hold 5 servers (``page_size``, EC2's minimum) to keep the pagination test small;
``tests/aws/test_scale.py`` checks the 1000-instance page; ``bench/bench_aws_observe.py`` observes
1,500 servers in two calls.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from providers.aws.provider import AwsProvider
from reconciler.core.model import ProviderConfig, Size
from reconciler.core.provider import Provider, create_provider
from tests.aws.motoserver import AMI, REGION, MotoServer, isolated_aws_env, start_moto_server, throttle_hook
from tests.conformance.backend import BaseBackend, Shape, fixed_context


@contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in (*values, "AWS_PROFILE", "AWS_DEFAULT_PROFILE")}
    os.environ.pop("AWS_PROFILE", None)
    os.environ.pop("AWS_DEFAULT_PROFILE", None)
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _aws(provider: Provider) -> AwsProvider:
    assert isinstance(provider, AwsProvider)
    return provider


@dataclass
class AwsBackend(BaseBackend):
    server: MotoServer | None = field(default=None, repr=False)
    home: Path | None = field(default=None, repr=False)

    def _server(self) -> MotoServer:
        if self.server is None:
            self.home = Path(tempfile.mkdtemp(prefix="reconciler-moto-"))
            self.server = start_moto_server(self.home)
        return self.server

    def make_provider(self, tmp_path: Path) -> Provider:
        server = self._server()
        spec = {
            "region": REGION,
            "endpoint_url": server.url,
            "max_attempts": 1,
            "page_size": self.page_size,
            "poll_interval": 0.01,
            "wait_timeout": 20,
        }
        config = ProviderConfig(name="aws-conformance", type="aws", spec=spec, max_parallel=4)
        with _environment(isolated_aws_env(tmp_path)):
            provider = _aws(create_provider(config, fixed_context(tmp_path)))
            provider.api.client  # noqa: B018 - binds the dummy credentials now
        return provider

    def engine_environment(self, tmp_path: Path) -> dict[str, str]:
        return isolated_aws_env(tmp_path)  # dummy credentials, no real AWS profile

    def create_unowned(self, provider: Provider, name: str) -> None:
        tags = [{"Key": "Name", "Value": name}, {"Key": "made-by", "Value": "hand"}]
        _aws(provider).api.client.run_instances(
            ImageId=self.image, MinCount=1, MaxCount=1, InstanceType="t3.micro",
            TagSpecifications=[{"ResourceType": "instance", "Tags": tags}],
        )

    def inject_transient(self, provider: Provider, count: int) -> None:
        _aws(provider).api.client.meta.events.register("before-send.ec2", throttle_hook(count))

    def inject_permanent(self, provider: Provider) -> None:
        hook = throttle_hook(1, code="UnauthorizedOperation", status=403)
        _aws(provider).api.client.meta.events.register("before-send.ec2", hook)

    def close(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None
        if self.home is not None:
            shutil.rmtree(self.home, ignore_errors=True)
            self.home = None


BACKENDS = [
    AwsBackend(
        name="aws-moto",
        image=AMI,
        small=Shape(Size(cpus=2, memory_mb=1024, disk_gb=10), flavor="t3.micro"),
        large=Shape(Size(cpus=2, memory_mb=2048, disk_gb=10), flavor="t3.small"),
        page_size=5,
        listing_operation="DescribeInstances",
        describe_calls=2,
    )
]
