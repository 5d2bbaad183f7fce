"""Fencing: once a lease moved to a new epoch, no write of the old holder lands (both stores).

Leases are judged by the ``now`` passed in, so expiry is simulated by passing a later time
instead of sleeping. The race test runs the old holder in another process, writing as fast
as it can, while this process takes the lease over: nothing of the old holder may land
after the takeover committed.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from reconciler.core.errors import LeaseLostError
from reconciler.core.model import MetricSample, Size
from reconciler.core.records import AuditAction, AuditRecord, BackupInterval, Outcome, UsageInterval
from reconciler.store import open_store
from reconciler.store.base import Store
from tests.store_pg.pg import REPO

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
S = timedelta(seconds=1)


def _record(detail: str, run_id: str = "run-a") -> AuditRecord:
    return AuditRecord(
        deployment="prod", run_id=run_id, actor="a", action=AuditAction.CREATE, outcome=Outcome.INFO,
        key="shop/web/0", provider="sim", detail=detail,
    )


def _interval(resource_id: str) -> UsageInterval:
    return UsageInterval(deployment="prod", provider="sim", resource_id=resource_id, key="shop/web/0",
                         flavor=None, size=Size(1, 1024, 10), start=T0, hourly_rate=Decimal("0.01"))


def _backup(snapshot_id: str) -> BackupInterval:
    return BackupInterval(deployment="prod", provider="sim", snapshot_id=snapshot_id, key="shop/db/0",
                          policy="nightly", size_gb=10.0, start=T0)


def _sample() -> MetricSample:
    return MetricSample(provider="sim", resource_id="i-1", key="shop/web/0", at=T0, cpu_seconds=1.0,
                        memory_mb=512, net_rx_bytes=1, net_tx_bytes=1, disk_gb=10)


def _open(url: str) -> Store:
    return open_store(Path("unused"), url)


def test_stale_epoch_writes_are_refused_and_leave_nothing(any_url: str) -> None:
    old, new = _open(any_url), _open(any_url)
    try:
        lease_a = old.acquire_lease("provider/sim", "a@host-a:1", ttl_seconds=60, now=T0)
        assert lease_a is not None and lease_a.epoch == 1
        with old.fenced([lease_a]):
            old.append(_record("a-1"), at=T0)
            old.open_interval(_interval("i-1"))
            old.open_backup_interval(_backup("snap-1"))
            # A renewal by the holder keeps the epoch: its writes still land.
            renewed = old.acquire_lease("provider/sim", "a@host-a:1", ttl_seconds=60, now=T0 + 30 * S)
            assert renewed is not None and renewed.epoch == 1
            old.append(_record("a-2"), at=T0)
        # a is paused past its lease; b takes over with a higher epoch
        lease_b = new.acquire_lease("provider/sim", "b@host-b:2", ttl_seconds=60, now=T0 + 91 * S)
        assert lease_b is not None and lease_b.epoch == 2
        head = [e.seq for e in new.audit_log()]
        with old.fenced([lease_a]):
            with pytest.raises(LeaseLostError, match=r"moved to b@host-b:2 at epoch 2"):
                old.append(_record("a-3"), at=T0)
            with pytest.raises(LeaseLostError):
                old.open_interval(_interval("i-2"))
            with pytest.raises(LeaseLostError):
                old.close_interval("sim", "i-1", end=T0 + 60 * S)
            with pytest.raises(LeaseLostError):
                old.add_samples("prod", [_sample()])
            with pytest.raises(LeaseLostError):
                old.open_backup_interval(_backup("snap-2"))
            with pytest.raises(LeaseLostError):
                old.close_backup_interval("sim", "snap-1", end=T0 + 60 * S)
            with pytest.raises(LeaseLostError):  # a transaction is refused whole
                with old.transaction():
                    old.append(_record("a-4"), at=T0)
        assert [e.seq for e in new.audit_log()] == head
        assert [i.resource_id for i in new.open_intervals("prod")] == ["i-1"]
        assert new.samples() == []
        assert [(b.snapshot_id, b.end) for b in new.backup_intervals()] == [("snap-1", None)]
        # Unfenced, and fenced by the new holder's lease, writes go on; the chain stays whole.
        with new.fenced([lease_b]):
            new.append(_record("b-1", run_id="run-b"), at=T0)
            new.close_interval("sim", "i-1", end=T0 + 100 * S)
        old.append(_record("unfenced"), at=T0)
        verification = new.verify()
        assert verification.ok and verification.entries == 4
    finally:
        old.close()
        new.close()


def test_released_lease_fences_its_old_holder_once_taken(any_url: str) -> None:
    store = _open(any_url)
    try:
        lease = store.acquire_lease("provider/sim", "a", ttl_seconds=600, now=T0)
        assert lease is not None
        store.release_lease(lease)
        with store.fenced([lease]):
            store.append(_record("after release, before anyone took it"), at=T0)  # nobody raced: allowed
        taken = store.acquire_lease("provider/sim", "b", ttl_seconds=600, now=T0 + S)
        assert taken is not None and taken.epoch == 2
        with store.fenced([lease]), pytest.raises(LeaseLostError):
            store.append(_record("too late"), at=T0)
        with store.fenced([taken]):
            store.append(_record("the new holder"), at=T0)
        assert store.fences == ()  # the block restored the unfenced state
    finally:
        store.close()


def test_every_lease_of_a_run_fences_its_writes(any_url: str) -> None:
    store = _open(any_url)
    try:
        sim = store.acquire_lease("provider/sim", "a", ttl_seconds=60, now=T0)
        aws = store.acquire_lease("provider/aws", "a", ttl_seconds=60, now=T0)
        assert sim is not None and aws is not None
        assert store.acquire_lease("provider/aws", "b", ttl_seconds=60, now=T0 + 61 * S) is not None
        with store.fenced([sim, aws]), pytest.raises(LeaseLostError, match="provider/aws"):
            store.append(_record("a sim entry, but the run lost its aws lease"), at=T0)
    finally:
        store.close()


_OLD_HOLDER = """
import sys
from datetime import UTC, datetime
from pathlib import Path
from reconciler.core.errors import LeaseLostError
from reconciler.store import open_store
from reconciler.core.records import AuditAction, AuditRecord, Lease, Outcome

