"""Writes the operating system refuses, for want of room or of permission: one UserError naming the
file, and nothing half-written — files are written whole or not at all (``run.files``), the
state database's first open by many threads at once all succeed, and SQLite's refusals are named."""

from __future__ import annotations

import errno
import sqlite3
import threading
from pathlib import Path

import pytest

from reconciler.core.errors import NoSpaceError, UserError, write_refused
from reconciler.run import files
from reconciler.run.keys import PLAN_KEY
from reconciler.store.sqlite import SQLiteStore
from reconciler.store.sqlite_open import sqlite_problem


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EFBIG, errno.EDQUOT])
def test_no_room_is_a_no_space_error(code: int) -> None:
    problem = write_refused(Path("/data/plan.json"), OSError(code, "whatever"))
    assert isinstance(problem, NoSpaceError)
    assert str(problem) == "reconciler: no space left writing /data/plan.json: free space and run again"


@pytest.mark.parametrize("code", [errno.EACCES, errno.EROFS, errno.EPERM])
def test_no_permission_says_which_folder_needs_it(code: int) -> None:
    problem = write_refused(Path("/data/state/plan.key"), OSError(code, "Permission denied"), "plan key file")
    assert not isinstance(problem, NoSpaceError)
    assert "cannot write the plan key file /data/state/plan.key" in str(problem)
    assert "this needs write access to /data/state" in str(problem)


def _fail_writes_after(monkeypatch: pytest.MonkeyPatch, allowed: int, code: int = errno.ENOSPC) -> None:
    """Let ``allowed`` bytes through ``os.write`` in ``run.files``, then fail like a full disk."""
    real = files.os.write
    left = [allowed]

    def write(fd: int, data: bytes | memoryview) -> int:
        if left[0] <= 0:
            raise OSError(code, "No space left on device")
        chunk = bytes(data[: left[0]])
        left[0] -= len(chunk)
        return real(fd, chunk)

    monkeypatch.setattr(files.os, "write", write)


@pytest.mark.parametrize("allowed", [0, 1, 4095, 10_000])
def test_a_full_disk_midway_leaves_the_old_file_and_no_temp_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, allowed: int
) -> None:
    target = tmp_path / "out.json"
    target.write_text("old\n")
    _fail_writes_after(monkeypatch, allowed)
    with pytest.raises(NoSpaceError, match=f"no space left writing {target}: free space and run again"):
        files.write_atomic(target, "x" * 20_000)
    assert target.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]


def test_a_new_file_on_a_full_disk_is_not_made_at_all(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fail_writes_after(monkeypatch, 100, errno.EFBIG)
    with pytest.raises(NoSpaceError):
        files.write_atomic(tmp_path / "new.txt", "y" * 1000)
    assert list(tmp_path.iterdir()) == []


def test_a_key_made_on_a_full_disk_is_one_error_and_no_half_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("RECONCILER_PLAN_KEY", raising=False)
    monkeypatch.delenv("RECONCILER_PLAN_KEY_FILE", raising=False)
    _fail_writes_after(monkeypatch, 10)
    with pytest.raises(NoSpaceError, match="plan.key"):
        PLAN_KEY.load(tmp_path)
    assert list(tmp_path.iterdir()) == []
    monkeypatch.undo()
    monkeypatch.delenv("RECONCILER_PLAN_KEY", raising=False)
    monkeypatch.delenv("RECONCILER_PLAN_KEY_FILE", raising=False)
    assert len(PLAN_KEY.load(tmp_path)) == 64  # with room again, a whole key


def test_a_checkpoint_on_a_full_disk_leaves_the_anchor_file_as_it_was(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from reconciler.run import anchor
    from tests.store.helpers import T0, record

    with SQLiteStore(tmp_path / "state.db") as store:
        store.append(record(), at=T0)
        assert anchor.checkpoint(store, "loc", T0) is not None
        path = anchor.anchor_file("loc")
        before = path.read_bytes()
        store.append(record(detail="second"), at=T0)
        _fail_writes_after(monkeypatch, len(before) + 20)
        with pytest.raises(NoSpaceError, match=str(path)):
            anchor.checkpoint(store, "loc", T0)
        assert path.read_bytes() == before
        monkeypatch.undo()
        assert anchor.checkpoint(store, "loc", T0) is not None
        assert anchor.verify(store, "loc").ok


@pytest.mark.parametrize(
    ("code", "name", "kind", "said"),
    [
        (13, "SQLITE_FULL", NoSpaceError, "no space left writing"),
        (778, "SQLITE_IOERR_WRITE", UserError, "the disk refused a read or write"),
        (8, "SQLITE_READONLY", UserError, "it is read-only here"),
        (1032, "SQLITE_READONLY_DBMOVED", UserError, "it is read-only here"),
        (14, "SQLITE_CANTOPEN", UserError, "cannot open the state database"),
        (11, "SQLITE_CORRUPT", UserError, "the file is damaged"),
        (26, "SQLITE_NOTADB", UserError, "the file is damaged"),
    ],
)
def test_sqlite_refusals_are_named(
    code: int, name: str, kind: type[UserError], said: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from reconciler.store import sqlite_open

    monkeypatch.setattr(sqlite_open, "space_is_short", lambda _path: False)
    exc = sqlite3.OperationalError("simulated")
    exc.sqlite_errorcode = code  # type: ignore[attr-defined]
    exc.sqlite_errorname = name  # type: ignore[attr-defined]
    problem = sqlite_problem(Path("/data/state.db"), exc)
    assert isinstance(problem, kind) and said in str(problem), problem


def test_an_io_error_under_a_size_limit_is_no_space(monkeypatch: pytest.MonkeyPatch) -> None:
    from reconciler.store import sqlite_open

    monkeypatch.setattr(sqlite_open, "space_is_short", lambda _path: True)
    exc = sqlite3.OperationalError("disk I/O error")
    exc.sqlite_errorcode = 778  # type: ignore[attr-defined]
    assert isinstance(sqlite_problem(Path("/data/state.db"), exc), NoSpaceError)


@pytest.mark.parametrize("threads", [4, 8])
def test_many_first_opens_of_a_new_state_database_all_succeed(tmp_path: Path, threads: int) -> None:
    """A new file's switch to WAL fails at once while another connection holds a lock; opening waits
    that out, so a crowd opening one new state database all succeed."""

    def open_one(path: Path, start: threading.Barrier, errors: list[BaseException]) -> None:
        try:
            start.wait()
            SQLiteStore(path).close()
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    for round_ in range(8):
        path = tmp_path / f"round{round_}" / "state.db"
        errors: list[BaseException] = []
        start = threading.Barrier(threads)
        crowd = [threading.Thread(target=open_one, args=(path, start, errors)) for _ in range(threads)]
        for thread in crowd:
            thread.start()
        for thread in crowd:
            thread.join()
        assert errors == []


def test_reading_a_store_never_creates_one(tmp_path: Path) -> None:
    from reconciler.run.workspace import Workspace

    ws = Workspace(state_dir=tmp_path / "state")
    assert ws.existing_store() is None
    assert not (tmp_path / "state").exists()


def test_a_store_opened_to_read_refuses_to_write_in_one_line(tmp_path: Path) -> None:
    from tests.store.helpers import T0, record

    SQLiteStore(tmp_path / "state.db").close()
    with SQLiteStore(tmp_path / "state.db", read_only=True) as store:
        with pytest.raises(UserError, match="cannot write the state database: it is read-only here"):
            store.append(record(), at=T0)
        assert list(store.audit_log()) == []
