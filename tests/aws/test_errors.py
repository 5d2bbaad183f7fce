"""AWS provider errors: what is transient (retried), what is permanent (recorded), with codes and messages.

Faults are injected into the real HTTP exchange with botocore event hooks, so the error
parsing and mapping under test is the same code that handles a real EC2 answer.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import jsonschema
import pytest
from botocore.exceptions import ClientError

from providers.aws.common import AwsSettings, translate_error
from providers.aws.provider import AwsProvider
from reconciler.core.errors import NotFoundError, PermanentError, TransientError, UserError
from reconciler.core.retry import RetryPolicy, call_with_retry
from tests.aws.factory import OWNER, create_request
from tests.aws.motoserver import free_port, throttle_hook


def instance_count(ec2: Any) -> int:
    return sum(len(r["Instances"]) for r in ec2.describe_instances()["Reservations"])


def test_throttling_is_transient_and_recovered_by_retry(provider: AwsProvider) -> None:
    provider.create(create_request("shop/web/0"))
    hook = throttle_hook(2)
    provider.api.client.meta.events.register("before-send.ec2.DescribeInstances", hook)

    with pytest.raises(TransientError) as caught:
        provider.observe(OWNER)
    assert caught.value.code == "RequestLimitExceeded"
    assert "injected RequestLimitExceeded" in str(caught.value)

    sleeps: list[float] = []
    policy = RetryPolicy(attempts=4, sleep=sleeps.append, rng=random.Random(7))
    observed = call_with_retry(lambda: provider.observe(OWNER), policy)

    assert [s.key for s in observed] == ["shop/web/0"]
    assert len(sleeps) == 1  # one more throttled try, then success
    assert hook.remaining == [0]  # type: ignore[attr-defined]


def test_botocore_standard_retries_absorb_a_short_throttle(new_provider: Callable[..., AwsProvider]) -> None:
    provider = new_provider(max_attempts=3)
    provider.create(create_request("shop/web/0"))
    hook = throttle_hook(1, code="Throttling", status=400)
    provider.api.client.meta.events.register("before-send.ec2.DescribeInstances", hook)
    provider.calls.clear()

    assert len(provider.observe(OWNER)) == 1
    assert hook.remaining == [0]  # type: ignore[attr-defined]
    assert provider.calls == {"DescribeInstances": 1}  # one logical page, whatever botocore retried


def test_server_errors_are_transient(provider: AwsProvider) -> None:
    provider.api.client.meta.events.register(
        "before-send.ec2.DescribeInstances", throttle_hook(1, code="InternalError", status=500)
    )
    with pytest.raises(TransientError) as caught:
        provider.observe(OWNER)
    assert caught.value.code == "InternalError"


def test_connection_refused_is_transient(new_provider: Callable[..., AwsProvider]) -> None:
    provider = new_provider(endpoint_url=f"http://127.0.0.1:{free_port()}")
    with pytest.raises(TransientError) as caught:
        provider.observe(OWNER)
    assert caught.value.code == "EndpointConnectionError"


def test_bad_ami_is_permanent_with_its_message(provider: AwsProvider, ec2: Any) -> None:
    with pytest.raises(PermanentError) as caught:
        provider.create(create_request("shop/web/0", image="ami-0badbadbad"))

    assert not isinstance(caught.value, NotFoundError)
    assert caught.value.code == "InvalidAMIID.NotFound"
    assert "ami-0badbadbad" in str(caught.value)
    assert "RunInstances" not in provider.calls
    assert instance_count(ec2) == 0


def test_insufficient_capacity_is_permanent_and_not_retried(provider: AwsProvider, ec2: Any) -> None:
    hook = throttle_hook(5, code="InsufficientInstanceCapacity", status=500)
    provider.api.client.meta.events.register("before-send.ec2.RunInstances", hook)

    with pytest.raises(PermanentError) as caught:
        call_with_retry(
            lambda: provider.create(create_request("shop/web/0")), RetryPolicy(sleep=lambda _: None)
        )

    assert caught.value.code == "InsufficientInstanceCapacity"
    assert "injected InsufficientInstanceCapacity" in str(caught.value)
    assert hook.remaining == [4]  # type: ignore[attr-defined]
    assert instance_count(ec2) == 0


def test_missing_credentials_are_permanent_with_a_hint(
    new_provider: Callable[..., AwsProvider], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name)
    provider = new_provider()
    with pytest.raises(PermanentError) as caught:
        provider.observe(OWNER)
    assert caught.value.code == "NoCredentialsError"
    assert "environment variables" in str(caught.value)


def _client_error(code: str, status: int) -> ClientError:
    return ClientError(
        {
            "Error": {"Code": code, "Message": f"the {code} message"},
            "ResponseMetadata": {"HTTPStatusCode": status},
        },
        "RunInstances",
    )


@pytest.mark.parametrize(
    ("code", "status", "kind"),
    [
        ("RequestLimitExceeded", 503, TransientError),
        ("Throttling", 400, TransientError),
        ("ServiceUnavailable", 503, TransientError),
        ("SomethingNew", 502, TransientError),
        ("InsufficientInstanceCapacity", 500, PermanentError),
        ("InstanceLimitExceeded", 400, PermanentError),
        ("UnauthorizedOperation", 403, PermanentError),
        ("InvalidParameterValue", 400, PermanentError),
        ("InvalidAMIID.Malformed", 400, PermanentError),
    ],
)
def test_error_codes_map_to_the_error_tree(code: str, status: int, kind: type[Exception]) -> None:
    error = translate_error(_client_error(code, status), "RunInstances")
    assert type(error) is kind
    assert error.code == code
    assert str(error) == f"RunInstances: {code}: the {code} message"


def test_not_found_only_where_asked() -> None:
    error = _client_error("InvalidInstanceID.NotFound", 400)
    assert type(translate_error(error, "DescribeInstances", not_found=True)) is NotFoundError
    assert type(translate_error(error, "DescribeInstances")) is PermanentError


def test_spec_is_checked() -> None:
    with pytest.raises(UserError, match="region is required"):
        AwsSettings.from_spec("aws", {})
    with pytest.raises(UserError, match="instance_families"):
        AwsSettings.from_spec("aws", {"region": "us-east-1", "instance_families": ["z9"]})
    with pytest.raises(UserError, match="poll_interval"):
        AwsSettings.from_spec("aws", {"region": "us-east-1", "poll_interval": "fast"})
    settings = AwsSettings.from_spec("aws", {"region": "eu-west-1", "security_group_ids": ["sg-1"]})
    assert (settings.region, settings.security_group_ids, settings.max_attempts) == (
        "eu-west-1",
        ("sg-1",),
        3,
    )


def test_schema_has_no_place_for_keys() -> None:
    schema = AwsProvider.spec_schema
    jsonschema.Draft202012Validator.check_schema(schema)
    good = {
        "region": "us-east-1",
        "profile": "prod",
        "subnet_id": "subnet-0abc",
        "security_group_ids": ["sg-0abc"],
    }
    jsonschema.validate(good, schema)
    for bad in (
        {"region": "us-east-1", "aws_secret_access_key": "abc"},
        {"region": "us-east-1", "access_key_id": "AKIA"},
        {"region": "US East"},
        {"endpoint_url": "http://localhost:5000"},
    ):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(bad, schema)
