"""The command line speaks one language: every option and positional has help text, the human format
is called ``text`` everywhere (``table`` still accepted), ``--out`` always means "write the file
instead of stdout", and colour can be turned off with ``--no-color`` as well as ``NO_COLOR``.
"""

from __future__ import annotations

import argparse
import io
from collections.abc import Iterator
from contextlib import redirect_stdout
from pathlib import Path

import pytest

from reconciler.cli.main import build_parser, main

Named = tuple[str, argparse.ArgumentParser]


def _parsers(parser: argparse.ArgumentParser, path: str = "reconciler") -> Iterator[Named]:
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield from _parsers(child, f"{path} {name}")


PARSERS = list(_parsers(build_parser()))


def test_every_option_and_positional_has_help() -> None:
    missing = [
        f"{path}: {'/'.join(action.option_strings) or action.dest}"
        for path, parser in PARSERS
        for action in parser._actions
        if not isinstance(action, argparse._SubParsersAction | argparse._HelpAction)
        and (not action.help or action.help == argparse.SUPPRESS)
    ]
    assert missing == []


def test_the_human_format_is_text_everywhere_and_table_an_alias() -> None:
    for path, parser in PARSERS:
        for action in parser._actions:
            if "--format" in action.option_strings and action.choices is not None:
                assert "table" not in action.choices, f"{path}: --format names the human format 'table'"
                if action.default is not None and "text" in action.choices:
                    assert action.default in action.choices
    parser = build_parser()
    assert parser.parse_args(["audit", "log", "--format", "table"]).format == "text"
    assert parser.parse_args(["simcloud", "list", "--format", "table"]).format == "text"
    assert parser.parse_args(["usage", "report", "--format", "table"]).format == "text"


def test_out_always_means_instead_of_stdout() -> None:
    for path, parser in PARSERS:
        for action in parser._actions:
            if "--out" in action.option_strings:
                said = action.help or ""
                assert "instead of stdout" in said, f"{path}: --out says {said!r}"


def test_no_color_is_accepted_before_and_after_the_command() -> None:
    parser = build_parser()
    assert parser.parse_args(["--no-color", "validate", "x"]).no_color is True
    assert parser.parse_args(["validate", "x", "--no-color"]).no_color is True


@pytest.mark.parametrize("flag", [True, False])
def test_no_color_or_NO_COLOR_turns_colour_off(
    flag: bool, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from reconciler.cli import common

    monkeypatch.setattr(common, "tty", lambda: True)
    if flag:
        args = argparse.Namespace(no_color=True)
    else:
        monkeypatch.setenv("NO_COLOR", "1")
        args = argparse.Namespace(no_color=False)
    assert common.color(args) is False
    monkeypatch.delenv("NO_COLOR", raising=False)
    assert common.color(argparse.Namespace(no_color=False)) is True
    out = io.StringIO()
    with redirect_stdout(out):
        assert main(["--no-color", "--state-dir", str(tmp_path), "audit", "log"]) == 0
    assert "\x1b[" not in out.getvalue()
