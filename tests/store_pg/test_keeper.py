"""LeaseKeeper: renews a run's leases past their TTL, fences writes, and notices a takeover."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path

import pytest

from reconciler.core.clock import Clock
from reconciler.core.errors import LeaseLostError, UserError
from reconciler.core.records import AuditAction, AuditRecord, Outcome
from reconciler.run.leases import HOSTNAME_ENV, TTL_ENV, LeaseKeeper, hostname, lease_ttl
from reconciler.store import open_store

CLOCK = Clock()
RECORD = AuditRecord(
    deployment="prod", run_id="r", actor="a", action=AuditAction.RUN_START, outcome=Outcome.INFO
)


def test_renewal_keeps_the_lease_past_its_ttl(any_url: str) -> None:
    store = open_store(Path("unused"), any_url)
    other = open_store(Path("unused"), any_url)
    try:
        lease = store.acquire_lease("provider/sim", "me", ttl_seconds=0.6, now=CLOCK.wall())
        assert lease is not None
        keeper = LeaseKeeper(store, [lease], ttl_seconds=0.6, clock=CLOCK).start()
        try:
            time.sleep(1.5)  # 2.5 TTLs
            assert other.acquire_lease("provider/sim", "rival", ttl_seconds=10, now=CLOCK.wall()) is None
            store.append(RECORD, at=CLOCK.now())  # fenced, and still ours
            keeper.check()
        finally:
            keeper.stop()
        current = other.current_lease("provider/sim")
        assert current is not None and (current.holder, current.epoch) == ("me", lease.epoch)
        assert current.expires_at > lease.expires_at
        assert store.fences == ()
    finally:
        store.close()
        other.close()


def test_takeover_is_noticed_and_writes_stop(any_url: str) -> None:
    store = open_store(Path("unused"), any_url)
    other = open_store(Path("unused"), any_url)
    try:
        lease = store.acquire_lease("provider/sim", "me", ttl_seconds=0.6, now=CLOCK.wall())
        assert lease is not None
        keeper = LeaseKeeper(store, [lease], ttl_seconds=0.6, clock=CLOCK).start()
        try:
            # A rival whose clock says our lease lapsed (we were paused) takes it over.
            later = CLOCK.wall() + timedelta(seconds=5)
            assert other.acquire_lease("provider/sim", "rival", ttl_seconds=60, now=later) is not None
            assert keeper.lost.wait(timeout=5)
            with pytest.raises(LeaseLostError, match=r"rival \(epoch 2\) took it over"):
                keeper.check()
            with pytest.raises(LeaseLostError):
                store.append(RECORD, at=CLOCK.now())
        finally:
            keeper.stop()
        current = other.current_lease("provider/sim")
        assert current is not None and current.holder == "rival"  # the keeper did not steal it back
    finally:
        store.close()
        other.close()


def test_a_lapsed_lease_is_lost_even_if_nobody_took_it(any_url: str) -> None:
    store = open_store(Path("unused"), any_url)
    try:
        past = CLOCK.wall() - timedelta(seconds=30)
        lease = store.acquire_lease("provider/sim", "me", ttl_seconds=10, now=past)  # lapsed 20 s ago
        assert lease is not None
        keeper = LeaseKeeper(store, [lease], ttl_seconds=10, clock=CLOCK).start()
        try:
            assert keeper.lost.wait(timeout=5)
            assert "lapsed" in keeper.problem
        finally:
            keeper.stop()
        current = store.current_lease("provider/sim")
        assert current is not None and current.expires_at < CLOCK.wall()  # the re-taken lease was released
    finally:
        store.close()


def test_environment_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(HOSTNAME_ENV, "replica-b")
    assert hostname() == "replica-b"
    monkeypatch.setenv(TTL_ENV, "2.5")
    assert lease_ttl(120) == 2.5
    monkeypatch.delenv(TTL_ENV)
    assert lease_ttl(120) == 120
    for bad in ("0", "-1", "soon", "inf", "nan"):
        monkeypatch.setenv(TTL_ENV, bad)
        with pytest.raises(UserError, match=TTL_ENV):
            lease_ttl(120)


def test_a_callers_lease_is_renewed_by_as_long_as_it_had_left(any_url: str) -> None:
    store = open_store(Path("unused"), any_url)
    try:
        lease = store.acquire_lease("provider/sim", "daemon", ttl_seconds=0.9, now=CLOCK.wall())
        assert lease is not None
        keeper = LeaseKeeper(store, [lease], ttl_seconds=None, clock=CLOCK).start()
        try:
            time.sleep(1.5)
            keeper.check()
        finally:
            keeper.stop()
        current = store.current_lease("provider/sim")
        assert current is not None and current.epoch == lease.epoch
        left = (current.expires_at - CLOCK.wall()).total_seconds()
        assert 0 < left <= 1.0  # renewed, and by its own time-to-live, not a default
    finally:
        store.close()
