"""Every case of the bad-input corpus, through the command: exit 1, the exact file:line
messages on stderr, no traceback, nothing applied and nothing written."""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.cli.main import main
from tests.config.bad_cases import CASES
from tests.config.badcase import BadCase, expected_lines, write_case
from tests.e2e.conftest import Cli


def _write_case(case: BadCase, root: Path) -> Path:
    folder = root / "case"
    write_case(case, folder)
    return folder


@pytest.mark.parametrize("command", ["validate", "plan", "apply"])
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input_is_reported_and_nothing_is_written(
    case: BadCase,
    command: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    folder = _write_case(case, tmp_path)
    state = tmp_path / "state"
    for name, value in case.env.items():
        monkeypatch.setenv(name, value)
    args = [command, str(folder), "--state-dir", str(state)]
    if command == "apply":
        args.append("--yes")
    code = main(args)
    captured = capsys.readouterr()
    assert code == 1
    assert "Traceback" not in captured.err
    expected = [f"Error: {line}" for line in expected_lines(case, folder)]
    assert captured.err.splitlines() == expected
    assert not state.exists(), "a state directory was written for bad input"


def test_bad_input_in_a_real_process(cli: Cli, tmp_path: Path) -> None:
    case = CASES[0]
    folder = _write_case(case, tmp_path)
    result = cli("apply", str(folder), "--yes")
    assert result.code == 1
    assert "Traceback" not in result.err
    assert result.err.splitlines() == [f"Error: {line}" for line in expected_lines(case, folder)]
