"""Fixtures for the AWS provider tests: one moto_server for the session, reset before each test.

Every test runs with dummy credentials in the environment and boto3's config files pointed
at the test's tmp folder, so no real AWS profile is ever read.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from providers.aws.provider import AwsProvider
from tests.aws.factory import make_provider
from tests.aws.motoserver import CREDENTIALS, REGION, MotoServer, isolated_aws_env, start_moto_server


@pytest.fixture(scope="session")
def moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    server = start_moto_server(tmp_path_factory.mktemp("moto"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, str]:
    env = isolated_aws_env(tmp_path)
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_EC2"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


@pytest.fixture
def ec2(moto: MotoServer, aws_env: dict[str, str]) -> Any:
    """A plain boto3 client on a freshly reset moto, to check results behind the provider."""
    moto.reset()
    return moto.client()


@pytest.fixture
def new_provider(ec2: Any, moto: MotoServer, tmp_path: Path) -> Iterator[Callable[..., AwsProvider]]:
    """Make providers on the (reset) moto endpoint; all are closed after the test."""
    made: list[AwsProvider] = []

    def make(**spec: Any) -> AwsProvider:
        provider = make_provider(moto.url, tmp_path / f"state{len(made)}", **spec)
        made.append(provider)
        return provider

    yield make
    for provider in made:
        provider.close()


@pytest.fixture
def provider(new_provider: Callable[..., AwsProvider]) -> AwsProvider:
    return new_provider()


@pytest.fixture
def cloudwatch(moto: MotoServer, ec2: Any) -> Any:
    """A plain boto3 CloudWatch client on the (reset) moto_server: EC2's side of the metrics."""
    return boto3.client(
        "cloudwatch",
        region_name=REGION,
        endpoint_url=moto.url,
        aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
    )
