"""Store methods added beside the core ledgers — backup intervals, recent_audit — agree on both stores."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from reconciler.core.records import AuditAction, AuditRecord, BackupInterval, Outcome
from reconciler.store import open_store
from reconciler.store.base import Store

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
H = timedelta(hours=1)


@pytest.fixture
def store(any_url: str) -> Iterator[Store]:
    s = open_store(Path("unused"), any_url)
    yield s
    s.close()


def _backup(snapshot_id: str, **overrides: object) -> BackupInterval:
    fields: dict[str, object] = {
        "deployment": "prod", "provider": "sim", "snapshot_id": snapshot_id, "key": "shop/db/0",
        "policy": "nightly", "size_gb": 12.5, "start": T0, "gb_month_rate": Decimal("0.0500000000001"),
        "currency": "EUR", "price_list": "standard",
    }
    fields.update(overrides)
    return BackupInterval(**fields)  # type: ignore[arg-type]


def test_backup_intervals(store: Store) -> None:
    first = store.open_backup_interval(_backup("snap-1"))
    assert first.id is not None
    assert store.open_backup_interval(_backup("snap-1", size_gb=99.0)).id == first.id  # one open per backup
    store.open_backup_interval(_backup("snap-2", start=T0 + H))
    store.open_backup_interval(_backup("snap-3", start=T0 + 30 * H, deployment="staging"))
    closed = store.close_backup_interval("sim", "snap-1", end=T0 - H)  # before its start: an empty span
    assert closed is not None and closed.end == T0
    assert store.close_backup_interval("sim", "snap-1", end=T0 + H) is None
    assert store.close_backup_interval("sim", "never", end=T0) is None
    every = store.backup_intervals()
    assert [(b.snapshot_id, b.start, b.end) for b in every] == [
        ("snap-1", T0, T0), ("snap-2", T0 + H, None), ("snap-3", T0 + 30 * H, None)
    ]
    assert every[1].gb_month_rate == Decimal("0.0500000000001") and every[1].size_gb == 12.5
    window = store.backup_intervals(start=T0 + H, end=T0 + 24 * H, deployment="prod")
    assert [b.snapshot_id for b in window] == ["snap-2"]


def test_recent_audit_newest_first_with_filters(store: Store) -> None:
    def add(action: AuditAction, key: str, minutes: int) -> None:
        store.append(
            AuditRecord(deployment="prod", run_id="r", actor="a", action=action, outcome=Outcome.INFO,
                        key=key, detail=f"{action.value} {key} {minutes}"),
            at=T0 + timedelta(minutes=minutes),
        )

    add(AuditAction.SCALE, "shop/web", 0)
    add(AuditAction.CREATE, "shop/web/0", 1)
    add(AuditAction.SCALE, "shop/app", 2)
    add(AuditAction.ALERT, "shop/web", 3)
    add(AuditAction.SCALE, "shop/web", 4)
    store.append(AuditRecord(deployment="other", run_id="r", actor="a", action=AuditAction.SCALE,
                             outcome=Outcome.INFO, key="shop/web"), at=T0)
    found = store.recent_audit("prod", [AuditAction.SCALE, AuditAction.ALERT])
    assert [e.record.detail for e in found] == [
        "scale shop/web 4", "alert shop/web 3", "scale shop/app 2", "scale shop/web 0"
    ]
    assert [e.seq for e in store.recent_audit("prod", [AuditAction.SCALE], key="shop/web")] == [5, 1]
    since = store.recent_audit("prod", [AuditAction.SCALE], since=T0 + timedelta(minutes=2))
    assert [e.record.key for e in since] == ["shop/web", "shop/app"]
    assert len(store.recent_audit("prod", [AuditAction.SCALE], limit=1)) == 1
    assert store.recent_audit("prod", []) == []
