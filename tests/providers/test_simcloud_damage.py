"""A damaged simcloud file — garbage bytes, cut short, a text file, only its header — is one error
naming the file and what to do, from every side that opens it (the provider, the admin functions, the
CLI), never a traceback or a "cloud refused" that would be retried or recorded as the cloud's."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from providers.simcloud.admin import admin_fail, admin_list
from reconciler.cli.main import main
from reconciler.core.errors import UserError
from tests.providers.test_simcloud import OWNER, make_sim, request

DAMAGE: dict[str, Callable[[bytes], bytes]] = {
    "garbage": lambda data: os.urandom(len(data)),
    "truncated": lambda data: data[: len(data) // 2],
    "text": lambda _data: b"hello, I am not a database\n" * 200,
    "header-only": lambda data: data[:100],
}
OPERATIONS: dict[str, Callable[[Path], object]] = {
    "observe": lambda d: make_sim(d).observe(OWNER),
    "create": lambda d: make_sim(d).create(request("shop/db/0")),
    "lookup": lambda d: make_sim(d).lookup(OWNER, "some-token"),
    "admin list": admin_list,
    "admin fail": lambda d: admin_fail(d, "shop/web/0"),
}


def _damaged(state_dir: Path, how: str) -> Path:
    sim = make_sim(state_dir)
    for i in range(60):  # several pages, so cutting the file short loses some
        sim.create(request(f"shop/web/{i}"))
    sim.close()
    path = state_dir / "simcloud.db"
    path.write_bytes(DAMAGE[how](path.read_bytes()))
    return path


@pytest.mark.parametrize("operation", sorted(OPERATIONS))
@pytest.mark.parametrize("how", sorted(DAMAGE))
def test_a_damaged_file_is_one_user_error_naming_it(tmp_path: Path, how: str, operation: str) -> None:
    path = _damaged(tmp_path, how)
    with pytest.raises(UserError) as caught:
        OPERATIONS[operation](tmp_path)
    (message,) = [str(d) for d in caught.value.diagnostics]
    assert message.startswith(f"{path}: simcloud's file is damaged (")
    assert "move it aside" in message


@pytest.mark.parametrize("how", sorted(DAMAGE))
def test_simcloud_list_on_a_damaged_file_is_one_line(
    tmp_path: Path, how: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _damaged(tmp_path, how)
    assert main(["--state-dir", str(tmp_path), "simcloud", "list"]) == 1
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith(f"Error: {path}: simcloud's file is damaged"), err


def test_moved_aside_the_simulated_cloud_starts_empty(tmp_path: Path) -> None:
    path = _damaged(tmp_path, "garbage")
    path.rename(tmp_path / "simcloud.db.damaged")
    assert make_sim(tmp_path).observe(OWNER) == []


ROW_EDITS = {
    "unknown status": "UPDATE servers SET status = 'exploded' WHERE rowid = 3",
    "bad creation time": "UPDATE servers SET created_at = 'yesterday' WHERE rowid = 3",
    "tags not json": "UPDATE servers SET user_tags = '[[' WHERE rowid = 3",
    "tags not pairs": "UPDATE servers SET user_tags = '[1, 2]' WHERE rowid = 3",
}


@pytest.mark.parametrize("edit", sorted(ROW_EDITS))
def test_a_garbled_server_row_is_one_user_error_naming_the_file(tmp_path: Path, edit: str) -> None:
    sim = make_sim(tmp_path)
    for i in range(5):
        sim.create(request(f"shop/web/{i}"))
    sim.close()
    path = tmp_path / "simcloud.db"
    conn = sqlite3.connect(path)
    with conn:
        conn.execute(ROW_EDITS[edit])
    conn.close()
    with pytest.raises(UserError) as caught:
        make_sim(tmp_path).observe(OWNER)
    (message,) = [str(d) for d in caught.value.diagnostics]
    assert message.startswith(f"{path}: simcloud's file is damaged (the row of server ")
