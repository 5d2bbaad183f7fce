"""config.yamlsafe: safe, bounded YAML reading that keeps a line number for every node.

PyYAML only scans, parses and composes here; the node tree is converted to plain Python
values by our own code, which is what makes it safe and lets every value keep its line:

* Only plain values, lists and mappings exist: any explicit tag other than the core ones
  (``!!python/object``, ``!Ref``, ``!!binary``…) is an error, so nothing is ever constructed.
* Scalars follow the YAML 1.2 core schema (as editors using yaml-language-server do):
  ``yes``/``no``/``on``/``off`` are strings and ``1:30`` is not a number.
* Bounds: file size (1 MiB), documents per file (200), nesting depth (64), and the number of
  nodes reached *through aliases* (10 000), so a "billion laughs" file fails in milliseconds.
* Duplicate keys are errors naming both lines; ``<<`` merge keys work as usual.

The result of reading one file is a list of ``Document``s (value plus ``path -> line`` maps)
and the diagnostics found, ``complete=False`` when the file could not be read to its end.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from yaml.composer import Composer
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.parser import Parser
from yaml.reader import Reader
from yaml.resolver import BaseResolver
from yaml.scanner import Scanner, ScannerError

from reconciler.core.errors import Diagnostic

MAX_FILE_BYTES = 1024 * 1024
MAX_DOCUMENTS = 200
MAX_DEPTH = 64
MAX_ALIAS_NODES = 10_000

YamlPath = tuple[str | int, ...]

_CORE = "tag:yaml.org,2002:"
STR_TAG, INT_TAG, FLOAT_TAG = _CORE + "str", _CORE + "int", _CORE + "float"
BOOL_TAG, NULL_TAG, MERGE_TAG = _CORE + "bool", _CORE + "null", _CORE + "merge"
SEQ_TAG, MAP_TAG = _CORE + "seq", _CORE + "map"


class _CoreResolver(BaseResolver):
    """Implicit typing of plain scalars per the YAML 1.2 core schema (plus ``<<``)."""


_CoreResolver.add_implicit_resolver(
    BOOL_TAG, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
_CoreResolver.add_implicit_resolver(
    INT_TAG, re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$"), list("-+0123456789")
)
_CoreResolver.add_implicit_resolver(
    FLOAT_TAG,
    re.compile(
        r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
    ),
    list("-+0123456789."),
)
_CoreResolver.add_implicit_resolver(NULL_TAG, re.compile(r"^(?:~|null|Null|NULL|)$"), ["~", "n", "N", ""])
_CoreResolver.add_implicit_resolver(MERGE_TAG, re.compile(r"^(?:<<)$"), ["<"])


class _Loader(Reader, Scanner, Parser, Composer, _CoreResolver):
    """Scanner, parser and composer only: no constructor, so no object is ever built."""

    def __init__(self, stream: str) -> None:
        Reader.__init__(self, stream)
        Scanner.__init__(self)
        Parser.__init__(self)
        Composer.__init__(self)
        _CoreResolver.__init__(self)

    # Nesting is bounded while scanning: deep flow nesting makes PyYAML's scanner quadratic
    # and its composer recursive, so a file of '[' must fail at once, not after seconds.
    def fetch_flow_collection_start(self, TokenClass: Any) -> None:
        if self.flow_level >= MAX_DEPTH:
            raise ScannerError(None, None, _TOO_DEEP, self.get_mark())
        super().fetch_flow_collection_start(TokenClass)

    def add_indent(self, column: int) -> bool:
        if len(self.indents) >= MAX_DEPTH:
            raise ScannerError(None, None, _TOO_DEEP, self.get_mark())
        return bool(super().add_indent(column))


_TOO_DEEP = f"values are nested more than {MAX_DEPTH} levels deep"


@dataclass
class Document:
    """One YAML document: its value, and where each part of it was written."""

    file: str  # the path as the user named it, joined with the file's relative name
    rel: str  # the file's name relative to the folder the user named (for cross-references)
    index: int  # 1-based position of the document in its file
    line: int  # 1-based line where the document's content starts
    data: Any = None
    key_lines: dict[YamlPath, int] = field(default_factory=dict)
    value_lines: dict[YamlPath, int] = field(default_factory=dict)
    broken: bool = False  # conversion found errors: the value is not trustworthy

    def line_of(self, path: YamlPath) -> int:
        """Line of the key (or list item) at ``path``, or of its nearest written ancestor."""
        for end in range(len(path), 0, -1):
            line = self.key_lines.get(path[:end])
            if line is not None:
                return line
        return self.line

    def content_line(self, path: YamlPath) -> int:
        """First line of the value's content (for a ``|`` block: the line after the ``|``)."""
        return self.value_lines.get(path, self.line_of(path))


@dataclass
class FileResult:
    documents: list[Document]
    diagnostics: list[Diagnostic]
    complete: bool


