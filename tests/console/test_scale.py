"""10,000 servers: pages render server-side, one page of rows at a time, fast and small, in natural order."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from starlette.testclient import TestClient

from reconciler.console.snapshot import ConsoleSnapshot, GroupRow, ServerRow, SnapshotCache
from reconciler.core.keys import natural_key
from tests.console.support import FakeLoop, console_for, login

NOW = datetime(2026, 11, 3, 12, tzinfo=UTC)


def _snapshot(count: int) -> ConsoleSnapshot:
    rows = [
        ServerRow(
            key=f"shop/web/{i}",
            cluster="shop",
            member="shop/web",
            provider="sim",
            status="running" if i % 50 else "error",
            sync="synced" if i % 7 else "drifted",
            flavor="sim.small",
            size="1 vCPU, 1024 MB, 10 GB",
            addresses=(f"10.0.{i // 256}.{i % 256}",),
            created_at=NOW - timedelta(hours=i % 100),
            resource_id=f"sim-{i:05d}",
            hourly=(("USD", Decimal("0.0104")),),
            last_change=NOW - timedelta(minutes=i % 60),
            last_action="create",
        )
        for i in range(count)
    ]
    rows.sort(key=lambda r: natural_key(r.key))
    group = GroupRow(
        "sim",
        "shop",
        (("running", count - count // 50), ("error", count // 50)),
        synced=count - count // 7,
        drifted=count // 7,
        pending=0,
        hourly=(("USD", Decimal("0.0104") * count),),
        desired_hourly=(("USD", Decimal(104)),),
    )
    return ConsoleSnapshot(
        taken_at=NOW,
        seconds=1.0,
        deployment="infra",
        source="infra",
        rows=tuple(rows),
        groups=(group,),
        loaded=True,
    )


def test_ten_thousand_servers_page_fast_and_small(write_state, hash_env, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    folder = write_state()
    console = console_for(folder, tmp_path / "state", FakeLoop(folder))
    big = _snapshot(10_000)
    cache = SnapshotCache(lambda: big, max_age=3600)
    cache.access, cache.access_loaded = console.runtime.cache.access, True
    console.runtime.cache = cache
    with TestClient(console.app) as client:
        login(client, "alice")
        first = client.get("/")
        assert first.status_code == 200
        keys = re.findall(r'<tr class="sync-\w+" data-key="([^"]+)">', first.text)
        assert keys[:12] == [f"shop/web/{i}" for i in range(12)]  # web/2 before web/10
        for path in (
            "/?page=137",
            "/?page=200&per_page=50",
            "/?sync=drifted&page=9",
            "/?q=web/99",
            "/api/v1/servers?page=150",
            "/clusters/shop?page=3",
        ):
            client.get(path)  # warm
            started = time.perf_counter()
            answer = client.get(path)
            elapsed = time.perf_counter() - started
            assert answer.status_code == 200, path
            assert elapsed < 0.3, f"{path} took {elapsed:.3f} s"
            assert len(answer.content) < 200_000, f"{path} is {len(answer.content)} bytes"
        last = client.get("/?page=200")
        assert "shop/web/9999" in last.text and "10000 servers" in last.text
        assert 'id="next-page"' not in last.text and 'id="next-page"' in first.text


def test_a_usage_report_of_thousands_of_servers_fits_a_page() -> None:
    from reconciler.billing.modes import Ledger
    from reconciler.cli.console import MAX_FRAGMENT, usage_fragment
    from reconciler.core.model import Size
    from reconciler.core.records import UsageInterval

    start = datetime(2026, 11, 1, tzinfo=UTC)
    intervals = [
        UsageInterval(
            "infra",
            "sim",
            f"sim-{i:05d}",
            f"shop/web/{i}",
            "sim.small",
            Size(1, 1024, 10),
            start,
            None,
            Decimal("0.0104"),
            "USD",
            "standard",
        )
        for i in range(3000)
    ]
    ledger = Ledger(start, start + timedelta(days=2), start + timedelta(days=2), intervals)
    small = usage_fragment(ledger.only(intervals[:5]), "server", "instance-hours")
    assert "<h2>Line items</h2>" in small and "shop/web/4" in small
    big = usage_fragment(ledger, "server", "instance-hours")
    assert len(big) <= MAX_FRAGMENT + 200 and 'id="report-cut"' in big and "<svg" in big
