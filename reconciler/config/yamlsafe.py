"""config.yamlsafe: safe, bounded YAML reading that keeps a line number for every node.

PyYAML only scans, parses and composes here; the node tree is converted to plain Python
values by our own code, which is what makes it safe and lets every value keep its line:

* Only plain values, lists and mappings exist: any explicit tag other than the core ones
  (``!!python/object``, ``!Ref``, ``!!binary``…) is an error, so nothing is ever constructed.
* Scalars follow the YAML 1.2 core schema (as editors using yaml-language-server do):
  ``yes``/``no``/``on``/``off`` are strings and ``1:30`` is not a number.
* Bounds: file size (1 MiB, checked on the open file before reading), documents per file
  (200), nesting depth (64), and the number of nodes reached *through aliases* (10 000), so
  a "billion laughs" file fails in milliseconds.
* Only regular files are read: the file is opened without blocking and checked with
  ``fstat`` before a byte is read, so a FIFO, socket or device named ``*.yaml`` is an error,
  never a hang.
* Values every kind must obey: numbers are finite (``.inf``, ``.nan`` and ``1e999`` are
  errors), integers fit in 64 bits, and no key or value holds a control character (a
  value may hold newlines and tabs: scripts and multi-line strings need them; a key may not).
* Duplicate keys are errors naming both lines; ``<<`` merge keys work as usual.

Files are composed by libyaml's C parser where it reads them exactly as the pure-Python loader
would, else by that loader (``config.yamlnodes``); the conversion below is the same for both.

The result of reading one file is a list of ``Document``s (value plus ``path -> line`` maps)
and the diagnostics found, ``complete=False`` when the file could not be read to its end.
"""

from __future__ import annotations

import math
import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from reconciler.config import yamlnodes
from reconciler.config.yamlnodes import (
    BOOL_TAG,
    CORE,
    FLOAT_TAG,
    INT_TAG,
    MAP_TAG,
    MERGE_TAG,
    NULL_TAG,
    SEQ_TAG,
    STR_TAG,
    TOO_DEEP,
    PureLoader,
)
from reconciler.config.yamlnodes import MAX_DEPTH as MAX_DEPTH
from reconciler.config.yamlnodes import MAX_DOCUMENTS as MAX_DOCUMENTS
from reconciler.core.errors import Diagnostic
from reconciler.core.limits import INT64_MAX

MAX_FILE_BYTES = 1024 * 1024
MAX_ALIAS_NODES = 10_000

YamlPath = tuple[str | int, ...]


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
    """One YAML file read: its documents, what is wrong with it, whether every document was read."""

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
    return "!!" + tag[len(CORE) :] if tag.startswith(CORE) else tag