class _Abort(Exception):
    """Stop converting one document (alias bomb, recursion, depth)."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line = line
        self.message = message


def _tag_message(tag: str) -> str:
    return (
        f"YAML tag {show_tag(tag)!r} is not allowed here; only plain values, lists and mappings are: "
        "remove the tag"
    )


def show_tag(tag: str) -> str:
    return "!!" + tag[len(_CORE) :] if tag.startswith(_CORE) else tag


def _line(node: Node) -> int:
    return int(node.start_mark.line) + 1


def _content_line(node: Node) -> int:
    if isinstance(node, ScalarNode) and node.style in ("|", ">"):
        return _line(node) + 1
    return _line(node)


class _Converter:
    """Turns one composed document into plain values, recording lines and bounding aliases."""

    def __init__(self, doc: Document) -> None:
        self.doc = doc
        self.diagnostics: list[Diagnostic] = []
        self.seen: set[int] = set()
        self.ancestors: set[int] = set()
        self.alias_budget = MAX_ALIAS_NODES
        self.alias_line = 0  # where the alias being expanded was used

    def error(self, line: int, message: str) -> None:
        self.doc.broken = True
        self.diagnostics.append(Diagnostic(self.doc.file, line, message))

    def convert(self, node: Node, path: YamlPath, aliased: bool = False, depth: int = 0) -> Any:
        ident = id(node)
        if ident in self.ancestors:
            raise _Abort(
                _line(node),
                "an alias refers to a node that contains it (a recursive alias); "
                "YAML here must be a tree: write the value out instead",
            )
        if depth > MAX_DEPTH:
            raise _Abort(_line(node), f"values are nested more than {MAX_DEPTH} levels deep; flatten them")
        if ident in self.seen and not aliased:
            aliased = True
            # A mapping value's key line is the use site; a list item's own line is the anchor's.
            use = path if path and isinstance(path[-1], str) else path[:-1]
            self.alias_line = self.doc.line_of(use)
        self.seen.add(ident)
        if aliased:
            self.alias_budget -= 1
            if self.alias_budget < 0:
                raise _Abort(
                    self.alias_line,
                    f"aliases expand to more than {MAX_ALIAS_NODES} values "
                    "(an alias bomb?); write the values out or use fewer aliases",
                )
        if isinstance(node, ScalarNode):
            return self.scalar(node)
        self.ancestors.add(ident)
        try:
            if isinstance(node, SequenceNode):
                return self.sequence(node, path, aliased, depth)
            if isinstance(node, MappingNode):
                return self.mapping(node, path, aliased, depth)
        finally:
            self.ancestors.discard(ident)
        raise AssertionError(f"unexpected YAML node {node!r}")  # pragma: no cover

    def scalar(self, node: ScalarNode) -> Any:
        text = str(node.value)
        tag = node.tag
        try:
            if tag == STR_TAG:
                return text
            if tag == NULL_TAG:
                return None
            if tag == BOOL_TAG:
                return {"true": True, "false": False}[text.lower()]
            if tag == INT_TAG:
                return int(text, 0) if text.startswith(("0x", "0o")) else int(text)
            if tag == FLOAT_TAG:
                return float(
                    text.replace(".inf", "inf")
                    .replace(".Inf", "inf")
                    .replace(".INF", "inf")
                    .replace(".nan", "nan")
                    .replace(".NaN", "nan")
                    .replace(".NAN", "nan")
                )
        except (KeyError, ValueError):
            self.error(
                _line(node), f"{text!r} cannot be read as {show_tag(tag)}; remove the tag or fix the value"
            )
            return None
        self.error(_line(node), _tag_message(tag))
        return None

    def sequence(self, node: SequenceNode, path: YamlPath, aliased: bool, depth: int) -> list[Any]:
        if node.tag != SEQ_TAG:
            self.error(_line(node), _tag_message(node.tag))
        items: list[Any] = []
        for index, item in enumerate(node.value):
            item_path = (*path, index)
            self.doc.key_lines[item_path] = _line(item)
            self.doc.value_lines[item_path] = _content_line(item)
            items.append(self.convert(item, item_path, aliased, depth + 1))
        return items

    def mapping(self, node: MappingNode, path: YamlPath, aliased: bool, depth: int) -> dict[str, Any]:
        if node.tag != MAP_TAG:
            self.error(_line(node), _tag_message(node.tag))
        result: dict[str, Any] = {}
        merges = [value for key, value in node.value if key.tag == MERGE_TAG]
        for source in merges:
            self.merge(source, result, path, aliased, depth)
        merged = set(result)
        first_line: dict[str, int] = {}
        for key_node, value_node in node.value:
            if key_node.tag == MERGE_TAG:
                continue
            if not isinstance(key_node, ScalarNode):
                self.error(
                    _line(key_node),
                    "a mapping key must be a plain word, not a list or a mapping; write the key as text",
                )
                continue
            if key_node.tag not in (STR_TAG, INT_TAG, FLOAT_TAG, BOOL_TAG, NULL_TAG):
                self.error(
                    _line(key_node),
                    f"YAML tag {show_tag(key_node.tag)!r} is not allowed on a key; remove the tag",
                )
                continue
            key = str(key_node.value)
            if key in first_line:
                self.error(
                    _line(key_node),
                    f"duplicate key {key!r} (first at line {first_line[key]}); keep only one of them",
                )
                continue
            first_line[key] = _line(key_node)
            merged.discard(key)
            key_path = (*path, key)
            self.doc.key_lines[key_path] = _line(key_node)
            self.doc.value_lines[key_path] = _content_line(value_node)
            result[key] = self.convert(value_node, key_path, aliased, depth + 1)
        return result

    def merge(self, source: Node, into: dict[str, Any], path: YamlPath, aliased: bool, depth: int) -> None:
        """``<<: *base`` or ``<<: [*a, *b]``: keys not already present are copied (earlier wins)."""
        sources = source.value if isinstance(source, SequenceNode) else [source]
        for item in sources:
            if not isinstance(item, MappingNode):
                self.error(
                    _line(item),
                    "'<<' (merge) needs a mapping or a list of mappings; "
                    "point it at an anchored mapping (<<: *base)",
                )
                continue
            value = self.convert(item, path, aliased, depth + 1)
            for key, entry in value.items():
                into.setdefault(key, entry)


def _syntax_message(exc: yaml.MarkedYAMLError) -> str:
    problem = str(exc.problem or "invalid YAML")
    if problem == _TOO_DEEP:
        return f"{problem}; flatten them"
    if "'\\t'" in problem:
        return "a tab character is used for indentation; YAML needs spaces: replace the tab with spaces"
    if problem.startswith("found undefined alias"):
        return f"YAML syntax error: {problem}; define the anchor (&name) before using *name"
    if (
        exc.context
        and exc.context_mark is not None
        and exc.context_mark.line != getattr(exc.problem_mark, "line", -1)
    ):
        problem = f"{problem} ({exc.context} at line {exc.context_mark.line + 1})"
    elif exc.context:
        problem = f"{problem} ({exc.context})"
    if "mapping values are not allowed" in problem:
        hint = "check the indentation, or quote a value that contains ': '"
    elif "could not find expected ':'" in problem:
        hint = "a key needs ': ' after it; check the indentation of this line and the one before"
    elif "expected <block end>" in problem:
        hint = "this line is indented differently from the lines around it; align it with its siblings"
    else:
        hint = "check the indentation and quoting on this line and the one before"
    return f"YAML syntax error: {problem}; {hint}"


def read_file(path: Path, display: str, rel: str) -> FileResult:
    """Read and convert every document of one file, bounded and with line numbers."""
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        return FileResult(
            [],
            [
                Diagnostic(
                    display,
                    None,
                    f"cannot read the file ({exc.strerror}); check that it exists and is readable",
                )
            ],
            False,
        )
    if len(raw) > MAX_FILE_BYTES:
        return FileResult(
            [],
            [
                Diagnostic(
                    display,
                    None,
                    "file is larger than 1 MiB; split the desired state into several smaller files",
                )
            ],
            False,
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        return FileResult(
            [],
            [
                Diagnostic(
                    display,
                    line,
                    f"file is not valid UTF-8 (byte 0x{raw[exc.start]:02x}); save it with UTF-8 encoding",
                )
            ],
            False,
        )
    return read_text(text, display, rel)


def read_text(text: str, display: str, rel: str) -> FileResult:
    documents: list[Document] = []
    diagnostics: list[Diagnostic] = []
    index = 0
    loader: _Loader | None = None
    try:
        loader = _Loader(text)
        while loader.check_node():
            index += 1
            if index > MAX_DOCUMENTS:
                line = int(loader.peek_event().start_mark.line) + 1  # type: ignore[no-untyped-call]
                diagnostics.append(
                    Diagnostic(
                        display,
                        line,
                        f"more than {MAX_DOCUMENTS} documents in one file; split it into several files",
                    )
                )
                return FileResult(documents, diagnostics, False)
            node = loader.get_node()
            if node is None:  # pragma: no cover - check_node said there is one
                break
            document = Document(file=display, rel=rel, index=index, line=_line(node))
            converter = _Converter(document)
            document.key_lines[()] = document.line
            try:
                document.data = converter.convert(node, ())
            except _Abort as abort:
                converter.error(abort.line, abort.message)
            diagnostics.extend(converter.diagnostics)
            if document.data is None and not document.broken:
                continue  # an empty document is fine
            documents.append(document)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        at = int(mark.line) + 1 if mark is not None else None
        diagnostics.append(Diagnostic(display, at, _syntax_message(exc)))
        return FileResult(documents, diagnostics, False)
    except yaml.reader.ReaderError as exc:
        line = text[: exc.position].count("\n") + 1
        diagnostics.append(
            Diagnostic(
                display, line, f"control character U+{exc.character:04X} is not allowed in YAML; remove it"
            )
        )
        return FileResult(documents, diagnostics, False)
    except RecursionError:  # pragma: no cover - the scanner bounds nesting first
        diagnostics.append(
            Diagnostic(
                display, None, f"values are nested too deeply; flatten them (at most {MAX_DEPTH} levels)"
            )
        )
        return FileResult(documents, diagnostics, False)
    finally:
        if loader is not None:
            loader.dispose()
    return FileResult(documents, diagnostics, True)
