"""The command line speaks one language: every option and positional has help text, the human format
is called ``text`` everywhere (``table`` still accepted), ``--out`` always means "write the file
instead of stdout", and colour can be turned off with ``--no-color`` as well as ``NO_COLOR``.
"""

from __future__ import annotations

import argparse
import importlib
import io
import shlex
from collections.abc import Iterator
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest

from reconciler.cli.main import COMMANDS, EXTENSIONS, build_parser, command_of, main

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


# --- building only the command the arguments name ------------------------------------------
README = Path(__file__).resolve().parents[2] / "README.md"


def _readme_command_lines() -> list[list[str]]:
    """Every ``reconciler …`` line of the README, as argv after the program's name."""
    lines = []
    for raw in README.read_text(encoding="utf-8").splitlines():
        text = raw.strip().removeprefix("$ ")
        if text.startswith("reconciler "):
            words = shlex.split(text, comments=True)
            lines.append(words[1:])
    return lines


EDGE_CASES = [
    ["--state-dir", "plan", "validate", "examples/clusters"],  # an option's value that is a command's name
    ["--state-dir=plan", "validate", "examples/clusters"],
    ["--state", "d", "validate", "examples/clusters"],  # an abbreviated option
    ["-vv", "--no-color", "--log-format", "json", "plan", "examples/clusters", "--yes"],  # plan has no --yes
    ["--actor", "ada", "apply", "--plan", "plan.json", "--skip-final-backup"],
    ["validate", "examples/clusters", "--state-dir", "s", "--deployment", "d"],
    ["usage", "report", "--by", "member"],
    ["backup", "run", "examples/clusters"],
    ["hash-password", "--help"],
    ["--log-format", "xml", "validate", "x"],  # a bad value of a global option
    ["--bogus", "validate", "x"],
    ["nonsense"],
    ["--version"],
    [],
]


def _outcome(parser: argparse.ArgumentParser, argv: list[str]) -> tuple[object, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        try:
            result: object = vars(parser.parse_args(argv))
        except SystemExit as exc:
            result = ("exit", exc.code)
    return result, out.getvalue(), err.getvalue()


@pytest.mark.parametrize("argv", _readme_command_lines() + EDGE_CASES, ids=" ".join)
def test_the_parser_of_the_named_command_reads_arguments_as_the_whole_one(argv: list[str]) -> None:
    assert _outcome(build_parser(command_of(argv)), argv) == _outcome(build_parser(), argv)


def test_the_command_is_named_only_when_it_is_plain() -> None:
    assert command_of(["--state-dir", "plan", "validate", "x"]) == "validate"
    assert command_of(["--state", "d", "--now=2026-01-01T00:00:00Z", "apply"]) == "apply"
    assert command_of(["-vv", "hash-password"]) == "hash-password"
    unsure = (["--help"], ["--version"], [], ["nonsense"], ["--bogus", "plan"], ["--log-format", "x", "plan"])
    for argv in unsure:
        assert command_of(argv) is None, argv


def test_every_command_is_built_by_the_part_that_says_it_adds_it() -> None:
    whole = _choices(build_parser())
    assert whole == sorted(COMMANDS)
    for name in COMMANDS:
        assert name in _choices(build_parser(name))
    for module, names in EXTENSIONS.items():  # each extension adds what the table says, nothing else
        parser = argparse.ArgumentParser()
        sub = parser.add_subparsers()
        importlib.import_module(module).add_commands(sub, argparse.ArgumentParser(add_help=False))
        assert tuple(sub.choices) == names, module


def _choices(parser: argparse.ArgumentParser) -> list[str]:
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return sorted(action.choices)
