"""The memo behind the AWS provider's counters: each sample reads only the hours since the last one.

Against moto_server's CloudWatch over HTTP, like ``test_metrics``; what CloudWatch would
no longer hand out (hours past its 455-day retention) is cut from moto's real answer by a
botocore ``after-call`` hook.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from providers.aws.memo import FORGET_AFTER, Memo, memo_path
from providers.aws.metrics import RETENTION, SETTLING_LAG, Memoized, Sums, VcpuHistory, target_of
from providers.aws.provider import AwsProvider
from reconciler.core.errors import PermanentError, TransientError
from reconciler.core.model import ObservedServer, ServerStatus, Size
from tests.aws.cloudwatch import HOUR, at, counters, minutes, put, settled, start_times
from tests.aws.factory import NOW, OWNER, create_request
from tests.aws.motoserver import throttle_hook


def busy_hours(cloudwatch: Any, instance_id: str, hours: int) -> None:
    """Datapoints in each of the first ``hours`` hours after ``NOW``, different every hour."""
    put(cloudwatch, instance_id, "CPUUtilization", [(NOW + n * HOUR + timedelta(minutes=7), 3.0 * n + 1.5)
                                                    for n in range(hours)])
    put(cloudwatch, instance_id, "NetworkIn", [(NOW + n * HOUR + timedelta(minutes=20), 1000.0 + n)
                                               for n in range(hours)])
    put(cloudwatch, instance_id, "NetworkOut", [(NOW + n * HOUR + timedelta(minutes=40), 7.0 * n)
                                                for n in range(hours)])


def memo_rows(provider: AwsProvider, *servers: ObservedServer) -> dict[str, Memoized]:
    """The provider's memo rows of those servers, as stored (read through a connection of its own)."""
    memo = Memo(memo_path(provider.context.state_dir, provider.name))
    try:
        return memo.read(s.resource_id for s in servers)
    finally:
        memo.close()


def test_a_later_sample_reads_only_the_new_hours_and_matches_a_fresh_count(
    new_provider: Callable[..., AwsProvider], cloudwatch: Any
) -> None:
    provider = new_provider()
    servers = [provider.create(create_request(f"shop/web/{n}")) for n in range(2)]
    for server in servers:
        busy_hours(cloudwatch, server.resource_id, 6)
    starts = start_times(provider)

    first = at(provider, settled(3))
    assert {s.at for s in first} == {NOW + 3 * HOUR} and starts == [NOW]
    later = at(provider, settled(6))
    assert starts == [NOW, NOW + 3 * HOUR]  # one call for both, from the memo's hour on
    assert provider.calls == {"DescribeInstances": 1, "GetMetricData": 1}
    pairs = zip(first, later, strict=True)
    assert all(b.cpu_seconds > a.cpu_seconds and b.net_rx_bytes > a.net_rx_bytes for a, b in pairs)
    rows = memo_rows(provider, *servers)
    assert {r.through for r in rows.values()} == {NOW + 6 * HOUR} and len(rows) == 2

    fresh = new_provider()  # its own (empty) memo: the whole history, as another replica would
    fresh_starts = start_times(fresh)
    assert [counters(s) for s in at(fresh, settled(6))] == [counters(s) for s in later]
    assert fresh_starts == [NOW]

    provider.close()  # a lost memo: the history is read again, to the same counters
    memo_path(provider.context.state_dir, provider.name).unlink()
    starts = start_times(provider)  # on its new client
    assert [counters(s) for s in at(provider, settled(6))] == [counters(s) for s in later]
    assert starts == [NOW]


def test_memo_totals_hold_when_early_hours_expire(
    new_provider: Callable[..., AwsProvider], cloudwatch: Any
) -> None:
    provider = new_provider()
    server = provider.create(create_request("shop/web/0"))
    busy_hours(cloudwatch, server.resource_id, 5)
    [before] = at(provider, settled(3))
    expired_until = NOW + 3 * HOUR

    def expire(parsed: dict[str, Any], **_: Any) -> None:
        """CloudWatch past its retention: the hours before ``expired_until`` are gone."""
        for result in parsed["MetricDataResults"]:
            kept = [(t, v) for t, v in zip(result["Timestamps"], result["Values"], strict=True)
                    if t.astimezone(UTC) >= expired_until]
            result.update(Timestamps=[t for t, _ in kept], Values=[v for _, v in kept])

    fresh = new_provider()
    for reader in (provider, fresh):
        reader.api.cloudwatch.meta.events.register("after-call.cloudwatch.GetMetricData", expire)

    [after] = at(provider, settled(5))
    [recount] = at(fresh, settled(5))  # no memo: the history CloudWatch still has

    new_cpu = (3 * 3 + 1.5 + 3 * 4 + 1.5) / 100 * 3600 * 2  # hours 13:00 and 14:00, 2 vCPUs
    assert after.cpu_seconds == pytest.approx(before.cpu_seconds + new_cpu)
    assert (after.net_rx_bytes, after.net_tx_bytes) == (before.net_rx_bytes + 2007, before.net_tx_bytes + 49)
    # Without the memo the counter would go down, which billing takes for a reboot:
    assert (recount.net_rx_bytes, recount.net_tx_bytes) == (2007, 49) < (before.net_rx_bytes, 0)
    assert recount.cpu_seconds == pytest.approx(new_cpu)


