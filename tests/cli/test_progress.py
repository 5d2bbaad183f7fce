"""Apply's progress: a real bar on a terminal — done/total, failed and skipped, elapsed and time
left, a bar per provider when there are several, a line per failure as it happens — and
nothing of it anywhere else (a pipe, ``--log-format json``): plain lines only.
"""

from __future__ import annotations

import io
import re

import pytest
from rich.console import Console

from reconciler.cli import progress
from reconciler.run.executor import ChangeResult, ChangeStatus
from tests.engine.factories import desired, run_diff

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def _changes(providers: tuple[str, ...] = ("sim",)) -> list[ChangeResult]:
    want = [desired(f"shop/web/{i}", provider=providers[i % len(providers)]) for i in range(6)]
    changes = run_diff(want, []).changes
    ok, failed, skipped = ChangeStatus.SUCCEEDED, ChangeStatus.FAILED, ChangeStatus.SKIPPED
    statuses = [ok, ok, ok, failed, skipped, ok]
    return [
        ChangeResult(c, s, message="quota exceeded" if s is ChangeStatus.FAILED else "", resource_id=f"i-{n}")
        for n, (c, s) in enumerate(zip(changes, statuses, strict=True))
    ]


def _live(results: list[ChangeResult]) -> str:
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=140, color_system=None)
    on_result, stop = progress.reporter([r.change for r in results], live=True, console=console)
    for result in results:
        on_result(result)
    stop()
    return ANSI.sub("", out.getvalue())


def test_a_terminal_gets_a_bar_with_counts_times_and_a_line_per_failure() -> None:
    text = _live(_changes())
    final = text.replace("\r", "\n").splitlines()
    assert "failed + shop/web/3 (i-3): quota exceeded" in text
    bars = [line for line in final if "applying" in line]
    assert bars and "6/6" in bars[-1] and "1 failed, 1 skipped" in bars[-1]
    assert "elapsed 0:00:0" in bars[-1] and "left" in bars[-1]


def test_several_providers_get_a_bar_each() -> None:
    text = _live(_changes(("aws", "sim")))
    lines = text.replace("\r", "\n").splitlines()
    assert any(" aws " in line and "3/3" in line and "0 failed, 1 skipped" in line for line in lines)
    assert any(" sim " in line and "3/3" in line and "1 failed, 0 skipped" in line for line in lines)
    assert any("applying" in line and "6/6" in line and "1 failed, 1 skipped" in line for line in lines)


@pytest.mark.parametrize("changes", [True, False])
def test_elsewhere_only_plain_lines(changes: bool, capsys: pytest.CaptureFixture[str]) -> None:
    results = _changes() if changes else []
    on_result, stop = progress.reporter([r.change for r in results], live=False)
    for result in results:
        on_result(result)
    stop()
    out = capsys.readouterr().out
    assert "\x1b" not in out and "applying" not in out and "elapsed" not in out
    assert out.splitlines() == [progress.plain_line(r) for r in results]
    if changes:
        assert out.splitlines()[3] == "+ shop/web/3 failed (i-3): quota exceeded"