def dotted(path: YamlPath) -> str:
    """``("spec", "members", "web", "count")`` → ``spec.members.web.count``."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text or "the document"


# C0 controls, DEL and C1 controls (Unicode category Cc). A value may hold tab and newline.
_KEY_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")
_VALUE_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_CONTROL_NAMES = {
    0: "NUL", 7: "BEL", 8: "backspace", 9: "tab", 10: "newline", 13: "carriage return", 27: "ESC", 127: "DEL"
}


def control_character(char: str) -> str:
    """``U+001B (ESC)``: a control character as a message names it."""
    code = ord(char)
    name = _CONTROL_NAMES.get(code)
    return f"U+{code:04X}" + (f" ({name})" if name else "")


def _abbrev(text: str) -> str:
    """A number as written, shortened when very long (``12345678901234567890… (3000 characters)``)."""
    return text if len(text) <= 30 else f"{text[:20]}… ({len(text)} characters)"


_INT_DIGITS = 20  # no integer of more digits fits in 64 bits (nor is one parsed: int() is quadratic)


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
            return self.scalar(node, path)
        self.ancestors.add(ident)
        try:
            if isinstance(node, SequenceNode):
                return self.sequence(node, path, aliased, depth)
            if isinstance(node, MappingNode):
                return self.mapping(node, path, aliased, depth)
        finally:
            self.ancestors.discard(ident)
        raise AssertionError(f"unexpected YAML node {node!r}")  # pragma: no cover

    def scalar(self, node: ScalarNode, path: YamlPath) -> Any:
        text = str(node.value)
        tag = node.tag
        try:
            if tag == STR_TAG:
                return self.string(node, path, text)
            if tag == NULL_TAG:
                return None
            if tag == BOOL_TAG:
                return {"true": True, "false": False}[text.lower()]
            if tag == INT_TAG:
                return self.integer(node, path, text)
            if tag == FLOAT_TAG:
                return self.number(node, path, text)
        except (KeyError, ValueError):
            self.error(
                _line(node),
                f"{_abbrev(text)!r} cannot be read as {show_tag(tag)}; remove the tag or fix the value",
            )
            return None
        self.error(_line(node), _tag_message(tag))
        return None

    def string(self, node: ScalarNode, path: YamlPath, text: str) -> str | None:
        found = _VALUE_CONTROL.search(text)
        if found is None:
            return text
        line = _line(node)
        if node.style == "|":  # a literal block keeps its lines: point at the one holding it
            line = _content_line(node) + text[: found.start()].count("\n")
        self.error(
            line,
            f"{dotted(path)} contains the control character {control_character(found.group())}; "
            "remove it (only tabs and newlines may appear in a value)",
        )
        return None

    def integer(self, node: ScalarNode, path: YamlPath, text: str) -> int | None:
        digits = text.lstrip("+-")
        if len(digits) <= _INT_DIGITS + 2:  # room for a 0x or 0o prefix
            value = int(text, 0) if digits.startswith(("0x", "0o")) else int(text)
            if -INT64_MAX - 1 <= value <= INT64_MAX:
                return value
        self.error(
            _line(node),
            f"{dotted(path)} {_abbrev(text)} is out of range: integers here fit in 64 bits "
            f"(-{INT64_MAX + 1} to {INT64_MAX}); use a smaller number",
        )
        return None

    def number(self, node: ScalarNode, path: YamlPath, text: str) -> float | None:
        value = float(
            text.replace(".inf", "inf")
            .replace(".Inf", "inf")
            .replace(".INF", "inf")
            .replace(".nan", "nan")
            .replace(".NaN", "nan")
            .replace(".NAN", "nan")
        )
        if math.isfinite(value):
            return value
        if "inf" in text.lower() or "nan" in text.lower():
            problem = f"is {text}, which is not a finite number; write a number such as 0.5"
        else:
            problem = f"{_abbrev(text)} is too large to be a number; write a smaller one"
        self.error(_line(node), f"{dotted(path)} {problem}")
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
            control = _KEY_CONTROL.search(key)
            if control is not None:
                self.error(
                    _line(key_node),
                    f"key {key!r} in {dotted(path)} contains the control character "
                    f"{control_character(control.group())}; remove it (a key is one plain word)",
                )
                continue
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
    if problem == TOO_DEEP:
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


_FILE_KINDS = (
    (stat.S_ISDIR, "a folder"),
    (stat.S_ISFIFO, "a named pipe (FIFO)"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
)


def file_kind(mode: int) -> str | None:
    """``a named pipe (FIFO)``, ``a socket``…: what a non-regular file is (None for a regular file)."""
    if stat.S_ISREG(mode):
        return None
    return next((words for test, words in _FILE_KINDS if test(mode)), "not a regular file")


class Unreadable(Exception):
    """Why a file cannot be read, phrased to follow its name (``x.yaml: is a socket, …``)."""


_TOO_LARGE = "file is larger than 1 MiB; split the desired state into several smaller files"
_NOT_YAML = "remove it, or rename it so that it does not end in .yaml or .yml"


def read_bytes(path: Path, limit: int, *, too_large: str, fix: str) -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes; ``Unreadable`` when it cannot be had.

    Opened with ``O_NONBLOCK`` and checked with ``fstat`` before anything is read, so a FIFO,
    socket or device is refused at once (opening a FIFO would otherwise wait for a writer;
    ``fix`` ends that message), and so is a file over the limit (``too_large`` is the
    message); reading stops at ``limit + 1`` bytes in case the file grows meanwhile.
    """
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        raise Unreadable(
            f"cannot read the file ({exc.strerror}); check that it exists and is readable"
        ) from None
    try:
        info = os.fstat(fd)
        kind = file_kind(info.st_mode)
        if kind is not None:
            raise Unreadable(f"is {kind}, not a regular file; only regular files are read: {fix}")
        if info.st_size > limit:
            raise Unreadable(too_large)
        with os.fdopen(os.dup(fd), "rb") as handle:
            raw = handle.read(limit + 1)
    except OSError as exc:
        raise Unreadable(
            f"cannot read the file ({exc.strerror}); check that it exists and is readable"
        ) from None
    finally:
        os.close(fd)
    if len(raw) > limit:
        raise Unreadable(too_large)
    return raw


def read_file(path: Path, display: str, rel: str) -> FileResult:
    """Read and convert every document of one file, bounded and with line numbers."""
    try:
        raw = read_bytes(path, MAX_FILE_BYTES, too_large=_TOO_LARGE, fix=_NOT_YAML)
    except Unreadable as exc:
        return FileResult([], [Diagnostic(display, None, str(exc))], False)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        message = f"file is not valid UTF-8 (byte 0x{raw[exc.start]:02x}); save it with UTF-8 encoding"
        return FileResult([], [Diagnostic(display, line, message)], False)
    return read_text(text, display, rel)


def read_text(text: str, display: str, rel: str) -> FileResult:
    """Every document of one file's text, converted: composed by libyaml when it can, else (and
    for every file libyaml refuses) by the pure-Python loader."""
    found = _read_with_libyaml(text, display, rel)
    return found if found is not None else _read_text(text, display, rel)


def _read_with_libyaml(text: str, display: str, rel: str) -> FileResult | None:
    """The file as ``_read_text`` reads it, composed by libyaml; None when libyaml is absent, might
    read the text otherwise, or refused it (then the pure-Python loader reads it and says why)."""
    nodes = yamlnodes.libyaml_nodes(text)
    if nodes is None:
        return None
    documents: list[Document] = []
    diagnostics: list[Diagnostic] = []
    for index, node in enumerate(nodes, start=1):
        _convert(node, Document(file=display, rel=rel, index=index, line=_line(node)), documents, diagnostics)
    return FileResult(documents, diagnostics, True)


def _convert(
    node: Node, document: Document, documents: list[Document], diagnostics: list[Diagnostic]
) -> None:
    """One composed document into plain values, appended to ``documents`` unless it is empty."""
    converter = _Converter(document)
    document.key_lines[()] = document.line
    try:
        document.data = converter.convert(node, ())
    except _Abort as abort:
        converter.error(abort.line, abort.message)
    diagnostics.extend(converter.diagnostics)
    if document.data is None and not document.broken:
        return  # an empty document is fine
    documents.append(document)


def _read_text(text: str, display: str, rel: str) -> FileResult:
    documents: list[Document] = []
    diagnostics: list[Diagnostic] = []
    index = 0
    loader: PureLoader | None = None
    try:
        loader = PureLoader(text)
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
            _convert(node, document, documents, diagnostics)
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
