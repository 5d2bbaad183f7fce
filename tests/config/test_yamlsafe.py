"""Safe YAML reading: plain values only, YAML 1.2 scalars, line numbers, merge keys and bounds."""

from __future__ import annotations

import time
from pathlib import Path

from reconciler.config.yamlsafe import MAX_ALIAS_NODES, read_file, read_text


def test_values_follow_the_yaml_1_2_core_schema() -> None:
    text = (
        "a: yes\nb: on\nc: 1:30\nd: 0x1f\ne: 0o17\nf: 2.5e3\ng: ~\nh: TRUE\ni: 2026-11-01\nj: '7'\nk: 012\n"
    )
    [doc] = read_text(text, "f.yaml", "f.yaml").documents
    assert doc.data == {
        "a": "yes",
        "b": "on",
        "c": "1:30",
        "d": 31,
        "e": 15,
        "f": 2500.0,
        "g": None,
        "h": True,
        "i": "2026-11-01",
        "j": "7",
        "k": 12,
    }


def test_every_key_and_item_keeps_its_line() -> None:
    text = "# comment\nspec:\n  members:\n    web:\n      count: 2\n  list:\n    - a\n    - b\n"
    [doc] = read_text(text, "f.yaml", "f.yaml").documents
    assert doc.line == 2
    assert doc.line_of(("spec", "members", "web", "count")) == 5
    assert doc.line_of(("spec", "list", 1)) == 8
    # a path that does not exist points at its nearest written ancestor
    assert doc.line_of(("spec", "members", "web", "template")) == 4


def test_block_scalar_content_starts_on_the_line_after_the_indicator() -> None:
    [doc] = read_text("script: |\n  echo one\n  echo two\nother: x\n", "f.yaml", "f.yaml").documents
    assert doc.line_of(("script",)) == 1
    assert doc.content_line(("script",)) == 2
    assert doc.data["script"] == "echo one\necho two\n"


def test_merge_keys_copy_what_is_not_set_explicitly() -> None:
    text = "base: &base {count: 1, drift: warn}\nweb:\n  <<: *base\n  count: 3\n"
    [doc] = read_text(text, "f.yaml", "f.yaml").documents
    assert doc.data["web"] == {"count": 3, "drift": "warn"}
    assert doc.line_of(("web", "count")) == 4


def test_several_documents_and_empty_ones() -> None:
    result = read_text("---\na: 1\n---\n---\n# only a comment\n---\nb: 2\n", "f.yaml", "f.yaml")
    assert result.complete and not result.diagnostics
    assert [d.data for d in result.documents] == [{"a": 1}, {"b": 2}]
    assert [d.index for d in result.documents] == [1, 4]


def test_empty_file_is_fine(tmp_path: Path) -> None:
    (tmp_path / "empty.yaml").write_text("")
    result = read_file(tmp_path / "empty.yaml", "x/empty.yaml", "empty.yaml")
    assert result.complete and result.documents == [] and result.diagnostics == []


def test_byte_order_mark_is_accepted(tmp_path: Path) -> None:
    (tmp_path / "bom.yaml").write_bytes("\ufeffa: 1\n".encode())
    [doc] = read_file(tmp_path / "bom.yaml", "bom.yaml", "bom.yaml").documents
    assert doc.data == {"a": 1}


def test_modest_alias_use_is_allowed() -> None:
    text = "base: &b {cpus: 2, memory_mb: 1024}\n" + "".join(f"m{i}: *b\n" for i in range(100))
    [doc] = read_text(text, "f.yaml", "f.yaml").documents
    assert doc.data["m99"] == {"cpus": 2, "memory_mb": 1024}


def test_alias_bomb_stops_within_the_budget_quickly() -> None:
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for prev, name in zip("abcdefghijkl", "bcdefghijklm", strict=True):
        lines.append(f"{name}: &{name} [" + ",".join([f"*{prev}"] * 10) + "]")
    started = time.monotonic()
    result = read_text("\n".join(lines) + "\n", "bomb.yaml", "bomb.yaml")
    assert time.monotonic() - started < 0.5
    [diagnostic] = result.diagnostics
    assert f"more than {MAX_ALIAS_NODES} values" in diagnostic.message


def test_deep_nesting_fails_fast_in_flow_and_block_style() -> None:
    flow = "a: " + "[" * 200_000 + "]" * 200_000 + "\n"
    block = "".join(" " * level + f"k{level}:\n" for level in range(100))
    for text, line in ((flow, 1), (block, 65)):
        started = time.monotonic()
        result = read_text(text, "deep.yaml", "deep.yaml")
        assert time.monotonic() - started < 0.5
        assert [str(d) for d in result.diagnostics] == [
            f"deep.yaml:{line}: values are nested more than 64 levels deep; flatten them"
        ]
        assert not result.complete


def test_non_scalar_keys_and_bad_explicit_scalars_are_errors() -> None:
    result = read_text("? [a, b]\n: 1\nc: !!int twelve\n", "f.yaml", "f.yaml")
    assert [str(d) for d in result.diagnostics] == [
        "f.yaml:1: a mapping key must be a plain word, not a list or a mapping; write the key as text",
        "f.yaml:3: 'twelve' cannot be read as !!int; remove the tag or fix the value",
    ]
