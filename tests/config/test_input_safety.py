"""The input-safety rules from the accepting side, and the pieces the bad-input corpus cannot show.

The corpus (``bad_cases_safety.py``) proves each bad input is refused with its message; here:
the documented maxima are what the schemas say and are themselves accepted (and plan and
apply at those sizes and prices), legitimate look-alikes pass (29 February, multi-line
values, a link to a file inside the folder), and the file reader refuses a FIFO, a device
or an oversized file from the open file's own ``fstat`` without reading it.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import pytest

from reconciler.cli.main import build_parser, main
from reconciler.config import load_desired_state
from reconciler.config.schema import ecma_pattern
from reconciler.config.yamlsafe import MAX_FILE_BYTES, read_file
from reconciler.core import cron, limits
from reconciler.core.errors import UserError
from reconciler.core.plan_codec import dump_plan, load_plan
from reconciler.run.planning import plan_path
from reconciler.run.workspace import Workspace
from tests.config.badcase import BASE, WEB, cluster
from tests.config.conftest import WriteFiles

SCHEMAS = Path(__file__).resolve().parents[2] / "reconciler" / "schemas"
NOW = "2026-11-02T10:00:00Z"

# (schema file, JSON pointer to the property) -> the limit it must carry as maximum
MAXIMA: dict[tuple[str, str], int] = {
    ("server-template.json", "/properties/spec/properties/size/properties/cpus"): limits.MAX_CPUS,
    ("server-template.json", "/properties/spec/properties/size/properties/memory_mb"): limits.MAX_MEMORY_MB,
    ("server-template.json", "/properties/spec/properties/size/properties/disk_gb"): limits.MAX_DISK_GB,
    ("cluster.json", "/$defs/member/properties/count"): limits.MAX_COUNT,
    ("cluster.json", "/$defs/member/properties/autoscale/properties/min"): limits.MAX_COUNT,
    ("cluster.json", "/$defs/member/properties/autoscale/properties/max"): limits.MAX_COUNT,
    ("cluster.json", "/$defs/member/properties/autoscale/properties/target"): limits.MAX_SCALE_TARGET,
    (
        "cluster.json",
        "/$defs/member/properties/autoscale/properties/cooldown_seconds",
    ): limits.MAX_WAIT_SECONDS,
    ("cluster.json", "/$defs/member/properties/failover/properties/grace_seconds"): limits.MAX_WAIT_SECONDS,
    (
        "cluster.json",
        "/$defs/member/properties/failover/properties/max_per_hour",
    ): limits.MAX_FAILOVERS_PER_HOUR,
    ("provider.json", "/properties/spec/properties/max_parallel"): limits.MAX_PARALLEL,
    ("backup-policy.json", "/properties/spec/properties/retention/properties/keep_last"): limits.MAX_KEEP,
    ("backup-policy.json", "/properties/spec/properties/retention/properties/keep_daily"): limits.MAX_KEEP,
    ("backup-policy.json", "/properties/spec/properties/retention/properties/keep_weekly"): limits.MAX_KEEP,
    ("backup-policy.json", "/properties/spec/properties/retention/properties/keep_monthly"): limits.MAX_KEEP,
    ("backup-policy.json", "/properties/spec/properties/max_age_hours"): limits.MAX_AGE_HOURS,
    ("alert-sink.json", "/properties/spec/properties/timeout_seconds"): limits.MAX_ALERT_TIMEOUT_SECONDS,
    ("alert-sink.json", "/properties/spec/properties/retries"): limits.MAX_ALERT_RETRIES,
}


def _at(schema: dict[str, Any], pointer: str) -> Any:
    node: Any = schema
    for part in pointer.strip("/").split("/"):
        node = node[part]
    return node


def _numbers(node: Any, path: str = "") -> list[tuple[str, dict[str, Any]]]:
    """Every schema node that admits a number or an integer, with its pointer."""
    found: list[tuple[str, dict[str, Any]]] = []
    if isinstance(node, dict):
        if node.get("type") in ("integer", "number"):
            found.append((path, node))
        for key, value in node.items():
            found += _numbers(value, f"{path}/{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += _numbers(value, f"{path}/{index}")
    return found


@pytest.mark.parametrize(
    ("schema", "pointer"), sorted(MAXIMA), ids=[f"{s}:{p.rsplit('/', 1)[-1]}" for s, p in sorted(MAXIMA)]
)
def test_schema_maxima_are_the_documented_limits(schema: str, pointer: str) -> None:
    prop = _at(json.loads((SCHEMAS / schema).read_text()), pointer)
    assert prop["maximum"] == MAXIMA[(schema, pointer)]


def test_every_number_of_every_schema_is_bounded() -> None:
    for path in sorted(SCHEMAS.glob("*.json")):
        for pointer, node in _numbers(json.loads(path.read_text())):
            assert "maximum" in node or "exclusiveMaximum" in node, f"{path.name}{pointer} has no maximum"


def test_money_patterns_and_maxima_agree_with_the_limits() -> None:
    for name, key in (("price-list.json", "rate"), ("budget.json", "amount")):
        number, string = json.loads((SCHEMAS / name).read_text())["$defs"][key]["anyOf"]
        assert number["exclusiveMaximum"] == limits.MONEY_LIMIT
        assert string["not"]["pattern"] == f"[0-9]{{{limits.MONEY_DIGITS + 1}}}"
        assert limits.MONEY_DIGITS == limits.MONEY_PLACES


def _largest(write_files: WriteFiles, count: int = limits.MAX_COUNT) -> Path:
    """Every setting at its maximum (``count`` servers of web: the maximum unless a test wants speed)."""
    template = (
        BASE.replace("cpus: 1", f"cpus: {limits.MAX_CPUS}")
        .replace("memory_mb: 1024", f"memory_mb: {limits.MAX_MEMORY_MB}")
        .replace("disk_gb: 10", f"disk_gb: {limits.MAX_DISK_GB}")
        .replace("  type: simcloud\n", f"  type: simcloud\n  max_parallel: {limits.MAX_PARALLEL}\n")
    )
    prices = (
        "apiVersion: reconciler/v1\nkind: PriceList\nmetadata:\n  name: top\nspec:\n  currency: USD\n"
        "  flat_monthly: '999999999.999999999'\n  units:\n    vcpu_hour: '999999999.999999999'\n"
        "    ram_gb_hour: '0.000000001'\n    disk_gb_month: 999999999.5\n"
    )
    budget = (
        "apiVersion: reconciler/v1\nkind: Budget\nmetadata:\n  name: cap\nspec:\n  scope: global\n"
        "  monthly: '999999999.999999999'\n"
    )
    policy = (
        "apiVersion: reconciler/v1\nkind: BackupPolicy\nmetadata:\n  name: leap\nspec:\n"
        "  schedule: '0 0 29 2 *'\n  retention: {keep_last: 1000, keep_daily: 1000, keep_weekly: 1000, "
        "keep_monthly: 1000}\n  max_age_hours: 87600\n"
    )
    members = WEB.replace("count: 2", f"count: {count}") + (
        "      failover: {grace_seconds: 604800, max_per_hour: 1000}\n"
        "    app:\n      template: web\n      autoscale: {min: 1, max: 1000, metric: network, "
        "target: 1000000000000, cooldown_seconds: 604800}\n"
    )
    return write_files(
        {
            "base.yaml": template,
            "prices.yaml": prices,
            "budget.yaml": budget,
            "policy.yaml": policy,
            "shop.yaml": cluster(members),
        }
    )


def test_the_maxima_themselves_are_accepted(write_files: WriteFiles) -> None:
    state = load_desired_state(_largest(write_files))
    assert len(state.servers) == limits.MAX_COUNT + 1
    size = state.servers[0].size
    assert (size.cpus, size.memory_mb, size.disk_gb) == (
        limits.MAX_CPUS,
        limits.MAX_MEMORY_MB,
        limits.MAX_DISK_GB,
    )


def test_plan_and_apply_at_the_maxima_run_to_the_end(
    write_files: WriteFiles, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = _largest(write_files, count=3)  # sizes and prices at their maxima; the count costs time only
    state = tmp_path / "state"
    common = ["--state-dir", str(state), "--now", NOW]
    assert main(["plan", str(folder), *common]) == 0
    assert main(["apply", str(folder), "--yes", *common]) == 0
    assert main(["plan", str(folder), "--detailed-exitcode", *common]) == 0
    out = capsys.readouterr().out
    assert "Apply complete: 4 succeeded, 0 failed, 0 skipped." in out
    assert "No changes." in out


@pytest.mark.parametrize(
    "schedule",
    ["0 0 29 2 *", "0 0 * 2 5#5", "0 0 L 2 *", "0 0 30 2 1", "0 2 * * *", "*/5 * 31 1,3 *"],
)
def test_rare_schedules_that_do_fire_are_accepted(schedule: str) -> None:
    started = time.monotonic()
    assert cron.fires(schedule)
    assert time.monotonic() - started < 0.5


def test_multi_line_values_and_scripts_keep_their_tabs_and_newlines(write_files: WriteFiles) -> None:
    template = BASE.replace("echo {{ port }} {{ tier }}", "echo {{ port }}\n      \techo {{ tier }}").replace(
        "    password:\n", "    cert:\n      type: string\n    password:\n"
    )
    shop = cluster(WEB + '      inputs:\n        cert: "-----BEGIN-----\\n\\tline\\n-----END-----\\n"\n')
    state = load_desired_state(write_files({"base.yaml": template, "shop.yaml": shop}))
    server = state.servers[0]
    assert (
        dict((i.name, i.value) for i in server.inputs)["cert"] == "-----BEGIN-----\n\tline\n-----END-----\n"
    )
    assert "\techo {{ tier }}" in server.scripts[0].source


def test_a_link_to_a_file_inside_the_folder_is_followed(write_files: WriteFiles) -> None:
    folder = write_files({"shared/base.txt": BASE, "clusters/shop.yaml": cluster(WEB)})
    os.symlink("../shared/base.txt", folder / "clusters" / "base.yaml")
    state = load_desired_state(folder)
    assert [s.key for s in state.servers] == ["shop/web/0", "shop/web/1"]


def test_a_linked_folder_is_not_descended(write_files: WriteFiles, tmp_path: Path) -> None:
    outside = write_files({"more.yaml": "not: [valid"})
    folder = write_files({"base.yaml": BASE, "shop.yaml": cluster(WEB)})
    os.symlink(outside, folder / "linked")
    assert len(load_desired_state(folder).servers) == 2


def test_naming_a_device_or_a_fifo_is_refused_at_once(tmp_path: Path) -> None:
    pipe = tmp_path / "pipe.yaml"
    os.mkfifo(pipe)
    for path, kind in ((Path(os.devnull), "a character device"), (pipe, "a named pipe (FIFO)")):
        with pytest.raises(UserError) as caught:
            load_desired_state(path)
        assert str(caught.value) == (
            f"{path}: is {kind}, not a file or folder; give the folder (or file) that holds the "
            "desired-state YAML"
        )


def test_the_reader_itself_refuses_a_fifo_without_blocking(tmp_path: Path) -> None:
    """The loader checks entries before reading; the reader checks the opened file again (races)."""
    pipe = tmp_path / "swapped.yaml"
    os.mkfifo(pipe)
    started = time.monotonic()
    result = read_file(pipe, str(pipe), pipe.name)
    assert time.monotonic() - started < 1.0
    assert not result.complete and result.documents == []
    assert [d.message for d in result.diagnostics] == [
        "is a named pipe (FIFO), not a regular file; only regular files are read: remove it, or rename it "
        "so that it does not end in .yaml or .yml"
    ]


def test_the_size_is_checked_before_reading(tmp_path: Path) -> None:
    huge = tmp_path / "huge.yaml"
    with huge.open("wb") as handle:
        handle.truncate(64 * 1024**3)  # sparse: 64 GiB that nobody could read in a test
    started = time.monotonic()
    result = read_file(huge, str(huge), huge.name)
    assert time.monotonic() - started < 1.0
    assert [d.message for d in result.diagnostics] == [
        "file is larger than 1 MiB; split the desired state into several smaller files"
    ]
    exact = tmp_path / "exact.yaml"
    exact.write_bytes(b"#" * MAX_FILE_BYTES)
    assert read_file(exact, str(exact), exact.name).diagnostics == []


@pytest.mark.parametrize(
    ("pattern", "text", "matches"),
    [
        ("^[a-z]+$", "web", True),
        ("^[a-z]+$", "web\n", False),
        ("^[$a]+$", "$a$", True),
        ("^a\\$$", "a$", True),
        ("^a\\$$", "a$\n", False),
    ],
)
def test_patterns_anchor_as_json_schema_defines(pattern: str, text: str, matches: bool) -> None:
    assert bool(ecma_pattern(pattern).search(text)) is matches


def _saved_plan(write_files: WriteFiles, tmp_path: Path) -> dict[str, Any]:
    ws = Workspace(state_dir=tmp_path / "state")
    try:
        plan = plan_path(write_files({"base.yaml": BASE, "shop.yaml": cluster(WEB)}), ws)
    finally:
        ws.close()
    data: dict[str, Any] = json.loads(dump_plan(plan))
    return data


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: d["changes"][0]["after"]["size"].update(memory_mb=10**20), "memory_mb must be an integer"),
        (
            lambda d: d["changes"][0]["after"]["size"].update(cpus=4096),
            "cpus must be an integer from 1 to 1024",
        ),
        (lambda d: d["price_lists"][0]["flavor_hourly"].update({"sim.small": "9" * 3000}), "must be below"),
        (lambda d: d["cost"].update(before_hourly="lots"), "InvalidOperation"),
    ],
    ids=["memory", "cpus", "price", "not-a-decimal"],
)
def test_an_edited_plan_file_is_held_to_the_same_limits(
    write_files: WriteFiles, tmp_path: Path, edit: Any, message: str
) -> None:
    data = _saved_plan(write_files, tmp_path)
    if not data.get("price_lists"):
        data["price_lists"] = [{"name": "p", "flavor_hourly": {}}]
    edit(data)
    with pytest.raises(UserError, match="not a valid plan file") as caught:
        load_plan(json.dumps(data), source="edited.json")
    assert message in str(caught.value)


def test_a_saved_plan_that_is_a_fifo_is_refused_at_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pipe = tmp_path / "plan.json"
    os.mkfifo(pipe)
    started = time.monotonic()
    code = main(["apply", "--plan", str(pipe), "--state-dir", str(tmp_path / "state"), "--now", NOW])
    assert time.monotonic() - started < 5.0
    assert code == 1
    assert capsys.readouterr().err.splitlines() == [
        f"Error: {pipe}: is a named pipe (FIFO), not a regular file; only regular files are read: give the "
        "plan file that plan --format json --out wrote"
    ]
    assert not (tmp_path / "state").exists()


@pytest.mark.parametrize("value", ["inf", "nan", "1e400", "86401", "0", "-5", "soon"])
def test_daemon_intervals_are_finite_and_at_most_a_day(
    value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    parser = build_parser()
    for option in ("--interval", "--git-poll"):
        with pytest.raises(SystemExit) as caught:
            parser.parse_args(["run", "--source", "repo", option, value])
        assert caught.value.code == 2
        err = capsys.readouterr().err
        assert f"argument {option}: {value!r} " in err and "Traceback" not in err
    args = parser.parse_args(["run", "--source", "repo", "--interval", "86400", "--git-poll", "0.5"])
    assert (args.interval, args.git_poll) == (86400.0, 0.5)
