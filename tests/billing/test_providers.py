"""Measured billing on every provider that reports metrics, through its conformance backend.

Each backend of the shared conformance suite (simcloud, the XAPI simulator, libvirt's test
driver… whatever is installed here) makes a server; ``measure.sample_usage`` samples it at
two instants an hour apart into a real SQLite store, and the measured report prices the
samples. Providers without metrics are skipped, naming the reason.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from reconciler.billing.measured import build_measured_report
from reconciler.core.model import PriceList
from reconciler.core.provider import Provider
from reconciler.core.records import UsageInterval
from reconciler.core.retry import RetryPolicy
from reconciler.run.measure import sample_usage
from reconciler.store.sqlite import SQLiteStore
from tests.conformance.backend import FIXED_NOW, Backend
from tests.conformance.conftest import BACKEND_PARAMS
from tests.conformance.helpers import make_request

PRICES = PriceList(name="p", currency="USD", vcpu_hour=Decimal("0.02"), ram_gb_hour=Decimal("0.005"),
                   disk_gb_month=Decimal("0.10"), network_gb=Decimal("0.09"))
OWNER = "billing-measured"


@pytest.fixture(scope="module", params=BACKEND_PARAMS)
def backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    chosen: Backend = request.param
    yield chosen
    chosen.close()  # backends start again lazily if the conformance suite uses them later


# The second sample's time: an hour and a half on (CloudWatch hours count once settled).
LATER = timedelta(hours=1, minutes=30)


@pytest.fixture
def provider(backend: Backend, tmp_path: Path) -> Iterator[Provider]:
    made = backend.make_provider(tmp_path / "provider")
    if not type(made).capabilities.metrics:
        made.close()
        pytest.skip(f"{backend.name}: provider type {made.config.type!r} reports no metrics")
    try:
        yield made
    finally:
        for server in made.observe(OWNER):
            made.delete(server)
        made.close()


def test_samples_are_stored_and_priced(backend: Backend, provider: Provider, tmp_path: Path) -> None:
    provider.create(make_request(backend, OWNER, "shop/web/0"))
    observed = provider.observe(OWNER)
    assert len(observed) == 1
    server = observed[0]
    store = SQLiteStore(tmp_path / "state.db")
    try:
        clock = provider.context.clock
        start = clock.now()
        first = sample_usage({provider.name: provider}, observed, store, OWNER, RetryPolicy(attempts=1))
        clock.fixed = start + LATER  # past AWS's settling lag: the hour in between is counted
        second = sample_usage({provider.name: provider}, observed, store, OWNER, RetryPolicy(attempts=1))
        assert (first.samples, second.samples, first.failed, second.failed) == (1, 1, (), ())
        samples = store.samples(deployment=OWNER)
        assert [(s.key, s.resource_id) for s in samples] == [(server.key, server.resource_id)] * 2
        assert all(s.cpu_seconds >= 0 and s.net_rx_bytes >= 0 and s.net_tx_bytes >= 0 and s.memory_mb >= 0
                   for s in samples)
        before, after = samples  # no reboot in between: cumulative counters never go down
        assert timedelta(hours=1) <= after.at - before.at <= LATER  # EC2 stamps the last settled hour
        assert after.cpu_seconds >= before.cpu_seconds and after.net_rx_bytes >= before.net_rx_bytes
        interval = UsageInterval(deployment=OWNER, provider=provider.name, resource_id=server.resource_id,
                                 key=server.key, flavor=server.flavor, size=server.size, start=start)
        window = {"start": start - timedelta(days=1), "end": start + timedelta(days=1)}
        measured = build_measured_report(samples, [interval], by="server", now=after.at,
                                         prices=lambda name: PRICES, **window)
        (row,) = measured.report.rows
        assert row.group == "shop/web/0" and row.currency == "USD"
        assert all(line.quantity >= 0 and line.cost >= 0 for line in row.lines)
        assert "disk" in {line.item for line in row.lines}
        assert measured.report.totals[0].cents == sum((line.cents for line in row.lines), Decimal(0))
        assert [gap.kind.value for gap in measured.gaps] == []  # sampled up to "now"
    finally:
        store.close()
    assert clock.now() == FIXED_NOW + LATER
