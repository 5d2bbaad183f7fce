"""The audit ledger: hash chain round trip, tamper detection, intents, generations, transactions."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest

from reconciler.core.errors import UserError
from reconciler.core.records import AuditAction, Outcome
from reconciler.store.base import Store
from reconciler.store.sqlite import GENESIS_HASH, SCHEMA_VERSION, SQLiteStore, audit_hash

from .conftest import Backend
from .helpers import T0, record

Tamper = Callable[..., None]


def _fill(store: Store, n: int) -> None:
    for i in range(n):
        store.append(record(key=f"shop/web/{i}", detail=f"entry {i + 1}"), at=T0 + timedelta(seconds=i))


def test_opening_creates_parent_dir_and_wal(db_path: Path) -> None:
    assert not db_path.parent.exists()
    with SQLiteStore(db_path):
        pass
    assert db_path.exists()
    conn = sqlite3.connect(db_path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("SELECT value FROM meta WHERE name = 'schema_version'").fetchone()[0] == str(
        SCHEMA_VERSION
    )
    conn.close()


def test_newer_schema_is_refused(backend: Backend) -> None:
    backend.open().close()
    backend.tamper(f"UPDATE meta SET value = '{SCHEMA_VERSION + 1}' WHERE name = 'schema_version'")
    with pytest.raises(UserError, match="newer than this reconciler"):
        backend.open()


def test_not_a_database_is_a_user_error(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    path.write_bytes(b"this is not sqlite at all, just some text" * 100)
    with pytest.raises(UserError, match="not a usable reconciler state database"):
        SQLiteStore(path)


def test_append_chains_hashes_and_round_trips(store: Store, reopen: Callable[[], Store]) -> None:
    first = store.append(record(outcome=Outcome.INTENT, token="tok", detail='{"generation": 0}'), at=T0)
    second = store.append(
        record(resource_id="i-1", intent_seq=first.seq, commit="abc123"), at=T0 + timedelta(seconds=1)
    )
    assert (first.seq, second.seq) == (1, 2)
    assert first.prev_hash == GENESIS_HASH
    assert second.prev_hash == first.hash
    # The hash is exactly sha256(prev_hash + canonical JSON), computed independently here.
    material = {
        "seq": 1, "at": "2026-11-01T12:00:00Z", "deployment": "prod", "run_id": "run-1",
        "actor": "alice@example.com", "action": "create", "outcome": "intent", "key": "shop/web/0",
        "provider": "sim", "resource_id": "", "token": "tok", "commit": "", "detail": '{"generation": 0}',
        "error": "", "intent_seq": None,
    }
    blob = json.dumps(material, sort_keys=True, separators=(",", ":"))
    assert first.hash == hashlib.sha256((GENESIS_HASH + blob).encode()).hexdigest()

    store.close()
    reopened = reopen()
    try:
        entries = list(reopened.audit_log())
        assert entries == [first, second]
        assert reopened.verify().ok
        assert reopened.verify().entries == 2
    finally:
        reopened.close()


def test_audit_log_filters_and_pages(store: Store) -> None:
    for i in range(1203):
        store.append(record(deployment="a" if i % 3 else "b", detail=str(i)), at=T0)
    assert [e.seq for e in store.audit_log()] == list(range(1, 1204))
    only_b = list(store.audit_log(deployment="b"))
    assert [e.seq for e in only_b] == list(range(1, 1204, 3))
    assert [e.seq for e in store.audit_log(since_seq=1200)] == [1201, 1202, 1203]


def test_verify_empty_ledger(store: Store) -> None:
    result = store.verify()
    assert result.ok and result.entries == 0 and result.first_bad_seq is None


def test_verify_detects_an_edited_entry(store: Store, tamper: Tamper) -> None:
    _fill(store, 6)
    tamper("UPDATE audit SET actor = 'mallory' WHERE seq = 4")
    result = store.verify()
    assert not result.ok
    assert result.first_bad_seq == 4
    assert "altered" in result.problem
    assert result.entries == 3  # the good entries before it


def test_verify_detects_an_edit_with_a_recomputed_hash(store: Store, tamper: Tamper) -> None:
    _fill(store, 5)
    entry = list(store.audit_log())[2]
    forged = audit_hash(entry.prev_hash, entry.seq, entry.at, record(key=entry.record.key, detail="forged"))
    tamper(f"UPDATE audit SET detail = 'forged', hash = '{forged}' WHERE seq = 3")
    result = store.verify()
    assert not result.ok and result.first_bad_seq == 4
    assert "does not follow" in result.problem


def test_verify_detects_a_removed_entry(store: Store, tamper: Tamper) -> None:
    _fill(store, 6)
    tamper("DELETE FROM audit WHERE seq = 3")
    result = store.verify()
    assert not result.ok and result.first_bad_seq == 3
    assert "missing" in result.problem


def test_verify_detects_removal_renumbered(store: Store, tamper: Tamper) -> None:
    _fill(store, 5)
    tamper("DELETE FROM audit WHERE seq = 2", "UPDATE audit SET seq = seq - 1 WHERE seq > 2")
    result = store.verify()
    assert not result.ok and result.first_bad_seq == 2


def test_verify_detects_removal_of_the_newest_entries(store: Store, tamper: Tamper) -> None:
    _fill(store, 5)
    tamper("DELETE FROM audit WHERE seq >= 4")
    result = store.verify()
    assert not result.ok and result.first_bad_seq == 4
    assert "removed from the end" in result.problem


def test_verify_detects_reordering(store: Store, tamper: Tamper) -> None:
    _fill(store, 5)
    tamper("UPDATE audit SET seq = 100 WHERE seq = 2",
        "UPDATE audit SET seq = 2 WHERE seq = 3",
        "UPDATE audit SET seq = 3 WHERE seq = 100",
    )
    result = store.verify()
    assert not result.ok and result.first_bad_seq == 2


def test_verify_detects_an_unreadable_entry(store: Store, tamper: Tamper) -> None:
    _fill(store, 3)
    tamper("UPDATE audit SET action = 'explode' WHERE seq = 2")
    result = store.verify()
    assert not result.ok and result.first_bad_seq == 2
    with pytest.raises(UserError, match="audit entry 2 is unreadable"):
        list(store.audit_log())


def test_appends_continue_the_chain_after_reopen(reopen: Callable[[], Store]) -> None:
    one = reopen()
    _fill(one, 3)
    one.close()
    two = reopen()
    try:
        entry = two.append(record(), at=T0)
        assert entry.seq == 4
        assert two.verify().ok and two.verify().entries == 4
    finally:
        two.close()


def test_unresolved_intents(store: Store) -> None:
    a = store.append(record(outcome=Outcome.INTENT, key="shop/web/0", token="t0"), at=T0)
    b = store.append(record(outcome=Outcome.INTENT, key="shop/web/1", token="t1"), at=T0)
    c = store.append(record(outcome=Outcome.INTENT, key="shop/db/0", action=AuditAction.DELETE), at=T0)
    other = store.append(record(deployment="staging", outcome=Outcome.INTENT), at=T0)
    store.append(record(outcome=Outcome.SUCCEEDED, intent_seq=a.seq, resource_id="i-0"), at=T0)
    store.append(record(outcome=Outcome.FAILED, intent_seq=c.seq, error="quota"), at=T0)
    assert [e.seq for e in store.unresolved_intents("prod")] == [b.seq]
    assert store.unresolved_intents("prod")[0].record.token == "t1"
    assert [e.seq for e in store.unresolved_intents("staging")] == [other.seq]
    store.append(record(outcome=Outcome.RECOVERED, intent_seq=b.seq), at=T0)
    assert store.unresolved_intents("prod") == []


def test_max_generation_reads_intent_detail(store: Store) -> None:
    assert store.max_generation("prod", "shop/web/0") is None
    for generation in (0, 3, 1):
        store.append(record(outcome=Outcome.INTENT, detail=json.dumps({"generation": generation})), at=T0)
    store.append(record(outcome=Outcome.INTENT, detail="not json at all"), at=T0)
    store.append(record(outcome=Outcome.INTENT, detail='{"generation": "7"}'), at=T0)  # not an integer
    store.append(record(outcome=Outcome.SUCCEEDED, detail='{"generation": 9}'), at=T0)  # not an intent
    store.append(record(outcome=Outcome.INTENT, key="shop/web/1", detail='{"generation": 5}'), at=T0)
    store.append(record(outcome=Outcome.INTENT, deployment="x", detail='{"generation": 6}'), at=T0)
    assert store.max_generation("prod", "shop/web/0") == 3
    assert store.max_generation("prod", "shop/web/1") == 5


def test_transaction_rolls_back_everything(store: Store) -> None:
    from reconciler.core.model import Size
    from reconciler.core.records import UsageInterval

    interval = UsageInterval(deployment="prod", provider="sim", resource_id="i-1", key="shop/web/0",
                             flavor=None, size=Size(1, 1024, 10), start=T0)
    with pytest.raises(RuntimeError, match="boom"):
        with store.transaction():
            store.append(record(), at=T0)
            store.open_interval(interval)
            raise RuntimeError("boom")
    assert list(store.audit_log()) == []
    assert store.open_intervals("prod") == []
    assert store.verify().ok
    # The chain head rolled back too: the next entry is seq 1 and verifies.
    with store.transaction():
        assert store.append(record(), at=T0).seq == 1
        store.open_interval(interval)
    assert store.verify().ok and len(store.open_intervals("prod")) == 1


def test_nested_transaction_failure_is_contained(store: Store) -> None:
    with store.transaction():
        store.append(record(detail="outer"), at=T0)
        with pytest.raises(ValueError):
            with store.transaction():
                store.append(record(detail="inner"), at=T0)
                raise ValueError("inner fails")
        store.append(record(detail="after"), at=T0)
    assert [e.record.detail for e in store.audit_log()] == ["outer", "after"]
    assert [e.seq for e in store.audit_log()] == [1, 2]
    assert store.verify().ok


def test_naive_times_are_taken_as_utc(store: Store) -> None:
    entry = store.append(record(), at=T0.replace(tzinfo=None))
    assert entry.at == T0
    assert next(store.audit_log()).at == T0
