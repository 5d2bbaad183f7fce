"""Measured-billing counters of the AWS provider, read from moto_server's CloudWatch over HTTP.

CloudWatch's side is simulated the only way moto allows: the tests ``PutMetricData`` the
``AWS/EC2`` datapoints EC2 would publish for the instances the provider made, at known hours
of the provider's fixed clock (2026-11-02 10:00 UTC). The provider only reads them. The
memo that keeps the sums between samples is tested in ``test_metrics_memo``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from providers.aws.common import TAG_CREATED_AT, TAG_VCPUS, AwsSettings
from providers.aws.metrics import QUERIES_PER_CALL, SETTLING_LAG, VcpuHistory
from providers.aws.provider import AwsProvider
from reconciler.core.clock import isoformat
from reconciler.core.errors import TransientError, UserError
from reconciler.core.model import TAG_KEY, TAG_OWNER, ObservedServer, Size, UpdateRequest
from reconciler.core.retry import RetryPolicy
from reconciler.run.measure import sample_usage
from reconciler.store.sqlite import SQLiteStore
from tests.aws.cloudwatch import HOUR, at, counters, minutes, put, settled
from tests.aws.factory import NOW, OWNER, create_request, describe, tags_of
from tests.aws.motoserver import AMI, free_port


def test_counters_sum_settled_hours_only(provider: AwsProvider, cloudwatch: Any) -> None:
    server = provider.create(create_request("shop/web/0"))  # t3.micro: 2 vCPUs, 1 GiB, at 10:00
    iid = server.resource_id
    put(cloudwatch, iid, "CPUUtilization", [(minutes(5), 50.0), (minutes(35), 30.0), (minutes(70), 10.0),
                                            (minutes(140), 80.0)])
    put(cloudwatch, iid, "NetworkIn", [(minutes(15), 1000), (minutes(45), 500), (minutes(90), 2000),
                                       (minutes(130), 7)])
    put(cloudwatch, iid, "NetworkOut", [(NOW + HOUR, 300)])

    # 12:30: the hour 12:00–13:00 is not complete, so its datapoints do not count yet.
    [first] = at(provider, settled(2) + timedelta(minutes=15))
    assert counters(first) == (NOW + 2 * HOUR, (0.40 + 0.10) * 3600 * 2, 3500, 300)
    assert (first.provider, first.resource_id, first.key) == (provider.name, iid, "shop/web/0")
    assert (first.memory_mb, first.disk_gb) == (1024, 10)  # the type's memory: EC2 reports no use
    assert provider.calls == {"DescribeInstances": 1, "GetMetricData": 1}

    [again] = at(provider, NOW + timedelta(hours=2, minutes=59))  # same hour: the same sample
    assert counters(again) == counters(first)

    [unsettled] = at(provider, NOW + 3 * HOUR)  # 13:00: the hour just ended is not settled yet
    assert counters(unsettled) == counters(first)
    assert provider.calls == {"DescribeInstances": 1}  # the memo covers every settled hour

    [later] = at(provider, settled(3))
    assert counters(later) == (NOW + 3 * HOUR, (0.40 + 0.10 + 0.80) * 3600 * 2, 3507, 300)
    assert later.cpu_seconds >= first.cpu_seconds and later.net_rx_bytes >= first.net_rx_bytes


def test_no_datapoints_give_zero_counters(provider: AwsProvider, cloudwatch: Any) -> None:
    server = provider.create(create_request("shop/web/0"))
    put(cloudwatch, "i-0someoneelse0000", "CPUUtilization", [(NOW + timedelta(minutes=5), 99.0)])

    [sample] = at(provider, settled(5))

    assert counters(sample) == (NOW + 5 * HOUR, 0.0, 0, 0)
    assert sample.resource_id == server.resource_id


def test_a_server_younger_than_the_last_settled_hour_counts_from_its_creation(
    provider: AwsProvider, cloudwatch: Any
) -> None:
    created = NOW + timedelta(minutes=20)
    provider.context.clock.fixed = created
    server = provider.create(create_request("shop/web/0"))
    put(cloudwatch, server.resource_id, "NetworkOut", [(NOW + timedelta(minutes=30), 64)])

    assert at(provider, created - timedelta(minutes=1)) == []  # not made yet at that time
    [young] = at(provider, NOW + HOUR + SETTLING_LAG - timedelta(seconds=1))
    assert counters(young) == (created, 0.0, 0, 0)  # its counters start at zero when it is made
    assert provider.calls == {"DescribeInstances": 1}  # nothing to ask CloudWatch yet
    [sample] = at(provider, settled(1))
    assert counters(sample) == (NOW + HOUR, 0.0, 0, 64)


def test_a_server_created_on_the_hour_has_zero_counters_at_once(provider: AwsProvider) -> None:
    server = provider.create(create_request("shop/web/0"))

    [sample] = provider.metrics([server])

    assert counters(sample) == (NOW, 0.0, 0, 0)
    assert "GetMetricData" not in provider.calls  # an empty window is not asked for
    assert provider.metrics([]) == []


def test_a_stopped_server_keeps_its_counters_and_uses_no_memory(
    provider: AwsProvider, cloudwatch: Any
) -> None:
    server = provider.create(create_request("shop/web/0"))
    put(cloudwatch, server.resource_id, "NetworkIn", [(NOW + timedelta(minutes=1), 4096)])
    [running] = at(provider, settled(1))
    provider.stop(server)

    [stopped] = at(provider, settled(3))

    assert counters(stopped)[1:] == counters(running)[1:] == (0.0, 4096, 0)
    assert (running.memory_mb, stopped.memory_mb) == (1024, 0)


def test_many_servers_cost_one_call_per_500_queries(provider: AwsProvider, ec2: Any, cloudwatch: Any) -> None:
    count = 250  # 750 queries: two calls (moto's tag filter makes observing thousands slow)
    tags = {TAG_OWNER: OWNER, TAG_KEY: "big/node/0", TAG_CREATED_AT: isoformat(NOW)}
    tag_list = [{"Key": k, "Value": v} for k, v in tags.items()]
    ec2.run_instances(ImageId=AMI, MinCount=count, MaxCount=count, InstanceType="t3.micro",
                      TagSpecifications=[{"ResourceType": "instance", "Tags": tag_list}])
    observed = provider.observe(OWNER)
    assert len(observed) == count
    busy = {s.resource_id: 10.0 + n for n, s in enumerate(observed[::25])}  # a few report CPU
    for instance_id, percent in busy.items():
        put(cloudwatch, instance_id, "CPUUtilization", [(NOW + timedelta(minutes=30), percent)])
    sizes: list[int] = []
    provider.api.cloudwatch.meta.events.register(
        "provide-client-params.cloudwatch.GetMetricData",
        lambda params, **_: sizes.append(len(params["MetricDataQueries"])),
    )
    provider.context.clock.fixed = settled(1)
    provider.calls.clear()

    samples = provider.metrics(observed)

    assert sizes == [QUERIES_PER_CALL, 3 * count - QUERIES_PER_CALL]
    assert provider.calls == {"GetMetricData": 2}  # observe told it every vCPU count: no lookups
    assert len(samples) == count and {s.at for s in samples} == {NOW + HOUR}
    expected = {s.resource_id: busy.get(s.resource_id, 0.0) / 100 * 3600 * 2 for s in observed}
    assert {s.resource_id: s.cpu_seconds for s in samples} == pytest.approx(expected)
    assert all((s.net_rx_bytes, s.net_tx_bytes) == (0, 0) for s in samples)


def test_pages_of_one_batch_are_summed(provider: AwsProvider, cloudwatch: Any) -> None:
    """CloudWatch pages a large answer with NextToken; moto never does, so a hook splits moto's
    real answer into two pages (the rest handed out when the provider asks with the token)."""
    server = provider.create(create_request("shop/web/0"))
    put(cloudwatch, server.resource_id, "NetworkIn", [(NOW + n * HOUR, 100.0 * (n + 1)) for n in range(4)])
    tokens: list[str | None] = []
    rest: list[dict[str, Any]] = []

    def record(params: dict[str, Any], **_: Any) -> None:
        tokens.append(params.get("NextToken"))

    def page(parsed: dict[str, Any], **_: Any) -> None:
        if tokens[-1] is None:
            rest.extend({**r, "Timestamps": r["Timestamps"][2:], "Values": r["Values"][2:]}
                        for r in parsed["MetricDataResults"])
            for result in parsed["MetricDataResults"]:
                result.update(Timestamps=result["Timestamps"][:2], Values=result["Values"][:2],
                              StatusCode="PartialData")
            parsed["NextToken"] = "page-2"
        else:
            parsed["MetricDataResults"] = rest
            parsed.pop("NextToken", None)

    events = provider.api.cloudwatch.meta.events
    events.register("provide-client-params.cloudwatch.GetMetricData", record)
    events.register("after-call.cloudwatch.GetMetricData", page)

    [sample] = at(provider, settled(4))

    assert tokens == [None, "page-2"]
    assert provider.calls["GetMetricData"] == 2
    assert sample.net_rx_bytes == 100 + 200 + 300 + 400


def test_cpu_seconds_keep_each_hours_vcpu_count(provider: AwsProvider, ec2: Any, cloudwatch: Any) -> None:
    server = provider.create(create_request("shop/web/0", flavor="t3.medium", size=Size(2, 4096, 10)))
    put(cloudwatch, server.resource_id, "CPUUtilization",
        [(NOW + n * HOUR + timedelta(minutes=10), 50.0) for n in range(3)])
    [before] = at(provider, NOW + timedelta(hours=1, minutes=30))
    assert before.cpu_seconds == 0.5 * 3600 * 2

    provider.update(server, UpdateRequest(size=Size(4, 16384, 10), flavor="t3.xlarge", tags=server.tags))
    assert tags_of(describe(ec2, server.resource_id))[TAG_VCPUS] == "2 4@2026-11-02T11"

    [same] = at(provider, NOW + timedelta(hours=1, minutes=45))
    assert same.cpu_seconds == before.cpu_seconds  # the past hour keeps its 2 vCPUs
    [after] = at(provider, settled(3))
    assert after.cpu_seconds == 0.5 * 3600 * (2 + 4 + 4)  # 4 vCPUs from the hour of the change
    assert after.memory_mb == 16384


def test_a_type_change_of_the_same_vcpu_count_writes_no_tag(provider: AwsProvider, ec2: Any) -> None:
    server = provider.create(create_request("shop/web/0"))
    provider.update(server, UpdateRequest(size=Size(2, 2048, 10), flavor="t3.small", tags=server.tags))
    assert TAG_VCPUS not in tags_of(describe(ec2, server.resource_id))


def test_vcpu_history_round_trips_and_stays_within_a_tag() -> None:
    hour = datetime(2026, 11, 2, 11, tzinfo=UTC)
    history = VcpuHistory(2).changed(hour + timedelta(minutes=40), 4).changed(hour + 2 * HOUR, 8)
    assert history.render() == "2 4@2026-11-02T11 8@2026-11-02T13"
    assert VcpuHistory.parse(history.render()) == history
    moments = (hour - HOUR, hour, hour + HOUR, hour + 5 * HOUR)
    assert [history.at(moment) for moment in moments] == [2, 4, 4, 8]
    assert history.changed(hour + 2 * HOUR, 16).render() == "2 4@2026-11-02T11 16@2026-11-02T13"
    assert VcpuHistory.parse("not a history") is None and VcpuHistory.parse("") is None
    long = VcpuHistory(1)
    for n in range(40):
        long = long.changed(hour + n * HOUR, n + 2)
    text = long.render()
    assert len(text) <= 256 and text.endswith("41@2026-11-04T02")
    assert VcpuHistory.parse(text) is not None


def test_servers_seen_by_another_provider_object_are_looked_up_once(
    new_provider: Callable[..., AwsProvider], cloudwatch: Any
) -> None:
    maker = new_provider()
    servers = [maker.create(create_request(f"shop/web/{n}")) for n in range(3)]
    put(cloudwatch, servers[1].resource_id, "NetworkOut", [(NOW, 5)])
    reader = new_provider()
    reader.context.clock.fixed = settled(1)

    samples = reader.metrics(servers)

    assert [s.net_tx_bytes for s in samples] == [0, 5, 0]
    assert reader.calls == {"DescribeInstances": 1, "GetMetricData": 1}


def test_cloudwatch_false_samples_nothing(new_provider: Callable[..., AwsProvider]) -> None:
    provider = new_provider(cloudwatch=False)
    server = provider.create(create_request("shop/web/0"))
    provider.context.clock.fixed = NOW + HOUR
    provider.calls.clear()

    assert provider.metrics([server]) == []
    assert provider.calls == {}
    assert not provider.reports_metrics and new_provider().reports_metrics


def test_an_endpoint_without_cloudwatch_fails_sampling_not_the_caller(
    new_provider: Callable[..., AwsProvider], tmp_path: Path
) -> None:
    provider = new_provider(cloudwatch_endpoint_url=f"http://127.0.0.1:{free_port()}")
    server: ObservedServer = provider.create(create_request("shop/web/0"))
    provider.context.clock.fixed = settled(1)
    with pytest.raises(TransientError, match="cloudwatch: false") as caught:
        provider.metrics([server])
    assert caught.value.code == "EndpointConnectionError"

    store = SQLiteStore(tmp_path / "state.db")
    try:
        result = sample_usage({provider.name: provider}, [server], store, OWNER, RetryPolicy(attempts=1))
    finally:
        store.close()
    assert (result.samples, [name for name, _ in result.failed]) == (0, [provider.name])


def test_spec_turns_cloudwatch_on_by_default() -> None:
    settings = AwsSettings.from_spec("aws", {"region": "us-east-1"})
    assert (settings.cloudwatch, settings.cloudwatch_endpoint_url) == (True, None)
    custom = AwsSettings.from_spec("aws", {"region": "us-east-1", "cloudwatch": False,
                                           "cloudwatch_endpoint_url": "https://monitoring.example"})
    assert (custom.cloudwatch, custom.cloudwatch_endpoint_url) == (False, "https://monitoring.example")
    with pytest.raises(UserError, match="spec.cloudwatch must be true or false"):
        AwsSettings.from_spec("aws", {"region": "us-east-1", "cloudwatch": "yes"})
    schema = AwsProvider.spec_schema
    jsonschema.validate({"region": "us-east-1", "cloudwatch": False,
                         "cloudwatch_endpoint_url": "http://127.0.0.1:5000"}, schema)
    for bad in ({"region": "us-east-1", "cloudwatch": "no"},
                {"region": "us-east-1", "cloudwatch_endpoint_url": "monitoring"}):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(bad, schema)
    assert AwsProvider.capabilities.metrics is True
