"""One SQLite transaction reads the fencing leases and the chain's head once (``store.txn_memo``):
what it remembers follows its savepoints, a lease it moves itself, and other processes' commits."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from reconciler.core.errors import LeaseLostError
from reconciler.store.sqlite import SQLiteStore

from .helpers import T0, record


def _details(store: SQLiteStore) -> list[str]:
    return [entry.record.detail for entry in store.audit_log()]


def test_a_savepoint_rolled_back_takes_its_appends_off_the_remembered_head(tmp_path: Path) -> None:
    with SQLiteStore(tmp_path / "state.db") as store:
        with store.transaction():
            store.append(record(detail="a"), at=T0)
            with pytest.raises(RuntimeError), store.transaction():
                store.append(record(detail="b"), at=T0)
                raise RuntimeError("undo b")
            kept = store.append(record(detail="c"), at=T0)
        assert kept.seq == 2 and _details(store) == ["a", "c"]
        assert store.verify().ok  # meta's head is entry 2's, written once before the COMMIT


def test_a_transaction_rolled_back_whole_leaves_meta_as_it_was(tmp_path: Path) -> None:
    with SQLiteStore(tmp_path / "state.db") as store:
        store.append(record(detail="a"), at=T0)
        with pytest.raises(RuntimeError), store.transaction():
            store.append(record(detail="b"), at=T0)
            raise RuntimeError("undo all")
        assert store.append(record(detail="c"), at=T0).seq == 2
        assert _details(store) == ["a", "c"] and store.verify().ok


def test_another_process_appending_between_transactions_is_read_afresh(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    with SQLiteStore(path) as ours, SQLiteStore(path) as theirs:
        ours.append(record(detail="a"), at=T0)
        theirs.append(record(detail="b"), at=T0)
        assert ours.append(record(detail="c"), at=T0).seq == 3
        assert _details(ours) == ["a", "b", "c"] and ours.verify().ok


def test_a_lease_moved_inside_the_transaction_is_checked_again(tmp_path: Path) -> None:
    with SQLiteStore(tmp_path / "state.db") as store:
        lease = store.acquire_lease("provider/sim", "us", ttl_seconds=60, now=T0)
        assert lease is not None
        with store.fenced([lease]), pytest.raises(LeaseLostError), store.transaction():
            store.append(record(detail="fenced"), at=T0)  # the lease rows read, found current
            later = T0 + timedelta(minutes=5)  # ours has expired: someone else takes it over
            assert store.acquire_lease("provider/sim", "them", ttl_seconds=60, now=later) is not None
            store.append(record(detail="after the takeover"), at=later)
        assert _details(store) == []  # the refusal rolled the whole transaction back
