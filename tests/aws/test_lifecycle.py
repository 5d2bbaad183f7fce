"""AWS provider life cycle against moto_server: create, observe, no-op, update, replace, delete.

Results are checked through boto3 directly (tags, instance type, user data, root volume),
not only through the provider's own observe.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

import pytest

from providers.aws.provider import AwsProvider
from reconciler.core.errors import NotFoundError, PermanentError, TransientError
from reconciler.core.model import (
    TAG_CLUSTER,
    TAG_GENERATION,
    TAG_KEY,
    TAG_MEMBER,
    TAG_OWNER,
    TAG_SPEC_HASH,
    TAG_TOKEN,
    ObservedServer,
    ServerStatus,
    Size,
    UpdateRequest,
)
from reconciler.core.retry import RetryPolicy, call_with_retry
from tests.aws.factory import NOW, OWNER, SMALL, create_request, describe, tags_of
from tests.aws.motoserver import AMI

MUTATING = (
    "RunInstances",
    "CreateTags",
    "DeleteTags",
    "StopInstances",
    "StartInstances",
    "ModifyInstanceAttribute",
    "TerminateInstances",
)


def mutations(provider: AwsProvider) -> dict[str, int]:
    return {op: n for op, n in provider.calls.items() if op in MUTATING}


def test_create_tags_user_data_and_root_volume(provider: AwsProvider, ec2: Any) -> None:
    request = create_request("shop/web/0", user_data="#!/bin/sh\necho hello > /tmp/hello\n")
    server = provider.create(request)

    instance = describe(ec2, server.resource_id)
    tags = tags_of(instance)
    assert tags[TAG_OWNER] == OWNER
    assert tags[TAG_KEY] == "shop/web/0"
    assert tags[TAG_SPEC_HASH] == "hash0"
    assert tags[TAG_GENERATION] == "0"
    assert tags[TAG_TOKEN] == request.token
    assert (tags[TAG_CLUSTER], tags[TAG_MEMBER]) == ("shop", "web")
    assert tags["team"] == "web"
    assert tags["Name"] == "shop-web-0"
    assert instance["InstanceType"] == "t3.micro"
    assert instance["ImageId"] == AMI

    attribute = ec2.describe_instance_attribute(InstanceId=server.resource_id, Attribute="userData")
    assert base64.b64decode(attribute["UserData"]["Value"]).decode() == request.user_data

    root = instance["BlockDeviceMappings"][0]["Ebs"]["VolumeId"]
    volume = ec2.describe_volumes(VolumeIds=[root])["Volumes"][0]
    assert volume["Size"] == 10
    assert tags_of(volume)[TAG_OWNER] == OWNER

    assert server.key == "shop/web/0"
    assert server.status in (ServerStatus.PENDING, ServerStatus.RUNNING)
    assert server.token == request.token


def test_observe_reports_what_was_created(provider: AwsProvider, ec2: Any) -> None:
    created = provider.create(create_request("shop/web/0"))
    provider.calls.clear()

    [server] = provider.observe(OWNER)

    assert provider.calls == {"DescribeInstances": 1}
    assert server.resource_id == created.resource_id
    assert server.status is ServerStatus.RUNNING
    assert server.size == Size(cpus=2, memory_mb=1024, disk_gb=10)
    assert server.flavor == "t3.micro"
    assert server.image == AMI
    assert server.spec_hash == "hash0"
    assert server.name == "shop-web-0"
    assert server.owner == OWNER
    assert server.tags == (("team", "web"),)  # no reconciler marks, no Name we set ourselves
    assert server.created_at is not None and server.created_at.tzinfo is not None
    assert server.addresses


def test_observe_sees_only_its_owner(provider: AwsProvider, ec2: Any) -> None:
    provider.create(create_request("shop/web/0"))
    provider.create(create_request("shop/web/0", owner="someone-else"))
    ec2.run_instances(ImageId=AMI, MinCount=1, MaxCount=1, InstanceType="t3.micro")  # untagged

    assert [s.owner for s in provider.observe(OWNER)] == [OWNER]
    assert len(provider.observe("nobody")) == 0


def test_stopped_and_terminated_states_map(provider: AwsProvider, ec2: Any) -> None:
    web = provider.create(create_request("shop/web/0"))
    db = provider.create(create_request("shop/db/0"))
    ec2.stop_instances(InstanceIds=[web.resource_id])
    ec2.terminate_instances(InstanceIds=[db.resource_id])

    observed = provider.observe(OWNER)

    assert [(s.key, s.status) for s in observed] == [("shop/web/0", ServerStatus.STOPPED)]


def test_second_observe_and_same_update_change_nothing(provider: AwsProvider) -> None:
    provider.create(create_request("shop/web/0"))
    [first] = provider.observe(OWNER)
    [second] = provider.observe(OWNER)
    assert first == second

    provider.calls.clear()
    again = provider.update(first, UpdateRequest(size=first.size, flavor="t3.micro", tags=first.tags))

    assert again == first
    assert mutations(provider) == {}


def test_lost_create_response_then_rerun_makes_one_instance(
    provider: AwsProvider, new_provider: Callable[..., AwsProvider], ec2: Any
) -> None:
    """The crash case: RunInstances succeeded but its answer never arrived."""
    request = create_request("shop/web/0")

    def lose_response(**_: Any) -> None:
        from botocore.exceptions import ConnectionClosedError

        raise ConnectionClosedError(endpoint_url="moto")

    provider.api.client.meta.events.register("after-call.ec2.RunInstances", lose_response)
    with pytest.raises(TransientError):
        provider.create(request)

    # A fresh process resolves its intent by looking the token up, then re-runs the create.
    rerun = new_provider()
    found = rerun.lookup(OWNER, request.token)
    assert found is not None
    again = rerun.create(request)

    assert again.resource_id == found.resource_id
    assert "RunInstances" not in rerun.calls
    reply = ec2.describe_instances(Filters=[{"Name": f"tag:{TAG_TOKEN}", "Values": [request.token]}])
    assert sum(len(r["Instances"]) for r in reply["Reservations"]) == 1


def test_moto_ignores_client_token_so_the_tag_lookup_matters(ec2: Any) -> None:
    """Why create looks up the token tag: this endpoint makes a second instance for the same token."""
    for _ in range(2):
        ec2.run_instances(ImageId=AMI, MinCount=1, MaxCount=1, ClientToken="same-token")
    reply = ec2.describe_instances()
    assert sum(len(r["Instances"]) for r in reply["Reservations"]) == 2


def test_lookup_of_unknown_token_is_none(provider: AwsProvider) -> None:
    provider.create(create_request("shop/web/0"))
    assert provider.lookup(OWNER, "0" * 32) is None
    assert provider.lookup("other-owner", create_request("shop/web/0").token) is None


def test_update_tags_in_place(provider: AwsProvider, ec2: Any) -> None:
    server = provider.create(create_request("shop/web/0", tags=(("team", "web"), ("tier", "front"))))
    provider.calls.clear()

    updated = provider.update(
        server, UpdateRequest(size=SMALL, flavor="t3.micro", tags=(("env", "prod"), ("team", "api")))
    )

    tags = tags_of(describe(ec2, server.resource_id))
    assert tags["team"] == "api" and tags["env"] == "prod" and "tier" not in tags
    assert tags[TAG_OWNER] == OWNER and tags["Name"] == "shop-web-0"
    assert updated.tags == (("env", "prod"), ("team", "api"))
    assert "StopInstances" not in provider.calls
    [observed] = provider.observe(OWNER)
    assert observed.tags == updated.tags


def test_user_name_tag_replaces_ours_and_back(provider: AwsProvider, ec2: Any) -> None:
    server = provider.create(create_request("shop/web/0"))

    named = provider.update(
        server, UpdateRequest(size=SMALL, flavor="t3.micro", tags=(("Name", "frontend"),))
    )
    assert tags_of(describe(ec2, server.resource_id))["Name"] == "frontend"
    assert named.tags == (("Name", "frontend"),)

    plain = provider.update(named, UpdateRequest(size=SMALL, flavor="t3.micro", tags=()))
    assert tags_of(describe(ec2, server.resource_id))["Name"] == "shop-web-0"
    assert plain.tags == ()
    assert provider.observe(OWNER)[0].tags == ()


def test_update_instance_type_stops_modifies_and_starts(provider: AwsProvider, ec2: Any) -> None:
    server = provider.create(create_request("shop/web/0"))
    provider.calls.clear()

    bigger = Size(cpus=2, memory_mb=2048, disk_gb=10)
    updated = provider.update(server, UpdateRequest(size=bigger, flavor="t3.small", tags=server.tags))

    instance = describe(ec2, server.resource_id)
    assert instance["InstanceType"] == "t3.small"
    assert instance["State"]["Name"] == "running"
    assert mutations(provider) == {"StopInstances": 1, "ModifyInstanceAttribute": 1, "StartInstances": 1}
    assert updated.flavor == "t3.small" and updated.size == bigger
    assert updated.resource_id == server.resource_id


def test_update_by_size_alone_picks_the_smallest_fitting_type(provider: AwsProvider, ec2: Any) -> None:
    server = provider.create(create_request("shop/web/0", flavor=None, size=Size(2, 3000, 10)))
    assert describe(ec2, server.resource_id)["InstanceType"] == "t3.medium"

    updated = provider.update(server, UpdateRequest(size=Size(4, 8192, 10), flavor=None, tags=server.tags))

    assert describe(ec2, server.resource_id)["InstanceType"] == "c6i.xlarge"
    assert updated.size == Size(cpus=4, memory_mb=8192, disk_gb=10)


def test_type_change_without_restart_is_permanent(provider: AwsProvider, ec2: Any) -> None:
    server = provider.create(create_request("shop/web/0"))

    with pytest.raises(PermanentError) as caught:
        provider.update(
            server, UpdateRequest(size=SMALL, flavor="t3.large", tags=server.tags, allow_restart=False)
        )

    assert caught.value.code == "RestartNotAllowed"
    instance = describe(ec2, server.resource_id)
    assert (instance["InstanceType"], instance["State"]["Name"]) == ("t3.micro", "running")


def test_replacement_generation_coexists_then_old_is_deleted(provider: AwsProvider, ec2: Any) -> None:
    old = provider.create(create_request("shop/web/0"))
    new = provider.create(create_request("shop/web/0", generation=1, spec_hash="hash1"))

    both = provider.observe(OWNER)
    assert [(s.key, s.generation, s.name) for s in both] == [
        ("shop/web/0", 0, "shop-web-0"),
        ("shop/web/0", 1, "shop-web-0-g1"),
    ]

    provider.delete(old)

    [left] = provider.observe(OWNER)
    assert (left.resource_id, left.spec_hash) == (new.resource_id, "hash1")
    assert describe(ec2, old.resource_id)["State"]["Name"] == "terminated"


def test_delete_waits_and_is_idempotent(provider: AwsProvider, ec2: Any) -> None:
    server = provider.create(create_request("shop/web/0"))

    provider.delete(server)
    assert describe(ec2, server.resource_id)["State"]["Name"] == "terminated"
    assert provider.observe(OWNER) == []

    provider.calls.clear()
    provider.delete(server)
    assert "TerminateInstances" not in provider.calls


def test_never_touches_an_instance_it_does_not_own(provider: AwsProvider, ec2: Any) -> None:
    reply = ec2.run_instances(ImageId=AMI, MinCount=1, MaxCount=1, InstanceType="t3.micro")
    foreign_id = reply["Instances"][0]["InstanceId"]
    impostor = ObservedServer(
        provider="aws-test",
        resource_id=foreign_id,
        key="shop/web/0",
        name="shop-web-0",
        owner=OWNER,
        status=ServerStatus.RUNNING,
        size=SMALL,
        image=AMI,
        spec_hash="hash0",
        created_at=NOW,
    )

    for action in (
        lambda: provider.delete(impostor),
        lambda: provider.update(impostor, UpdateRequest(size=SMALL, flavor="t3.large", tags=())),
        lambda: provider.stop(impostor),
    ):
        with pytest.raises(PermanentError) as caught:
            action()
        assert caught.value.code == "NotOwned"
    assert describe(ec2, foreign_id)["State"]["Name"] == "running"
    assert mutations(provider) == {}


def test_stop_and_start(provider: AwsProvider, ec2: Any) -> None:
    server = provider.create(create_request("shop/web/0"))

    stopped = provider.stop(server)
    assert stopped.status is ServerStatus.STOPPED
    assert describe(ec2, server.resource_id)["State"]["Name"] == "stopped"

    started = provider.start(stopped)
    assert started.status is ServerStatus.RUNNING
    assert describe(ec2, server.resource_id)["State"]["Name"] == "running"


def test_operations_on_a_vanished_instance(provider: AwsProvider, ec2: Any) -> None:
    server = provider.create(create_request("shop/web/0"))
    ec2.terminate_instances(InstanceIds=[server.resource_id])

    with pytest.raises(NotFoundError):
        provider.update(server, UpdateRequest(size=SMALL, flavor="t3.micro", tags=()))
    provider.delete(server)  # already gone: nothing to do


def test_create_is_retried_safely_by_the_engine_policy(provider: AwsProvider, ec2: Any) -> None:
    request = create_request("shop/web/0")
    sleeps: list[float] = []
    policy = RetryPolicy(attempts=3, sleep=sleeps.append)

    first = call_with_retry(lambda: provider.create(request), policy)
    second = call_with_retry(lambda: provider.create(request), policy)

    assert first.resource_id == second.resource_id
    assert provider.calls["RunInstances"] == 1
    assert sleeps == []
