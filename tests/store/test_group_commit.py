"""Group commit: the durable writes of many threads share transactions, and each still lands
whole or not at all, in both stores (PostgreSQL commits each on its own)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest

from reconciler.core.errors import LeaseLostError
from reconciler.core.records import AuditEntry
from reconciler.store.base import Store
from reconciler.store.sqlite import SQLiteStore

from .conftest import Backend
from .helpers import T0, record

THREADS, EACH = 12, 25


def _crowd(store: Store, write: Callable[[int, int], object]) -> list[BaseException]:
    """``THREADS`` threads each making ``EACH`` durable writes at once; the errors raised."""
    start, errors = threading.Barrier(THREADS), []

    def worker(n: int) -> None:
        start.wait()
        for i in range(EACH):
            try:
                write(n, i)
            except Exception as exc:  # noqa: BLE001 - collected for the assertions
                errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors


def test_every_write_of_a_crowd_lands_once_in_one_intact_chain(backend: Backend) -> None:
    store = backend.open()
    try:
        seqs: list[int] = []

        def write(n: int, i: int) -> None:
            entry = store.durably(lambda: store.append(record(key=f"c/m/{n}", detail=f"{i}"), at=T0))
            seqs.append(entry.seq)

        assert _crowd(store, write) == []
        assert sorted(seqs) == list(range(1, THREADS * EACH + 1))  # each got its own entry back
        assert store.verify().ok
        entries = list(store.audit_log())
        assert sorted((e.record.key, e.record.detail) for e in entries) == sorted(
            (f"c/m/{n}", f"{i}") for n in range(THREADS) for i in range(EACH)
        )
    finally:
        store.close()


def test_a_write_and_its_ledger_change_land_together_or_not_at_all(db_path: Path) -> None:
    """A failing write in a shared transaction is undone alone: its entry does not land, the
    other threads' writes do, and the failure goes to its own thread."""
    store = SQLiteStore(db_path)
    try:
        def write(n: int, i: int) -> None:
            def both() -> None:
                store.append(record(key=f"c/m/{n}", detail=f"{i}"), at=T0 + timedelta(seconds=i))
                if i % 5 == 0:
                    raise LeaseLostError(f"lost {n}/{i}")

            store.durably(both)

        errors = _crowd(store, write)
        assert sorted(str(e) for e in errors) == sorted(
            f"lost {n}/{i}" for n in range(THREADS) for i in range(0, EACH, 5)
        )
        landed = {(e.record.key, e.record.detail) for e in store.audit_log()}
        assert landed == {(f"c/m/{n}", f"{i}") for n in range(THREADS) for i in range(EACH) if i % 5}
        assert store.verify().ok
    finally:
        store.close()


def test_a_crowd_shares_commits(db_path: Path) -> None:
    store = SQLiteStore(db_path)
    try:
        assert _crowd(store, lambda n, i: store.durably(lambda: store.append(record(), at=T0))) == []
        group = store._group  # noqa: SLF001 - the figures are what this test is about
        assert group.writes == THREADS * EACH
        assert group.batches <= group.writes
    finally:
        store.close()


def test_inside_a_transaction_a_write_joins_it(db_path: Path) -> None:
    store = SQLiteStore(db_path)
    try:
        with pytest.raises(RuntimeError), store.transaction():
            entry: AuditEntry = store.durably(lambda: store.append(record(), at=T0))
            assert entry.seq == 1
            raise RuntimeError("the outer transaction fails")
        assert list(store.audit_log()) == []  # the write went with the transaction it joined
    finally:
        store.close()
