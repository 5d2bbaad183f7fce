"""config.yamlnodes: YAML text → composed nodes (with their marks), nesting bounded.

``PureLoader`` is PyYAML's pure-Python scanner, parser and composer with the YAML 1.2 core
schema's implicit types: nothing is constructed, and nesting deeper than ``MAX_DEPTH`` fails
while scanning (PyYAML's scanner is quadratic and its composer recursive in deep flow nesting).

Where PyYAML has libyaml, a file is first scanned, parsed and composed by libyaml's C parser
(``CParser``, twenty-odd times faster), with the same resolver, the same nodes and marks, and
the nesting bounded as the nodes are composed (``config.yamlsafe`` converts them as it converts
the pure loader's). A file
the C parser refuses for any reason (a syntax error, a control character, nesting too deep) is
read again by the pure-Python loader, so every message about a broken file is the one it
always was. Without libyaml, the pure-Python loader reads everything.

``libyaml_nodes`` is that C path: the nodes of every document, or None when the pure loader
must read the text (``config.yamlsafe`` converts the nodes either way).
"""

from __future__ import annotations

import re
from typing import Any

from yaml.composer import Composer
from yaml.nodes import Node, ScalarNode, SequenceNode
from yaml.parser import Parser
from yaml.reader import Reader
from yaml.resolver import BaseResolver
from yaml.scanner import Scanner, ScannerError

MAX_DOCUMENTS = 200
MAX_DEPTH = 64

CORE = "tag:yaml.org,2002:"
STR_TAG, INT_TAG, FLOAT_TAG = CORE + "str", CORE + "int", CORE + "float"
BOOL_TAG, NULL_TAG, MERGE_TAG = CORE + "bool", CORE + "null", CORE + "merge"
SEQ_TAG, MAP_TAG = CORE + "seq", CORE + "map"


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


class PureLoader(Reader, Scanner, Parser, Composer, _CoreResolver):
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
            raise ScannerError(None, None, TOO_DEEP, self.get_mark())
        super().fetch_flow_collection_start(TokenClass)

    def add_indent(self, column: int) -> bool:
        if len(self.indents) >= MAX_DEPTH:
            raise ScannerError(None, None, TOO_DEEP, self.get_mark())
        return bool(super().add_indent(column))


TOO_DEEP = f"values are nested more than {MAX_DEPTH} levels deep"


# The implicit resolvers by first character ('' for the empty scalar), as BaseResolver.resolve
# looks them up (``_CoreResolver`` registers none for None, the wildcard).
_IMPLICIT: dict[str, list[tuple[str, re.Pattern[str]]]] = _CoreResolver.yaml_implicit_resolvers


class _TooDeep(Exception):
    """libyaml composed a node nested more than ``MAX_DEPTH`` deep: the file is read by ``PureLoader``."""


try:
    from yaml._yaml import CParser

    LIBYAML = True
except ImportError:  # PyYAML built without libyaml
    LIBYAML = False


if LIBYAML:

    class _CLoader(CParser, _CoreResolver):
        """libyaml scans, parses and composes; the resolver is ``PureLoader``'s. The composer is
        recursive in C: it is stopped past ``MAX_DEPTH`` as it descends into a node (libyaml's
        scanner and parser keep explicit stacks and stop there with it)."""

        def __init__(self, stream: str) -> None:
            CParser.__init__(self, stream)
            _CoreResolver.__init__(self)
            self.depth = 0

        # No path resolvers are registered, so the base class's descend, ascend and resolve
        # reduce to what is written here, kept short: libyaml calls them for every node.
        def descend_resolver(self, current_node: Any, current_index: Any) -> None:
            self.depth += 1
            if self.depth > MAX_DEPTH + 1:
                raise _TooDeep

        def ascend_resolver(self) -> None:
            self.depth -= 1

        def resolve(self, kind: type[Node], value: Any, implicit: Any) -> str:
            if kind is ScalarNode:
                if implicit[0]:  # a plain scalar: the core schema's implicit types
                    for tag, regexp in _IMPLICIT.get(value[:1], ()):
                        if regexp.match(value):
                            return tag
                elif not implicit[1]:
                    raise _Differs  # the non-specific tag '!': libyaml and PyYAML resolve it apart
                return STR_TAG
            return SEQ_TAG if kind is SequenceNode else MAP_TAG


class _Differs(Exception):
    """A construct libyaml reads otherwise than PyYAML: the file is read by ``PureLoader``."""


# What libyaml's scanner reads otherwise than PyYAML's (found by running both over the corpus
# and over random texts, ``tests/config/test_yamlsafe_libyaml.py``): a file holding any of these
# is read by the pure-Python loader alone. Tabs (libyaml takes them as separating white space
# where PyYAML refuses them), line breaks other than LF (CR, NEL, LS, PS) and a byte-order mark
# past the start change lines or values; a block scalar's header followed by ``#`` with no
# space, and tags (``!`` where a token starts: always an error here, but the two word malformed
# ones differently); ``?`` as an explicit key (the line of an empty value differs) and any
# ``?`` in a file with flow collections (libyaml 0.2.5 lets their plain scalars hold it).
_LIBYAML_DIFFERS = re.compile(
    "[\\t\\r\\x85\\u2028\\u2029]|(?<!^)\\ufeff|[|>][-+0-9]*#|(?:^|[\\s\\[{,\\ufeff])[!?]"
)


def libyaml_reads_alike(text: str) -> bool:
    if _LIBYAML_DIFFERS.search(text) is not None:
        return False
    return "?" not in text or ("[" not in text and "{" not in text)


def libyaml_nodes(text: str) -> list[Node] | None:
    """Every document's root node, composed by libyaml; None when libyaml is absent, might read
    ``text`` otherwise than ``PureLoader`` (``libyaml_reads_alike``), or raised anything at all."""
    if not LIBYAML or not libyaml_reads_alike(text):
        return None
    nodes: list[Node] = []
    try:
        loader = _CLoader(text)
    except Exception:  # noqa: BLE001 - text libyaml cannot take (a lone surrogate): read it in Python
        return None
    try:
        while loader.check_node():
            if len(nodes) == MAX_DOCUMENTS:
                return None  # the pure loader names the line of the document too many
            node = loader.get_node()
            if node is None:  # pragma: no cover - check_node said there is one
                break
            nodes.append(node)
    except Exception:  # noqa: BLE001 - any refusal: the pure-Python loader reads it and says why
        return None
    finally:
        loader.dispose()
    return nodes
