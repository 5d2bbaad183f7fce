"""tests.aws.cloudwatch: EC2's side of CloudWatch for the metrics tests, and sampling helpers.

moto_server only lets the tests ``PutMetricData`` the ``AWS/EC2`` datapoints EC2 would
publish (at any timestamp, where real CloudWatch takes two weeks back at most); the
provider only reads them.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from providers.aws.metrics import SETTLING_LAG
from providers.aws.provider import AwsProvider
from reconciler.core.model import MetricSample
from tests.aws.factory import NOW, OWNER

HOUR = timedelta(hours=1)


def put(cloudwatch: Any, instance_id: str, metric: str, points: list[tuple[datetime, float]]) -> None:
    """Publish ``AWS/EC2`` datapoints for one instance, as EC2 would."""
    unit = "Percent" if metric == "CPUUtilization" else "Bytes"
    cloudwatch.put_metric_data(Namespace="AWS/EC2", MetricData=[
        {"MetricName": metric, "Dimensions": [{"Name": "InstanceId", "Value": instance_id}],
         "Timestamp": moment, "Value": value, "Unit": unit}
        for moment, value in points
    ])


def minutes(count: int) -> datetime:
    return NOW + timedelta(minutes=count)


def settled(hours: int) -> datetime:
    """The first moment the hour ending ``hours`` after ``NOW`` is counted."""
    return NOW + hours * HOUR + SETTLING_LAG


def at(provider: AwsProvider, moment: datetime) -> list[MetricSample]:
    """Observe and sample at ``moment``, with the provider's call counts cleared first."""
    provider.context.clock.fixed = moment
    provider.calls.clear()
    return provider.metrics(provider.observe(OWNER))


def counters(sample: MetricSample) -> tuple[datetime, float, int, int]:
    return sample.at, sample.cpu_seconds, sample.net_rx_bytes, sample.net_tx_bytes


def start_times(provider: AwsProvider) -> list[datetime]:
    """The StartTime of every GetMetricData call the provider makes from now on (a hook that
    only looks at the parameters)."""
    seen: list[datetime] = []
    provider.api.cloudwatch.meta.events.register(
        "provide-client-params.cloudwatch.GetMetricData", lambda params, **_: seen.append(params["StartTime"])
    )
    return seen