url, epoch = sys.argv[1], int(sys.argv[2])
store = open_store(Path("unused"), url)
lease = Lease(scope="provider/sim", holder="old", epoch=epoch, expires_at=datetime(2026, 11, 1, tzinfo=UTC))
written = 0
with store.fenced([lease]):
    try:
        while True:
            store.append(AuditRecord(deployment="prod", run_id="old", actor="old", action=AuditAction.CREATE,
                                     outcome=Outcome.INFO, detail=str(written)), at=datetime.now(UTC))
            written += 1
            if written == 20:
                print("writing", flush=True)
    except LeaseLostError as exc:
        print("refused", written, exc, flush=True)
"""


def test_takeover_races_a_writing_old_holder(any_url: str) -> None:
    """Several rounds: the old holder writes in a tight loop while the lease is taken over."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    store = _open(any_url)
    try:
        now = T0
        for round_ in range(2):
            lease = store.acquire_lease("provider/sim", "old", ttl_seconds=10, now=now)
            assert lease is not None
            proc = subprocess.Popen(
                [sys.executable, "-c", _OLD_HOLDER, any_url, str(lease.epoch)],
                stdout=subprocess.PIPE, text=True, env=env,
            )
            try:
                assert proc.stdout is not None
                assert proc.stdout.readline().strip() == "writing"
                time.sleep(0.05 * round_)
                now += 11 * S  # the old holder's lease lapsed
                taken = store.acquire_lease("provider/sim", f"new-{round_}", ttl_seconds=10, now=now)
                assert taken is not None and taken.epoch == lease.epoch + 1
                head_at_takeover = max(e.seq for e in store.audit_log())
                out, _ = proc.communicate(timeout=60)
                assert out.startswith("refused"), out
                old_seqs = [e.seq for e in store.audit_log() if e.record.run_id == "old"]
                assert max(old_seqs) <= head_at_takeover, "an old-epoch write landed after the takeover"
                store.release_lease(taken)
                now += S
            finally:
                if proc.poll() is None:
                    proc.kill()
        verification = store.verify()
        assert verification.ok, verification.problem
    finally:
        store.close()
