"""libyaml reads what the pure-Python loader reads, exactly: the same values, lines and messages.

``config.yamlsafe`` composes with libyaml's C parser when it can and falls back to the pure
loader for every file libyaml refuses or might read otherwise. Here both are run over the
bad-input corpus, the examples and seeded random texts, and must agree wherever the C path
answers; the bounds hold on the C path too.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest

from reconciler.config import yamlnodes, yamlsafe
from reconciler.config.yamlsafe import MAX_DEPTH, FileResult, read_text
from tests.config.bad_cases import CASES

pytestmark = pytest.mark.skipif(not yamlnodes.LIBYAML, reason="PyYAML is built without libyaml here")

ROOT = Path(__file__).resolve().parents[2]


def _shape(result: FileResult) -> tuple[Any, ...]:
    return (
        result.complete,
        [str(d) for d in result.diagnostics],
        [
            (d.file, d.rel, d.index, d.line, d.data, d.key_lines, d.value_lines, d.broken)
            for d in result.documents
        ],
    )


def _c_path(text: str) -> FileResult | None:
    return yamlsafe._read_with_libyaml(text, "f.yaml", "f.yaml")


def _agree(text: str) -> bool:
    """True when the C path answered (and then it must agree with the pure loader)."""
    fast = _c_path(text)
    if fast is None:
        return False
    assert _shape(fast) == _shape(yamlsafe._read_text(text, "f.yaml", "f.yaml")), repr(text)
    return True


def test_the_corpus_and_the_examples_read_alike() -> None:
    texts = [text for case in CASES for text in case.files.values()]
    texts += [p.read_text() for p in sorted(ROOT.glob("examples/**/*.y*ml"))]
    answered = sum(_agree(text) for text in texts)
    assert answered > len(texts) * 0.8  # the C path is the common one


ALPHABET = [
    *"ab1 :-?,[]{}#&*!|>'\"%@`\n\n  ", "- ", ": ", "? ", "---\n", "...\n", "\\", "<<", "~", ".", "0x",
    "&a ", "*a", "!!str ", "\\u", "\\x", "é", "\x00", "\x1b", "\x7f", "\u00a0", "\U0001f600",
    "\t", "\r\n", "\ufeff", "\x85", "\u2028", "|#", ">-#",
]


def test_random_texts_read_alike() -> None:
    rng = random.Random(20261203)
    answered = 0
    for _ in range(6000):
        text = "".join(rng.choice(ALPHABET) for _ in range(rng.randint(1, 16)))
        answered += _agree(text)
    assert answered > 300


KEYS = ["a", "name", "count", "<<", "'q'", '"d"', "x y", "1", "true", "null", "k:", "-k", "é", "a#b", ""]
VALUES = [
    "1", "0x1f", "1e999", ".inf", "yes", "~", "''", "'it''s'", '"a\\"b"', '"\\u00e9"', '"\\x1b"', "[1, 2]",
    "{a: 1}", "[a, {b: c}]", "&a 1", "*a", "&b {x: 1}", "*b", "|", "|-", ">", "plain text", "a: b", "- x",
    "x # c", "x#c", "'multi", "@x", "[a:b]", "{a:b}", "[a, b", "]", "'", "---", "...", "\x1b", "😀", "012",
]


def test_random_documents_read_alike() -> None:
    rng = random.Random(7)
    answered = 0
    for _ in range(4000):
        lines = []
        for _ in range(rng.randint(1, 7)):
            indent = " " * rng.choice([0, 0, 2, 2, 4, 1, 3, 6])
            pick = rng.random()
            if pick < 0.15:
                lines.append(f"{indent}- {rng.choice(VALUES)}")
            elif pick < 0.2:
                lines.append(indent + rng.choice(["---", "...", "# comment", "", "  text line"]))
            elif pick < 0.3:
                lines.append(f"{indent}{rng.choice(KEYS)}:")
            else:
                lines.append(f"{indent}{rng.choice(KEYS)}: {rng.choice(VALUES)}")
        answered += _agree("\n".join(lines) + "\n")
    assert answered > 300


@pytest.mark.parametrize(
    "text",
    [
        "a:\tb\n",  # libyaml takes the tab as white space; PyYAML refuses it
        "a: b\r\nc: d\r\n",
        "a: 1\n\ufeff",
        "x: [a?b]\n",  # libyaml keeps '?' in a flow scalar
        "? a\n",  # an explicit key: the empty value's line differs
        "a: !\n",  # the non-specific tag
        "a: !x&y 1\n",
        "a: |#\n  x\n",
    ],
)
def test_what_libyaml_reads_otherwise_goes_to_the_pure_loader(text: str) -> None:
    assert _c_path(text) is None
    pure = yamlsafe._read_text(text, "f.yaml", "f.yaml")
    assert _shape(read_text(text, "f.yaml", "f.yaml")) == _shape(pure)


def test_nesting_is_bounded_on_the_c_path_too() -> None:
    fits = "a: " + "[" * MAX_DEPTH + "]" * MAX_DEPTH + "\n"
    assert _agree(fits)
    deep = "a: " + "[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1) + "\n"
    assert yamlsafe._read_with_libyaml(deep, "f.yaml", "f.yaml") is None
    block = "".join(" " * (2 * i) + f"k{i}:\n" for i in range(MAX_DEPTH + 2))
    block += " " * (2 * MAX_DEPTH + 4) + "x\n"
    assert yamlsafe._read_with_libyaml(block, "f.yaml", "f.yaml") is None
    for text in (deep, block, "[" * 500_000):
        [message] = read_text(text, "f.yaml", "f.yaml").diagnostics
        assert f"nested more than {MAX_DEPTH} levels deep" in str(message)


def test_without_libyaml_the_pure_loader_reads_everything(monkeypatch: pytest.MonkeyPatch) -> None:
    text = "a: 1\nb: [x, {c: d}]\nscript: |\n  echo hi\n"
    fast = read_text(text, "f.yaml", "f.yaml")
    monkeypatch.setattr(yamlnodes, "LIBYAML", False)
    monkeypatch.setattr(yamlnodes, "_CLoader", None)  # would raise if it were called
    assert _shape(read_text(text, "f.yaml", "f.yaml")) == _shape(fast)
