"""A read-only state dir: the commands that only read (``audit log``, ``audit verify``, ``usage report``,
``simcloud list``, ``plan``) work and write nothing; the commands that write say so in one line.

The state dir and the anchor folder are made read-only with ``chmod -R a-w``. Tests run as root
here, whom file modes do not stop, and the interpreter lives where an unprivileged user may not
read it (so ``setuid(nobody)`` would leave no Python to run): each command therefore runs as
root without the capabilities that override file modes (``CAP_DAC_OVERRIDE``,
``CAP_DAC_READ_SEARCH``, ``CAP_FOWNER``, dropped from the child's bounding set before it execs),
which makes root obey the modes like any owner. As another user, no capability needs dropping.
When neither is possible the tests skip, saying why.
"""

from __future__ import annotations

import ctypes
import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import Cli, Result

PR_CAPBSET_DROP = 24
CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER = 1, 2, 3


def obey_file_modes() -> None:
    """For ``preexec_fn``: as root, give up the capabilities that override file modes."""
    if os.geteuid() != 0:
        return
    libc = ctypes.CDLL(None, use_errno=True)
    for cap in (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER):
        if libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP) refused")


def _modes_bind(tmp_path: Path) -> str | None:
    """Why a child cannot be kept from writing a read-only folder here, or None when it can."""
    probe = tmp_path / "probe"
    probe.mkdir()
    probe.chmod(0o555)
    try:
        done = subprocess.run(
            [sys.executable, "-c", f"open({str(probe / 'x')!r}, 'w')"],
            preexec_fn=obey_file_modes,
            capture_output=True,
            text=True,
        )
    except OSError as exc:
        return f"cannot drop the capabilities that override file modes ({exc})"
    finally:
        probe.chmod(0o755)
    if done.returncode == 0:
        return "file modes do not stop this user, and its capabilities cannot be dropped"
    return None


def _chmod(paths: list[Path], writable: bool) -> None:
    for top in paths:
        for path in [top, *top.rglob("*")]:
            mode = path.stat().st_mode & 0o7777
            path.chmod(mode | 0o200 if writable else mode & ~0o222)


def _snapshot(*folders: Path) -> dict[str, tuple[int, int]]:
    return {
        str(path): (path.stat().st_size, path.stat().st_mtime_ns)
        for folder in folders
        for path in [folder, *folder.rglob("*")]
    }


@pytest.fixture
def read_only(
    cli: Cli, workdir: Path, state_dir: Path, tmp_path: Path, _anchors_in_tmp: Path
) -> Iterator[Cli]:
    """An applied deployment whose state dir and anchors are read-only; the CLI, bound by file modes."""
    reason = _modes_bind(tmp_path)
    if reason is not None:
        pytest.skip(reason)
    applied = cli("apply", str(workdir), "--yes")
    assert applied.code == 0, applied.out + applied.err
    folders = [state_dir, _anchors_in_tmp]
    _chmod(folders, writable=False)

    def run(*args: str, **kwargs: object) -> Result:
        return cli(*args, preexec_fn=obey_file_modes, **kwargs)

    try:
        yield run
    finally:
        _chmod(folders, writable=True)


def _clean(result: Result) -> None:
    assert result.code == 0, result.out + result.err
    assert "Traceback" not in result.err and "Error" not in result.err, result.err


def test_read_commands_work_and_write_nothing(
    read_only: Cli, workdir: Path, state_dir: Path, _anchors_in_tmp: Path
) -> None:
    before = _snapshot(state_dir, _anchors_in_tmp)

    log = read_only("audit", "log")
    _clean(log)
    assert "shop/db/0" in log.out and "create" in log.out
    entries = [json.loads(line) for line in read_only("audit", "log", "--format", "json").out.splitlines()]
    assert len(entries) >= 14
    verify = read_only("audit", "verify")
    _clean(verify)
    assert "intact" in verify.out and "anchored: 1 signed checkpoints agree" in verify.out
    report = read_only(
        "usage", "report", "--format", "json", "--to", "2026-11-02T12:00:00Z", now="2026-11-02T12:00:00Z"
    )
    _clean(report)
    assert json.loads(report.out)["rows"][0]["instances"] == 6
    listed = read_only("simcloud", "list", "--format", "json")
    _clean(listed)
    assert len(json.loads(listed.out)) == 6
    table = read_only("simcloud", "list")
    _clean(table)
    assert "shop/web/2" in table.out
    plan = read_only("plan", str(workdir), "--detailed-exitcode")
    _clean(plan)
    assert "No changes" in plan.out
    markdown = read_only("plan", str(workdir), "--format", "markdown")
    _clean(markdown)

    assert _snapshot(state_dir, _anchors_in_tmp) == before  # not a byte, not a new file


