"""A damaged state database is one clear error naming the file, never a traceback or "intact".

The damage is real: a copy of a state.db that an apply wrote has bytes of one of its pages
overwritten (an index page, the audit table's page, the usage table's page, the header), or
its ``meta`` table holds garbage. Every command that opens or reads it exits 1 with the
message, ``audit verify`` included (its integrity check finds what the chain walk cannot),
and an apply against it changes nothing in the cloud.
"""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest

from reconciler.cli.main import main
from reconciler.core.errors import UserError
from reconciler.store import DEFAULT_FILE
from reconciler.store.sqlite import SQLiteStore
from tests.store.conftest import Backend
from tests.store.helpers import T0, record

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "clusters"
NOW = "2026-11-02T10:00:00Z"


def _run(*args: str) -> int:
    return main([*args, "--now", NOW])


@pytest.fixture(scope="module")
def applied(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A state folder (state.db and the simulated cloud) after applying the example once."""
    root = tmp_path_factory.mktemp("applied")
    shutil.copytree(EXAMPLE, root / "clusters")
    assert _run("apply", str(root / "clusters"), "--yes", "--state-dir", str(root / "state")) == 0
    return root


@pytest.fixture
def copy(applied: Path, tmp_path: Path) -> Path:
    """A fresh copy of the applied state folder, free to damage; the desired state beside it."""
    shutil.copytree(applied / "state", tmp_path / "state")
    shutil.copytree(applied / "clusters", tmp_path / "clusters")
    return tmp_path / "state"


def _overwrite_page(db: Path, name: str) -> None:
    """Overwrite the first 256 bytes of the root page of table or index ``name`` (its page header)."""
    conn = sqlite3.connect(db)
    page_size = conn.execute("PRAGMA page_size").fetchone()[0]
    root = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = ?", (name,)).fetchone()[0]
    conn.close()
    with db.open("r+b") as handle:
        handle.seek((root - 1) * page_size)
        handle.write(b"\xde\xad\xbe\xef" * 64)


def _damage_message(db: Path, detail: str) -> str:
    return (
        f"Error: {db}: not a usable reconciler state database: the file is damaged ({detail}); restore it "
        "from a backup, or move it aside and let the reconciler start a new one (the audit and usage "
        "history in it is then lost)"
    )


def _servers(state: Path) -> list[tuple[str, ...]]:
    conn = sqlite3.connect(state / "simcloud.db")
    rows = sorted(tuple(str(v) for v in row) for row in conn.execute("SELECT * FROM servers"))
    conn.close()
    return rows


def test_audit_verify_finds_a_damaged_index_the_chain_walk_cannot(
    copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _run("audit", "verify", "--state-dir", str(copy)) == 0
    capsys.readouterr()
    for index in ("audit_deployment_key", "usage_span"):
        _overwrite_page(copy / DEFAULT_FILE, index)
        assert _run("audit", "verify", "--state-dir", str(copy)) == 1
        captured = capsys.readouterr()
        assert "intact" not in captured.out and "Traceback" not in captured.err
        assert captured.err.startswith(
            f"Error: {copy / DEFAULT_FILE}: not a usable reconciler state database: the file is damaged ("
        )
        assert captured.err.count("\n") == 1 and "restore it from a backup" in captured.err


@pytest.mark.parametrize("page", ["audit", "usage_interval", "lease"])
def test_a_damaged_table_stops_every_command_with_one_message(
    copy: Path, page: str, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = copy.parent / "clusters"
    shop = folder / "shop.yaml"
    shop.write_text(shop.read_text().replace("count: 3", "count: 4"))  # a change for apply to make
    before = _servers(copy)
    _overwrite_page(copy / DEFAULT_FILE, page)
    state = ["--state-dir", str(copy)]
    commands = [["audit", "verify"], ["plan", str(folder)], ["apply", str(folder), "--yes"]]
    if page == "audit":
        commands.append(["audit", "log"])
    for command in commands:
        assert _run(*command, *state) == 1, command
        err = capsys.readouterr().err
        assert "Traceback" not in err
        assert err.splitlines()[-1].startswith(
            f"Error: {copy / DEFAULT_FILE}: not a usable reconciler state database: the file is damaged ("
        ), command
    assert _servers(copy) == before, "an apply against a damaged state database changed the cloud"


@pytest.mark.parametrize(
    ("garbage", "detail"),
    [
        (b"garbage garbage garbage garbage!", "file is not a database"),
        (b"\x00" * 100, "file is not a database"),
    ],
    ids=["text-header", "zeroed-header"],
)
def test_a_damaged_header_is_named(
    copy: Path, garbage: bytes, detail: str, capsys: pytest.CaptureFixture[str]
) -> None:
    db = copy / DEFAULT_FILE
    with db.open("r+b") as handle:
        handle.write(garbage)
    for command in (["audit", "verify"], ["plan", str(copy.parent / "clusters")]):
        assert _run(*command, "--state-dir", str(copy)) == 1
        assert capsys.readouterr().err.splitlines() == [_damage_message(db, detail)]


@pytest.mark.parametrize(
    ("name", "value", "should"),
    [
        ("schema_version", "v2", "a schema version (a whole number from 1)"),
        ("schema_version", "", "a schema version (a whole number from 1)"),
        ("audit_head_seq", "lots", "an entry number (a whole number from 0)"),
        ("audit_head_seq", "-3", "an entry number (a whole number from 0)"),
        ("audit_head_seq", "9" * 40, "an entry number (a whole number from 0)"),
        ("audit_head_hash", "not-a-hash", "a SHA-256 hash (64 lowercase hex digits)"),
        ("audit_head_hash", "A" * 64, "a SHA-256 hash (64 lowercase hex digits)"),
    ],
)
def test_garbage_in_meta_says_the_state_is_damaged(
    backend: Backend, name: str, value: str, should: str
) -> None:
    backend.open().close()
    backend.tamper(f"UPDATE meta SET value = '{value}' WHERE name = '{name}'")
    shown = repr(value) if len(repr(value)) <= 40 else repr(value)[:40] + "…"
    expected = (
        f"the state database is damaged: its meta table holds {shown} as {name}, which should be {should}; "
        "restore the state database from a backup (do not edit its meta table by hand)"
    )
    with pytest.raises(UserError) as caught:
        store = backend.open()  # the schema version is read on opening, the chain head on use
        try:
            store.append(record(), at=T0)
        finally:
            store.close()
    assert [d.message for d in caught.value.diagnostics] == [expected]


def test_a_meta_value_of_another_type_is_damage_too(db_path: Path) -> None:
    SQLiteStore(db_path).close()
    conn = sqlite3.connect(db_path)
    with conn:
        conn.execute("UPDATE meta SET value = ? WHERE name = 'audit_head_seq'", (b"\x00\x01",))
    conn.close()
    store = SQLiteStore(db_path)
    try:
        with pytest.raises(UserError, match="its meta table holds b'\\\\x00\\\\x01' as audit_head_seq"):
            store.verify()
    finally:
        store.close()


def test_audit_verify_checks_indexes_against_their_tables(
    copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every page well-formed (the quick check on opening passes) but an index no longer matching
    its table: only the full integrity check of ``audit verify`` sees it; the walk said intact."""
    conn = sqlite3.connect(copy / DEFAULT_FILE)
    with conn:
        conn.execute("PRAGMA writable_schema = ON")
        conn.execute(
            "UPDATE sqlite_master SET sql = 'CREATE INDEX audit_deployment_key ON audit (actor, key)' "
            "WHERE name = 'audit_deployment_key'"
        )
    conn.close()
    assert _run("audit", "log", "--state-dir", str(copy)) == 0  # opening and reading still work
    capsys.readouterr()
    assert _run("audit", "verify", "--state-dir", str(copy)) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    conn = sqlite3.connect(copy / DEFAULT_FILE)
    rows = conn.execute("SELECT COUNT(*) FROM audit").fetchone()[0]
    conn.close()
    found = f"row 1 missing from index audit_deployment_key, and {rows - 1} more problems"
    assert captured.err.splitlines() == [_damage_message(copy / DEFAULT_FILE, f"integrity check: {found}")]