def test_an_hour_counts_only_once_it_settled(provider: AwsProvider, cloudwatch: Any) -> None:
    server = provider.create(create_request("shop/web/0"))
    iid = server.resource_id
    put(cloudwatch, iid, "NetworkIn", [(minutes(50), 100)])
    [early] = at(provider, NOW + HOUR + SETTLING_LAG - timedelta(seconds=1))
    assert counters(early) == (NOW, 0.0, 0, 0)
    assert "GetMetricData" not in provider.calls

    put(cloudwatch, iid, "NetworkIn", [(minutes(55), 20)])  # arrived late, but within the lag
    [first] = at(provider, settled(1))
    assert counters(first) == (NOW + HOUR, 0.0, 120, 0)

    put(cloudwatch, iid, "NetworkIn", [(minutes(59), 3), (minutes(65), 4000)])  # 10:59 comes too late
    [later] = at(provider, settled(2))
    assert counters(later) == (NOW + 2 * HOUR, 0.0, 4120, 0)  # the memo's hour is not read again


def test_a_failed_call_keeps_the_sums_of_the_servers_it_finished(
    new_provider: Callable[..., AwsProvider], cloudwatch: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("providers.aws.metrics.QUERIES_PER_CALL", 3)  # one server per call
    provider = new_provider()
    servers = [provider.create(create_request(f"shop/web/{n}")) for n in range(2)]
    for server in servers:
        busy_hours(cloudwatch, server.resource_id, 4)
    throttle = throttle_hook(1, code="ServiceUnavailable", status=503)
    sent: list[int] = []

    def second_call_fails(request: Any, **kwargs: Any) -> Any:
        sent.append(1)
        return throttle(request, **kwargs) if len(sent) == 2 else None

    provider.api.cloudwatch.meta.events.register("before-send.cloudwatch.GetMetricData", second_call_fails)
    with pytest.raises(TransientError):
        at(provider, settled(2))
    assert [r.through for r in memo_rows(provider, *servers).values()] == [NOW + 2 * HOUR]

    starts = start_times(provider)
    samples = at(provider, settled(4))
    assert sorted(starts) == [NOW, NOW + 2 * HOUR]  # the memoized server from its hour, the other anew
    assert [counters(s) for s in samples] == [counters(s) for s in at(new_provider(), settled(4))]


def test_memo_rows_of_servers_no_longer_seen_are_dropped(provider: AwsProvider, cloudwatch: Any) -> None:
    kept, gone = (provider.create(create_request(f"shop/web/{n}")) for n in range(2))
    at(provider, settled(1))  # both rows seen at settled(1)
    provider.delete(gone)
    put(cloudwatch, kept.resource_id, "NetworkOut", [(NOW + 30 * HOUR, 9)])

    at(provider, settled(1) + FORGET_AFTER - timedelta(minutes=1))
    assert set(memo_rows(provider, kept, gone)) == {kept.resource_id, gone.resource_id}
    [sample] = at(provider, settled(1) + FORGET_AFTER + timedelta(minutes=1))
    assert set(memo_rows(provider, kept, gone)) == {kept.resource_id}  # the other one not seen for too long
    assert sample.net_tx_bytes == 9


def test_a_memo_row_only_moves_forward(tmp_path: Path) -> None:
    memo = Memo(tmp_path / "state" / "aws.cloudwatch-memo.db")
    ahead = Memoized("i-1", NOW + 5 * HOUR, Sums(10.0, 20.0, 30.0))
    try:
        memo.write([ahead], seen=NOW)
        memo.write([Memoized("i-1", NOW + 2 * HOUR, Sums(1.0, 2.0, 3.0))], seen=NOW)  # a slower replica
        assert memo.read(["i-1", "i-2"]) == {"i-1": ahead}
    finally:
        memo.close()


def test_a_damaged_memo_is_a_permanent_error_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "aws.cloudwatch-memo.db"
    path.write_bytes(b"not a database at all" * 100)
    memo = Memo(path)
    with pytest.raises(PermanentError, match="cloudwatch-memo.db") as caught:
        memo.read(["i-1"])
    assert caught.value.code == "MemoDamaged"
    memo.close()


def test_windows_start_at_the_memo_hour_but_not_before_the_retention() -> None:
    end = datetime(2027, 6, 1, 10, tzinfo=UTC)
    server = ObservedServer(provider="aws", resource_id="i-1", key="shop/web/0", name="web-0", owner=OWNER,
                            status=ServerStatus.RUNNING, size=Size(2, 1024, 10), image="ami-1", spec_hash="h",
                            created_at=NOW)
    recent = Memoized("i-1", end - 2 * HOUR, Sums(1.0, 2.0, 3.0))
    old = Memoized("i-1", end - RETENTION - 9 * HOUR, Sums(1.0, 2.0, 3.0))
    for memo, start in ((recent, end - 2 * HOUR), (old, end - RETENTION)):
        target = target_of(server, end, end, "2", memo)
        assert target is not None and (target.start, target.base, target.memoized) == (start, memo.sums, True)
        assert target.vcpus == VcpuHistory(2)