def test_plan_sees_changes_from_a_read_only_state_dir(read_only: Cli, workdir: Path, tmp_path: Path) -> None:
    shop = workdir / "shop.yaml"
    shop.write_text(shop.read_text().replace("count: 3", "count: 4", 1))
    plan = read_only("plan", str(workdir), "--detailed-exitcode", "--out", str(tmp_path / "plan.txt"))
    assert plan.code == 2, plan.out + plan.err
    assert plan.out == ""  # --out: the file instead of stdout
    assert (tmp_path / "plan.txt").read_text().count("1 to create") == 1


def _one_error(result: Result) -> str:
    assert result.code == 1, result.out + result.err
    assert "Traceback" not in result.err + result.out
    lines = [line for line in result.err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.err
    return lines[0]


@pytest.mark.parametrize(
    ("args", "names"),
    [
        (("apply", "{workdir}", "--yes"), "state.db: cannot write the state database: it is read-only here"),
        (
            ("destroy", "{workdir}", "--yes"),
            "state.db: cannot write the state database: it is read-only here",
        ),
        (("simcloud", "fail", "shop/web/0"), "simcloud.db: simcloud's file is read-only here"),
        (("simcloud", "delete", "shop/web/1"), "simcloud.db: simcloud's file is read-only here"),
        (
            ("plan", "{workdir}", "--out", "{state}/plan.txt"),
            "cannot write {state}/plan.txt: Permission denied",
        ),
    ],
)
def test_writing_commands_say_so_in_one_line(
    read_only: Cli, workdir: Path, state_dir: Path, args: tuple[str, ...], names: str
) -> None:
    filled = [a.format(workdir=workdir, state=state_dir) for a in args]
    line = _one_error(read_only(*filled))
    assert names.format(state=state_dir) in line, line
    if "state database" in line:
        assert "need write access to" in line and "plan, audit log, audit verify, usage report" in line
    assert sorted(p.name for p in state_dir.iterdir()) == ["simcloud.db", "state.db"]  # nothing new


def test_a_signed_plan_needs_a_key_it_cannot_make_here(read_only: Cli, workdir: Path) -> None:
    """``plan --format json`` signs the plan; with no key yet and the state dir read-only, none can
    be made there: one line says so and how to give one. Given one, it works."""
    line = _one_error(read_only("plan", str(workdir), "--format", "json"))
    assert "plan.key" in line and "RECONCILER_PLAN_KEY" in line
    signed = read_only("plan", str(workdir), "--format", "json", env={"RECONCILER_PLAN_KEY": "k" * 40})
    _clean(signed)
    assert json.loads(signed.out)["signature"]


def _leave_a_write_ahead_log(db: Path) -> None:
    """Commit a change that stays in ``state.db-wal`` (a process that ended without checkpointing)."""
    code = (
        f"import os, sqlite3; c = sqlite3.connect({str(db)!r}, isolation_level=None); "
        "c.execute('PRAGMA wal_autocheckpoint = 0'); "
        "c.execute(\"UPDATE lease SET holder = holder || '+'\"); os._exit(0)"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
    assert Path(f"{db}-wal").stat().st_size > 0


def test_a_pending_write_ahead_log_is_read_with_its_index(
    cli: Cli, workdir: Path, state_dir: Path, tmp_path: Path
) -> None:
    reason = _modes_bind(tmp_path)
    if reason is not None:
        pytest.skip(reason)
    assert cli("apply", str(workdir), "--yes").code == 0
    _leave_a_write_ahead_log(state_dir / "state.db")
    _chmod([state_dir], writable=False)
    try:
        verify = cli("audit", "verify", preexec_fn=obey_file_modes)
        _clean(verify)
        with sqlite3.connect(f"file:{state_dir / 'state.db'}?mode=ro", uri=True) as conn:
            assert conn.execute("SELECT holder FROM lease").fetchone()[0].endswith("+")  # the log's change
    finally:
        _chmod([state_dir], writable=True)


def test_a_pending_write_ahead_log_without_its_index_is_one_clear_line(
    cli: Cli, workdir: Path, state_dir: Path, tmp_path: Path
) -> None:
    """SQLite reads a log only through its ``-shm`` index, which it cannot make in a read-only folder;
    reading the file alone would miss what the log holds, so the command says what to do instead."""
    reason = _modes_bind(tmp_path)
    if reason is not None:
        pytest.skip(reason)
    assert cli("apply", str(workdir), "--yes").code == 0
    _leave_a_write_ahead_log(state_dir / "state.db")
    Path(f"{state_dir / 'state.db'}-shm").unlink()
    _chmod([state_dir], writable=False)
    try:
        line = _one_error(cli("audit", "log", preexec_fn=obey_file_modes))
        assert (
            "state.db: cannot be read without write access: changes are still in its write-ahead log" in line
        )
        _chmod([state_dir], writable=True)
        assert cli("audit", "verify").code == 0  # with write access, the log is folded in
    finally:
        _chmod([state_dir], writable=True)
