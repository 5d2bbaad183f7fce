"""A full disk, for real: the command under a file-size limit (``ulimit -f``, SIGXFSZ ignored, so a
write past the limit fails with EFBIG as on a full disk) fails with one clear line and exit 1,
never a traceback; nothing it wrote is half-written; and the next run, with room again, converges
with every ledger entry kept and ``audit verify`` intact.

The limits are chosen so the failure lands at different points: the very first write, the state
database's first transaction, midway through an apply (after some servers were made), the plan
file of ``plan --out``, and the signed checkpoint an apply appends at its end.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import json
import re
import resource
import signal
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.e2e.conftest import Cli, Result

ONE_LINE = re.compile(
    r"Error: reconciler: no space left writing (?P<file>\S+)(?: \([^)]*\))?: free space and run again"
)


def limited(max_bytes: int) -> Callable[[], None]:
    """For ``preexec_fn``: files this process writes may grow to ``max_bytes``; a write past that
    fails with EFBIG (SIGXFSZ, which would kill the process, is ignored)."""

    def apply_limit() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (max_bytes, max_bytes))

    return apply_limit


def assert_one_clear_line(result: Result) -> str:
    """Exit 1, no traceback, and exactly one error line, saying which file wanted room; its path."""
    assert result.code == 1, result.out + result.err
    assert "Traceback" not in result.err + result.out
    errors = [line for line in result.err.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, result.err
    found = ONE_LINE.fullmatch(errors[0])
    assert found is not None, errors[0]
    assert [line for line in result.err.splitlines() if line.strip()] == errors, result.err
    return found["file"]


def assert_converges(cli: Cli, workdir: Path, servers: int = 6) -> None:
    """With room again: apply converges, the next plan is empty, the ledgers verify."""
    again = cli("apply", str(workdir), "--yes")
    assert again.code == 0, again.out + again.err
    plan = cli("plan", str(workdir), "--detailed-exitcode")
    assert plan.code == 0, plan.out + plan.err
    assert len(json.loads(cli("simcloud", "list", "--format", "json").out)) == servers
    verify = cli("audit", "verify")
    assert verify.code == 0 and "intact" in verify.out, verify.out + verify.err


def no_temp_files(*folders: Path) -> None:
    left = [p for folder in folders if folder.exists() for p in folder.rglob("*.tmp")]
    assert left == []


@pytest.mark.parametrize(
    ("limit", "failing_file"),
    [
        (1, "simcloud.db"),  # the first write of all: simcloud's new file
        (40_000, "simcloud.db"),  # simcloud's tables
        (70_000, "state.db"),  # the state database's first transaction
    ],
)
def test_a_full_disk_at_the_first_writes_is_one_line_and_the_next_run_converges(
    cli: Cli, workdir: Path, state_dir: Path, limit: int, failing_file: str
) -> None:
    failed = cli("apply", str(workdir), "--yes", preexec_fn=limited(limit))
    assert Path(assert_one_clear_line(failed)).name == failing_file
    no_temp_files(state_dir)
    assert_converges(cli, workdir)


@pytest.mark.parametrize("limit", [130_000, 160_000, 200_000, 260_000, 330_000])
def test_a_full_disk_midway_through_an_apply_loses_no_ledger_entry(
    cli: Cli, workdir: Path, state_dir: Path, limit: int
) -> None:
    failed = cli("apply", str(workdir), "--yes", preexec_fn=limited(limit))
    if failed.code == 0:  # enough room for this whole apply on this machine: nothing to test here
        assert "6 succeeded" in failed.out
        return
    assert Path(assert_one_clear_line(failed)).name in ("state.db", "simcloud.db")
    made = json.loads(cli("simcloud", "list", "--format", "json").out)
    assert len(made) <= 6  # the last ones may fail after every server was made (verify, run end)
    no_temp_files(state_dir)
    assert_converges(cli, workdir)
    # Every server the failed run made is in the audit ledger: created, or recovered by the next run.
    log = [json.loads(line) for line in cli("audit", "log", "--format", "json").out.splitlines()]
    created = {e["resource_id"] for e in log if e["action"] == "create" and e["outcome"] == "succeeded"}
    recovered = {e["resource_id"] for e in log if e["outcome"] not in ("intent", "failed", "skipped")}
    assert {s["resource_id"] for s in made} <= created | recovered


def test_some_limit_fails_midway_after_servers_were_made(cli: Cli, workdir: Path, state_dir: Path) -> None:
    """At least one limit lands between the first server made and the last (the point of the test above)."""
    for limit in (160_000, 200_000, 260_000, 330_000, 420_000):
        failed = cli("apply", str(workdir), "--yes", preexec_fn=limited(limit))
        made = json.loads(cli("simcloud", "list", "--format", "json").out)
        if failed.code == 1 and 0 < len(made) < 6:
            assert_one_clear_line(failed)
            assert_converges(cli, workdir)
            return
        if failed.code == 0:
            break
    pytest.fail("no limit failed the apply midway")


def _grow(workdir: Path, count: int) -> None:
    shop = workdir / "shop.yaml"
    text, n = re.subn(r"(\n\s+web:\n(?:\s+.*\n)*?\s+count: )\d+", rf"\g<1>{count}", shop.read_text(), count=1)
    assert n == 1
    shop.write_text(text)


@pytest.mark.parametrize("fmt", ["json", "markdown", "text"])
def test_plan_out_on_a_full_disk_leaves_no_half_plan(
    cli: Cli, workdir: Path, tmp_path: Path, fmt: str
) -> None:
    _grow(workdir, 150)  # a plan file larger than the SQLite index files a plan opens (32 KiB)
    if fmt == "markdown":  # creates are one line per member there: resize 250 servers instead
        _grow(workdir, 250)
        assert cli("apply", str(workdir), "--yes").code == 0
        templates = workdir / "templates.yaml"
        text, n = re.subn(r"(name: web\n(?:.*\n)*?\s+cpus: )1\n", r"\g<1>2\n", templates.read_text(), count=1)
        assert n == 1
        templates.write_text(text)
    out = tmp_path / f"plan.{fmt}"
    whole = cli("plan", str(workdir), "--format", fmt)
    assert whole.code == 0, whole.err
    size = len(whole.out.encode())
    assert size > 40_000
    out.write_text("the previous plan\n")
    failed = cli("plan", str(workdir), "--format", fmt, "--out", str(out), preexec_fn=limited(size - 1))
    assert assert_one_clear_line(failed) == str(out)
    assert out.read_text() == "the previous plan\n"  # left as it was, never half a plan
    no_temp_files(tmp_path)
    again = cli("plan", str(workdir), "--format", fmt, "--out", str(out))
    assert again.code == 0 and out.stat().st_size == size


def _anchor_file(xdg: Path) -> Path:
    (found,) = (xdg / "reconciler" / "anchors").glob("*.jsonl")
    return found


def _pad_anchor(path: Path, copies: int) -> None:
    """Append ``copies`` checkpoints chained and signed like real ones, each repeating the newest's
    view of the ledgers (what a run that wrote nothing new would record), so the file is large."""
    from reconciler.run import anchor

    key = anchor.audit_key()
    lines = path.read_text().splitlines()
    last = json.loads(lines[-1])
    for _ in range(copies):
        point = {**last, "prev": last["mac"]}
        body = json.dumps({k: point[k] for k in anchor._FIELDS}, sort_keys=True, separators=(",", ":"))
        point["mac"] = hmac.new(key, body.encode(), hashlib.sha256).hexdigest()
        lines.append(json.dumps(point, sort_keys=True))
        last = point
    path.write_text("\n".join(lines) + "\n")


def test_a_full_disk_at_the_checkpoint_keeps_the_anchor_file_whole(
    cli: Cli, workdir: Path, state_dir: Path, _anchors_in_tmp: Path
) -> None:
    # The real clock throughout: a checkpoint's time is the wall clock's, and the usage ledger's
    # closed intervals are compared as of it, so the intervals must be closed on the same clock.
    real_clock = functools.partial(cli, now=None)
    cli = real_clock
    assert cli("apply", str(workdir), "--yes").code == 0
    path = _anchor_file(_anchors_in_tmp)
    _pad_anchor(path, 1500)  # larger than anything else the next apply writes
    assert cli("audit", "verify").code == 0
    before = path.read_bytes()
    assert cli("simcloud", "delete", "shop/web/2").code == 0

    failed = cli("apply", str(workdir), "--yes", preexec_fn=limited(len(before) + 50))
    assert assert_one_clear_line(failed) == str(path)
    assert path.read_bytes() == before  # not half a line: the file as it was
    no_temp_files(path.parent, state_dir)
    assert (
        len(json.loads(cli("simcloud", "list", "--format", "json").out)) == 6
    )  # the apply itself went through
    assert cli("audit", "verify").code == 0  # what it wrote after the newest checkpoint is not covered yet

    assert_converges(cli, workdir)
    assert len(path.read_bytes()) > len(before)  # the next run's checkpoint covers it
