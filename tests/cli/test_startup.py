"""The command line starts at once: ``--help`` builds every parser without importing the engine, and
``validate`` loads only what checking YAML needs. A structural test (which modules a fresh process
has imported), never a timing one: timings are for ``bench/bench_scale.py``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.engine.test_session import DESIRED

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

# Slow to import, and needed by none of these commands: SDKs, the engine's libraries, the web stack.
HEAVY = (
    "boto3", "botocore", "openstack", "keystoneauth1", "libvirt", "XenAPI",
    "networkx", "celpy", "lark", "rich", "structlog", "git", "starlette", "uvicorn", "prometheus_client",
)
ENGINE = (
    "reconciler.run.planning", "reconciler.run.session", "reconciler.store.sqlite", "reconciler.daemon.loop",
)

PROBE = """
import json, sys
from reconciler.cli.main import main
try:
    code = main(sys.argv[1:])
except SystemExit as exc:
    code = exc.code
print(json.dumps({"code": code, "modules": sorted(sys.modules)}), file=sys.stderr)
"""


def _imported(*argv: str) -> tuple[int, set[str]]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *argv], capture_output=True, text=True, timeout=120, check=False
    )
    report = json.loads(done.stderr.strip().splitlines()[-1])
    return report["code"], set(report["modules"])


def _top(modules: set[str]) -> set[str]:
    return {m.split(".")[0] for m in modules}


@pytest.mark.parametrize("argv", [["--help"], ["plan", "--help"], ["apply", "--help"]])
def test_help_imports_no_heavy_module_and_no_engine(argv: list[str]) -> None:
    code, modules = _imported(*argv)
    assert code == 0
    assert _top(modules) & set(HEAVY) == set()
    assert modules & set(ENGINE) == set()
    for light in ("jsonschema", "jinja2", "yaml", "croniter"):  # not even the config layer's
        assert light not in _top(modules), light
    layers = ("reconciler.config.", "reconciler.run.", "reconciler.billing.")
    assert not any(m.startswith(layers) for m in modules - {"reconciler.run.logger"})


@pytest.mark.parametrize(
    "folder", ["clusters", "clusters-aws", "clusters-openstack", "clusters-libvirt", "clusters-xcp"]
)
def test_validate_imports_what_checking_yaml_needs_only(tmp_path: Path, folder: str) -> None:
    """No cloud's SDK, nor its provider module: a type's spec and capabilities come from its
    ``spec`` module (``core.provider.type_facts``)."""
    code, modules = _imported("--state-dir", str(tmp_path), "validate", str(EXAMPLES / folder))
    assert code == 0
    assert _top(modules) & set(HEAVY) == set()
    assert modules & set(ENGINE) == set()
    assert not {m for m in modules if m.startswith("providers.") and m.endswith(".provider")}
    assert "reconciler.core.console_model" not in modules  # no Console document in these folders


def test_validate_compiles_cel_only_for_a_policy_with_rules(tmp_path: Path) -> None:
    desired = tmp_path / "desired"
    shutil.copytree(EXAMPLES / "clusters", desired)
    shutil.copy(EXAMPLES / "policies" / "shop-limits.yaml", desired / "shop-limits.yaml")
    code, modules = _imported("--state-dir", str(tmp_path / "state"), "validate", str(desired))
    assert code == 1  # the example servers lack the policy's required tags: a deny violation
    assert "celpy" in _top(modules)
    assert _top(modules) & (set(HEAVY) - {"celpy", "lark"}) == set()


def test_plan_and_apply_load_croniter_only_for_a_schedule_and_rich_only_for_a_bar(tmp_path: Path) -> None:
    """No backup policy and no change window: nothing to tick, so no croniter; in a pipe the apply
    prints plain lines, so no rich."""
    desired = tmp_path / "desired"
    desired.mkdir()
    (desired / "state.yaml").write_text(DESIRED, encoding="utf-8")  # no BackupPolicy, no Policy
    state = ["--state-dir", str(tmp_path / "state")]
    for argv in (["plan", str(desired)], ["apply", str(desired), "--yes"]):
        code, modules = _imported(*state, *argv)
        assert code == 0, argv
        assert not _top(modules) & {"croniter", "rich"}, argv
    scheduled = tmp_path / "scheduled"
    shutil.copytree(EXAMPLES / "clusters", scheduled)  # a backup policy: its schedule is ticked
    code, modules = _imported(*state, "plan", str(scheduled))
    assert code == 0 and "croniter" in _top(modules)


def test_logging_set_up_before_structlog_is_imported_applies_when_it_is() -> None:
    probe = (
        "import sys\n"
        "from reconciler.cli import logs\n"
        "logs.configure(fmt='json', verbosity=1)\n"
        "assert 'structlog' not in sys.modules\n"
        "import structlog\n"
        "structlog.get_logger('probe').info('hello', n=1)\n"
        "logs.logger('probe').warning('lazy')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    lines = [json.loads(line) for line in done.stderr.splitlines()]
    assert [(x["event"], x["level"]) for x in lines] == [("hello", "info"), ("lazy", "warning")]
    assert lines[0]["n"] == 1 and "timestamp" in lines[0]


def _child(parser: argparse.ArgumentParser, name: str) -> argparse.ArgumentParser:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            found: argparse.ArgumentParser = action.choices[name]
            return found
    raise AssertionError(name)


def test_the_parser_offers_the_choices_and_default_the_engine_names() -> None:
    from reconciler.billing.export import EXPORT_MODES
    from reconciler.billing.modes import BILLED, REPORT_MODES
    from reconciler.billing.usage import GROUPINGS
    from reconciler.cli import usage
    from reconciler.cli.main import build_parser
    from reconciler.core.records import AuditAction

    assert usage.DEFAULT_MODE == BILLED
    parser = build_parser()
    report = parser.parse_args(["usage", "report"])
    assert report.mode == BILLED and report.by == "cluster"
    sub = {a.dest: a for a in _child(_child(parser, "usage"), "report")._actions}
    assert tuple(sub["by"].choices or ()) == GROUPINGS and tuple(sub["mode"].choices or ()) == REPORT_MODES
    assert parser.parse_args(["usage", "export", "--mode", "both"]).mode == "both"
    assert set(EXPORT_MODES) == {"instance-hours", "measured", "both"}
    assert parser.parse_args(["audit", "log", "--action", "create"]).action == [AuditAction.CREATE.value]
    with pytest.raises(SystemExit):
        parser.parse_args(["audit", "log", "--action", "nope"])
