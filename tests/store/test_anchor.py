"""The ledgers are anchored outside the store: editing state.db and re-chaining it is detected.

Whoever can write ``state.db`` can recompute the public hash chain (``audit verify`` of the
chain alone then says intact); the signed checkpoints written after every writing run, with
a key the database does not hold, catch it. Each case below really edits a copy of the
ledger — re-chained like an attacker would — and expects `audit verify` to fail.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from reconciler.core.clock import Clock
from reconciler.core.records import AuditRecord
from reconciler.run import anchor
from reconciler.run.apply import apply_plan
from reconciler.run.audit import new_run
from reconciler.run.planning import plan_path
from reconciler.run.workspace import STATE_DB, Workspace
from reconciler.store.sqlite import SQLiteStore
from tests.engine.test_session import DESIRED

Tamper = Callable[[Path, Path], None]  # (state.db, anchor file)


Entries = list[tuple[AuditRecord, object]]


def _rechain(db: Path, change: Callable[[Entries], Entries]) -> None:
    """Rewrite the audit ledger with ``change`` applied, every hash recomputed (a forger's work)."""
    store = SQLiteStore(db)
    entries = [(e.record, e.at) for e in store.audit_log()]
    store.close()
    forged_path = db.with_name("forged.db")
    forged = SQLiteStore(forged_path)
    for record, at in change(entries):
        forged.append(record, at=at)  # type: ignore[arg-type]
    forged.close()
    with sqlite3.connect(db) as conn, sqlite3.connect(forged_path) as source:
        conn.execute("DELETE FROM audit")
        rows = source.execute("SELECT * FROM audit ORDER BY seq").fetchall()
        marks = ",".join("?" * len(rows[0]))
        conn.executemany(f"INSERT INTO audit VALUES ({marks})", rows)
        meta = "SELECT name, value FROM meta WHERE name LIKE 'audit%' OR name LIKE '%head%'"
        for name, value in source.execute(meta):
            conn.execute("UPDATE meta SET value = ? WHERE name = ?", (value, name))


def _edit_detail(db: Path, _: Path) -> None:
    import dataclasses

    _rechain(db, lambda es: [(dataclasses.replace(r, detail="nothing to see") if i == 2 else r, at)
                             for i, (r, at) in enumerate(es)])


def _drop_an_entry(db: Path, _: Path) -> None:
    _rechain(db, lambda es: es[:1] + es[2:])


def _insert_an_entry(db: Path, _: Path) -> None:
    _rechain(db, lambda es: es[:1] + [es[0]] + es[1:])


def _cut_the_tail(db: Path, _: Path) -> None:
    _rechain(db, lambda es: es[:-2])


def _edit_a_closed_interval(db: Path, _: Path) -> None:
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE usage_interval SET hourly_rate = '0' WHERE end_at IS NOT NULL")


def _delete_a_closed_interval(db: Path, _: Path) -> None:
    with sqlite3.connect(db) as conn:
        first = "SELECT min(id) FROM usage_interval WHERE end_at IS NOT NULL"
        conn.execute(f"DELETE FROM usage_interval WHERE id = ({first})")


def _edit_a_checkpoint(_: Path, anchors: Path) -> None:
    lines = anchors.read_text().splitlines()
    point = json.loads(lines[0])
    point["seq"] = 1
    lines[0] = json.dumps(point, sort_keys=True)
    anchors.write_text("\n".join(lines) + "\n")


def _drop_a_checkpoint(_: Path, anchors: Path) -> None:
    lines = anchors.read_text().splitlines()
    anchors.write_text("\n".join(lines[1:]) + "\n")


TAMPERING: dict[str, Tamper] = {
    "an entry edited, chain recomputed": _edit_detail,
    "an entry removed, chain recomputed": _drop_an_entry,
    "an entry inserted, chain recomputed": _insert_an_entry,
    "the tail cut off, chain recomputed": _cut_the_tail,
    "a closed usage interval repriced": _edit_a_closed_interval,
    "a closed usage interval removed": _delete_a_closed_interval,
    "a checkpoint edited": _edit_a_checkpoint,
    "a checkpoint removed": _drop_a_checkpoint,
}


@pytest.fixture
def ledger(tmp_path: Path) -> tuple[Workspace, Path]:
    folder = tmp_path / "desired"
    folder.mkdir()
    (folder / "shop.yaml").write_text(DESIRED, encoding="utf-8")
    ws = Workspace(state_dir=tmp_path / "state", clock=Clock())
    assert apply_plan(plan_path(folder, ws), ws, new_run("first", None)).ok
    (folder / "shop.yaml").write_text(DESIRED.replace("count: 3", "count: 1"), encoding="utf-8")
    assert apply_plan(plan_path(folder, ws), ws, new_run("second", None), max_deletes="5").ok
    ws.close()
    return ws, ws.state_dir / STATE_DB


def test_every_writing_run_leaves_a_checkpoint_that_verifies(ledger: tuple[Workspace, Path]) -> None:
    ws, db = ledger
    store = SQLiteStore(db)
    report = anchor.verify(store, ws.store_location())
    head = list(store.audit_log())[-1].seq
    store.close()
    assert report.ok and report.checkpoints == 2 and report.covered_seq == head
    text = anchor.anchor_file(ws.store_location()).read_text()
    assert anchor.audit_key().decode() not in text


@pytest.mark.parametrize("name", sorted(TAMPERING))
def test_tampering_with_the_ledger_is_detected(
    ledger: tuple[Workspace, Path], tmp_path: Path, name: str
) -> None:
    ws, db = ledger
    copy = tmp_path / "copy"
    shutil.copytree(db.parent, copy)
    forged_db = copy / STATE_DB
    location = ws.store_location()
    shutil.copy(anchor.anchor_file(location), tmp_path / "anchors.jsonl")
    TAMPERING[name](forged_db, anchor.anchor_file(location))
    store = SQLiteStore(forged_db)
    try:
        # the chain alone says intact: only the checkpoints tell
        assert store.verify().ok or name.startswith(("a checkpoint", "a closed"))
        report = anchor.verify(store, location)
    finally:
        store.close()
    assert not report.ok, name
    assert report.problem


def test_a_checkpoint_with_nothing_new_adds_no_line(ledger: tuple[Workspace, Path]) -> None:
    """A converged daemon checkpoints every cycle: with no entry appended and no interval closed
    since, the newest line stands (the file is rewritten whole for each line it gains)."""
    ws, db = ledger
    path = anchor.anchor_file(ws.store_location())
    before = path.read_text()
    store = SQLiteStore(db)
    try:
        newest = json.loads(before.splitlines()[-1])
        assert anchor.checkpoint(store, ws.store_location(), ws.clock.wall()) == newest
        assert path.read_text() == before
        [interval] = store.open_intervals("desired")[:1]  # a resize seen by sync: closed, no entry
        store.close_interval(interval.provider, interval.resource_id, end=ws.clock.wall())
        point = anchor.checkpoint(store, ws.store_location(), ws.clock.wall())
        assert point is not None and point["usage_rows"] == newest["usage_rows"] + 1
        assert len(path.read_text().splitlines()) == len(before.splitlines()) + 1
        assert anchor.verify(store, ws.store_location()).ok
    finally:
        store.close()
