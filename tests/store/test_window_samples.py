"""``Store.window_samples``: a window's samples and each server's baseline, by index, on both stores."""

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta

import pytest

from reconciler.core.model import MetricSample
from reconciler.store.base import Store

from .conftest import Backend
from .helpers import T0

H = timedelta(hours=1)


def _sample(resource_id: str, at: datetime, cpu: float) -> MetricSample:
    return MetricSample(provider="sim", resource_id=resource_id, key=f"shop/web/{resource_id}", at=at,
                        cpu_seconds=cpu, memory_mb=1024, net_rx_bytes=int(cpu * 10), net_tx_bytes=0,
                        disk_gb=20)


def _fill(store: Store) -> None:
    # i-1: hourly for two days; i-2: only before 30 h; i-3: first sampled at 33 h;
    # i-4 in another deployment, hourly like i-1
    store.add_samples("prod", [_sample("i-1", T0 + n * H, float(n)) for n in range(48)])
    store.add_samples("prod", [_sample("i-2", T0 + n * H, float(n)) for n in range(0, 30, 5)])
    store.add_samples("prod", [_sample("i-3", T0 + n * H, float(n)) for n in range(33, 40)])
    store.add_samples("staging", [_sample("i-4", T0 + n * H + timedelta(minutes=1), 1.0) for n in range(48)])


def _unbounded(store: Store, start: datetime, end: datetime, deployment: str | None) -> list[MetricSample]:
    """The base class's reference: every sample up to the end, filtered in Python."""
    return Store.window_samples(store, start=start, end=end, deployment=deployment)


def test_window_is_the_samples_inside_and_one_baseline_per_server(store: Store) -> None:
    _fill(store)
    start, end = T0 + 32 * H + timedelta(minutes=30), T0 + 35 * H
    found = store.window_samples(start=start, end=end, deployment="prod")
    assert [(s.resource_id, s.at) for s in found] == [
        ("i-1", T0 + 32 * H),  # i-1's baseline: its last sample before the window
        ("i-1", T0 + 33 * H), ("i-3", T0 + 33 * H),
        ("i-1", T0 + 34 * H), ("i-3", T0 + 34 * H),
        ("i-1", T0 + 35 * H), ("i-3", T0 + 35 * H),  # a sample at the end closes the window
    ]  # i-2 has no sample in the window: none of it is read; i-3 has none before it: no baseline
    assert found[0].cpu_seconds == 32.0 and found[0].key == "shop/web/i-1"


WINDOWS = [(0, 48), (5, 6), (29.5, 31), (32, 40), (33, 34), (47, 60), (100, 101)]


@pytest.mark.parametrize("deployment", ["prod", "staging", None])
@pytest.mark.parametrize(("start_h", "end_h"), WINDOWS)
def test_same_samples_as_the_unbounded_read(
    store: Store, deployment: str | None, start_h: float, end_h: float
) -> None:
    _fill(store)
    start, end = T0 + start_h * H, T0 + end_h * H
    assert store.window_samples(start=start, end=end, deployment=deployment) == _unbounded(
        store, start, end, deployment
    )


def test_the_query_uses_the_indexes(backend: Backend, store: Store) -> None:
    """The window is an index range on ``at``, each baseline a seek in the primary key: no full scan."""
    _fill(store)
    start, end = T0 + 10 * H, T0 + 12 * H
    if backend.name == "sqlite":
        from reconciler.store.sqlite import WINDOW_SAMPLES_SQL

        path = backend.url.removeprefix("sqlite:///")
        lite = sqlite3.connect(path)
        try:
            plan = [row[3] for row in lite.execute(
                "EXPLAIN QUERY PLAN " + WINDOW_SAMPLES_SQL.format(only=" AND deployment = ?",
                                                                  only_p=" AND p.deployment = ?"),
                [start.isoformat(), end.isoformat(), "prod", start.isoformat(), "prod"],
            )]
        finally:
            lite.close()
        assert any("USING INDEX usage_sample_at" in step for step in plan), plan
        assert any("INDEX sqlite_autoindex_usage_sample_1 (provider=? AND resource_id=? AND at<?)" in step
                   for step in plan), plan
        assert not any(step.startswith(("SCAN usage_sample", "SCAN p")) for step in plan), plan
        return
    import psycopg

    from reconciler.store.postgres import WINDOW_SAMPLES_SQL as PG_SQL

    with psycopg.connect(backend.url) as conn:
        conn.execute("SET enable_seqscan = off")  # tiny tables: make the planner show the index path
        plan = [str(row[0]) for row in conn.execute(
            "EXPLAIN " + PG_SQL.format(only=" AND deployment = %s", only_p=" AND p.deployment = %s"),
            [start, end, "prod", start, "prod"],
        )]
    text = "\n".join(plan)
    assert "usage_sample_at" in text and "Index Scan Backward using usage_sample_pkey" in text, text
    assert "Seq Scan on usage_sample" not in text, text
