"""The usage ledger (intervals, samples) and provider-scope leases of the SQLite store."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal

from reconciler.core.model import MetricSample, Size
from reconciler.core.records import UsageInterval
from reconciler.store.base import Store

from .helpers import T0

H = timedelta(hours=1)


def _interval(resource_id: str = "i-1", **overrides: object) -> UsageInterval:
    fields: dict[str, object] = {
        "deployment": "prod", "provider": "sim", "resource_id": resource_id, "key": "shop/web/0",
        "flavor": "small", "size": Size(2, 4096, 20), "start": T0,
        "hourly_rate": Decimal("0.0416"), "currency": "EUR", "price_list": "sim-prices",
    }
    fields.update(overrides)
    return UsageInterval(**fields)  # type: ignore[arg-type]


def test_open_interval_round_trips_exact_decimal(store: Store, reopen: Callable[[], Store]) -> None:
    opened = store.open_interval(_interval(hourly_rate=Decimal("0.10000000000000000001")))
    assert opened.id is not None
    store.close()
    again = reopen()
    [back] = again.open_intervals("prod")
    again.close()
    assert back == opened
    assert back.hourly_rate == Decimal("0.10000000000000000001")
    assert (back.size, back.flavor, back.start, back.end) == (Size(2, 4096, 20), "small", T0, None)


def test_open_interval_is_idempotent_per_resource(store: Store) -> None:
    first = store.open_interval(_interval())
    again = store.open_interval(_interval(start=T0 + H, flavor="large"))
    assert again == first  # the running interval is returned, not a second one
    other = store.open_interval(_interval("i-2"))
    assert other.id != first.id
    assert [i.resource_id for i in store.open_intervals("prod")] == ["i-1", "i-2"]
    # The same resource id at another provider is another resource.
    store.open_interval(_interval(provider="aws"))
    assert len(store.open_intervals("prod")) == 3


def test_close_interval_and_reopen(store: Store) -> None:
    store.open_interval(_interval())
    closed = store.close_interval("sim", "i-1", end=T0 + 2 * H)
    assert closed is not None and closed.end == T0 + 2 * H and closed.start == T0
    assert store.open_intervals("prod") == []
    assert store.close_interval("sim", "i-1", end=T0 + 3 * H) is None  # nothing open any more
    assert store.close_interval("sim", "never", end=T0) is None
    # A resize: close and open a new interval for the same resource.
    reopened = store.open_interval(_interval(start=T0 + 2 * H, size=Size(4, 8192, 20)))
    assert reopened.id != closed.id
    assert [(i.start, i.end) for i in store.intervals()] == [(T0, T0 + 2 * H), (T0 + 2 * H, None)]


def test_close_before_start_clamps_to_an_empty_span(store: Store) -> None:
    store.open_interval(_interval())
    closed = store.close_interval("sim", "i-1", end=T0 - H)
    assert closed is not None and closed.end == T0


def test_intervals_overlapping_a_window(store: Store) -> None:
    store.open_interval(_interval("before", start=T0 - 5 * H))
    store.close_interval("sim", "before", end=T0)  # ends exactly at the window start: excluded
    store.open_interval(_interval("inside", start=T0 + H))
    store.close_interval("sim", "inside", end=T0 + 2 * H)
    store.open_interval(_interval("across", start=T0 - H))
    store.close_interval("sim", "across", end=T0 + 30 * H)
    store.open_interval(_interval("running", start=T0 - 10 * H))
    store.open_interval(_interval("after", start=T0 + 24 * H))  # starts at the window end: excluded
    store.open_interval(_interval("elsewhere", start=T0 + H, deployment="staging"))
    found = store.intervals(start=T0, end=T0 + 24 * H, deployment="prod")
    assert sorted(i.resource_id for i in found) == ["across", "inside", "running"]
    assert len(store.intervals()) == 6
    assert len(store.intervals(start=T0, end=T0 + 24 * H)) == 4


def test_samples(store: Store) -> None:
    def sample(resource_id: str, hours: int, cpu: float) -> MetricSample:
        return MetricSample(provider="sim", resource_id=resource_id, key="shop/web/0", at=T0 + hours * H,
                            cpu_seconds=cpu, memory_mb=2048, net_rx_bytes=10 * hours, net_tx_bytes=5,
                            disk_gb=20)

    store.add_samples("prod", [sample("i-1", 0, 1.5), sample("i-1", 1, 3600.25), sample("i-2", 2, 7.0)])
    store.add_samples("prod", [sample("i-1", 1, 9999.0)])  # same resource and instant: ignored
    store.add_samples("staging", [sample("i-9", 1, 1.0)])
    assert [s.cpu_seconds for s in store.samples(deployment="prod")] == [1.5, 3600.25, 7.0]
    window = store.samples(start=T0 + H, end=T0 + 2 * H)
    assert [(s.resource_id, s.net_rx_bytes) for s in window] == [("i-1", 10), ("i-9", 10)]
    assert window[0] == sample("i-1", 1, 3600.25)


def test_lease_lifecycle(store: Store) -> None:
    first = store.acquire_lease("sim", "daemon-a", ttl_seconds=60, now=T0)
    assert first is not None and first.epoch == 1 and first.expires_at == T0 + timedelta(seconds=60)
    # Another holder is refused while the lease lives.
    assert store.acquire_lease("sim", "daemon-b", ttl_seconds=60, now=T0 + timedelta(seconds=59)) is None
    # Renewal by the holder keeps the epoch and moves the expiry.
    renewed = store.acquire_lease("sim", "daemon-a", ttl_seconds=60, now=T0 + timedelta(seconds=30))
    assert renewed is not None and renewed.epoch == 1
    assert renewed.expires_at == T0 + timedelta(seconds=90)
    assert store.acquire_lease("sim", "daemon-b", ttl_seconds=60, now=T0 + timedelta(seconds=89)) is None
    # Once it expires, someone else takes it with a higher epoch.
    taken = store.acquire_lease("sim", "daemon-b", ttl_seconds=60, now=T0 + timedelta(seconds=90))
    assert taken is not None and taken.holder == "daemon-b" and taken.epoch == 2
    # Scopes are independent.
    other = store.acquire_lease("aws", "daemon-a", ttl_seconds=60, now=T0 + timedelta(seconds=90))
    assert other is not None and other.epoch == 1


def test_expired_own_lease_moves_to_a_new_epoch(store: Store) -> None:
    store.acquire_lease("sim", "a", ttl_seconds=10, now=T0)
    again = store.acquire_lease("sim", "a", ttl_seconds=10, now=T0 + timedelta(seconds=10))
    assert again is not None and again.epoch == 2


def test_release_frees_the_lease_and_keeps_the_epoch_rising(store: Store) -> None:
    lease = store.acquire_lease("sim", "a", ttl_seconds=3600, now=T0)
    assert lease is not None
    store.release_lease(lease)
    taken = store.acquire_lease("sim", "b", ttl_seconds=60, now=T0 + timedelta(seconds=1))
    assert taken is not None and taken.epoch == 2
    # Releasing a lease we no longer hold does nothing to the new holder's lease.
    store.release_lease(lease)
    assert store.acquire_lease("sim", "a", ttl_seconds=60, now=T0 + timedelta(seconds=2)) is None


def test_leases_are_shared_between_store_instances(reopen: Callable[[], Store]) -> None:
    one, two = reopen(), reopen()
    try:
        assert one.acquire_lease("sim", "a", ttl_seconds=60, now=T0) is not None
        assert two.acquire_lease("sim", "b", ttl_seconds=60, now=T0) is None
    finally:
        one.close()
        two.close()
