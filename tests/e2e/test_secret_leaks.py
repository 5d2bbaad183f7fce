"""No error path prints a secret value: failing validate, plan and apply runs, in both log
formats, a crash inside the apply, and logged tracebacks (which never show locals)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest
import structlog

from reconciler.cli import logs
from reconciler.cli.main import main

SECRET = "Zq9-s3cr3t-{kq7XW}-42"
PIECES = (SECRET, "s3cr3t", "kq7XW")  # the value, and parts of it a careless message could show
ENV = "RECONCILER_TEST_LEAK_SECRET"

PROVIDER = "apiVersion: reconciler/v1\nkind: Provider\nmetadata: {name: sim}\nspec: {type: simcloud}\n"
TEMPLATE = """\
apiVersion: reconciler/v1
kind: ServerTemplate
metadata: {name: app}
spec:
  image: {simcloud: img}
  size: {cpus: 1, memory_mb: 512, disk_gb: 5}
  inputs:
    password: {type: string, sensitive: true}
    token: {type: string, default: none}
  scripts:
    boot: |
      echo start
SCRIPT
"""
CLUSTER = """\
apiVersion: reconciler/v1
kind: Cluster
metadata: {name: shop}
spec:
  provider: sim
  members:
    app: {template: app, count: 2}
"""
INPUTS = """\
apiVersion: reconciler/v1
kind: Inputs
metadata: {name: all}
spec:
  scope: global
  values:
    password: {secret: env:RECONCILER_TEST_LEAK_SECRET}
TOKEN"""

ENVIRON = "    token: {secret: file:/proc/self/environ}\n"  # every environment variable, the secret too
REAL = '{% if password != "(sensitive)" %}'  # true only when rendered with the real secret


@dataclass(frozen=True)
class Leak:
    name: str
    script: str
    fails_from: str  # "validate": every command fails; "apply": only apply (with the real value)
    token: str = ""  # an Inputs value for 'token'


LEAKS = [
    Leak("key-from-the-secret", "{{ server[password] }}", "validate"),
    Leak("internals-of-the-secret", "{{ password.__class__ }}", "validate"),
    Leak("attribute-named-by-the-secret", "{{ password|attr(password) }}", "validate"),
    Leak("key-found-only-with-the-placeholder", '{{ {"(sensitive)": 1}[password] }}', "apply"),
    Leak("value-error-quoting-the-secret", REAL + "{{ [1].index(password) }}{% endif %}", "apply"),
    Leak("key-error-quoting-part-of-it", REAL + "{{ password.format() }}{% endif %}", "apply"),
    Leak("lookup-of-a-slice-of-it", REAL + '{{ {"a": 1}[password[4:10]] }}{% endif %}', "apply"),
    Leak("attribute-named-by-it", REAL + "{{ dict(a=1)|attr(password) + 1 }}{% endif %}", "apply"),
    Leak(
        "type-error-naming-it",
        "{% macro m() %}{% endmacro %}" + REAL + "{{ m(**{password: 1}) }}{% endif %}",
        "apply",
    ),
    Leak("limit-crossed-with-it", REAL + "{{ password * 1000000000 }}{% endif %}", "apply"),
    Leak("file-secret-of-the-environment", "{{ token }}", "apply", ENVIRON),
]


def _write(root: Path, leak: Leak) -> Path:
    folder = root / "state"
    folder.mkdir()
    script = "\n".join("      " + line for line in leak.script.splitlines())
    (folder / "provider.yaml").write_text(PROVIDER)
    (folder / "templates.yaml").write_text(TEMPLATE.replace("SCRIPT", script))
    (folder / "shop.yaml").write_text(CLUSTER)
    (folder / "inputs.yaml").write_text(INPUTS.replace("TOKEN", leak.token))
    return folder


def _assert_no_secret(text: str) -> None:
    for piece in PIECES:
        assert piece not in text, f"{piece!r} printed:\n{text}"


def _created(state: Path, capsys: pytest.CaptureFixture[str]) -> list[object]:
    assert main(["simcloud", "list", "--format", "json", "--state-dir", str(state)]) == 0
    rows: list[object] = json.loads(capsys.readouterr().out)
    return rows


@pytest.mark.parametrize("fmt", ["console", "json"])
@pytest.mark.parametrize("leak", LEAKS, ids=[leak.name for leak in LEAKS])
def test_failing_runs_never_print_the_secret(
    leak: Leak, fmt: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ENV, SECRET)
    folder = _write(tmp_path, leak)
    state = tmp_path / "state-dir"
    commands = ("validate", "plan", "apply") if leak.fails_from == "validate" else ("plan", "apply")
    for command in commands:
        args = ["--log-format", fmt, "-vv", command, str(folder), "--state-dir", str(state)]
        code = main([*args, "--yes"] if command == "apply" else args)
        captured = capsys.readouterr()
        _assert_no_secret(captured.out + captured.err)
        expected_failure = command == "apply" or leak.fails_from == "validate"
        assert (code == 1) == expected_failure, f"{command}: exit {code}\n{captured.err}"
        if expected_failure:
            assert "Traceback" not in captured.err
            assert "Error: " in captured.err and str(folder) in captured.err  # located
    if state.exists():
        assert _created(state, capsys) == [], "apply created servers although a script cannot render"


@pytest.mark.parametrize("fmt", ["console", "json"])
def test_a_render_failing_inside_the_apply_prints_no_secret(
    fmt: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Without the check before the apply, the first create renders the failing script itself:
    # the change fails, its traceback is logged, and still no value is printed.
    monkeypatch.setenv(ENV, SECRET)
    monkeypatch.setattr("reconciler.run.apply.check_secrets", lambda servers: None)
    folder = _write(tmp_path, LEAKS[4])
    state = tmp_path / "state-dir"
    code = main(["--log-format", fmt, "apply", str(folder), "--yes", "--state-dir", str(state)])
    captured = capsys.readouterr()
    assert code == 1
    assert "cannot be rendered for shop/app/0" in captured.out + captured.err
    _assert_no_secret(captured.out + captured.err)
    assert _created(state, capsys) == []


@pytest.mark.parametrize("fmt", ["console", "json"])
def test_a_logged_traceback_never_shows_local_variables(fmt: str, capsys: pytest.CaptureFixture[str]) -> None:
    logs.configure(fmt=fmt)
    try:
        context = {"password": SECRET}  # a render's locals hold its secret values
        raise ValueError(f"failed with {len(context)} inputs")
    except ValueError:
        structlog.get_logger("test").exception("change crashed", change="shop/app/0")
    err = capsys.readouterr().err
    assert "change crashed" in err and "ValueError: failed with 1 inputs" in err.replace("\\n", "\n")
    _assert_no_secret(err)

