"""config.cel: a Policy's CEL rules, compiled with cel-python when the YAML is loaded, and run bounded.

``compile_rule`` parses one expression and checks, before anything is planned:

* its size and shape: at most ``MAX_RULE_CHARS`` characters, parentheses, lists, maps and
  calls nested at most ``MAX_RULE_NESTING`` deep, and no comprehension (``all``, ``exists``,
  ``exists_one``, ``map``, ``filter``) inside another — cel-python has no cost limit of its
  own, so the cost of one evaluation is bounded by the expression's shape and by the
  variables, which are small (a server, a change, a plan's figures);
* its names: only ``server``, ``change`` and ``plan`` (and a comprehension's own variable),
  only the fields those have (``core.policy.VARIABLES``; ``tags`` and ``inputs`` take any
  key), only CEL's functions;
* its types: it is evaluated once over sample variables, and an operator applied to the
  wrong types (``server.size.cpus <= '16'``) or a result that is not true or false is an
  error. (A missing tag or input is not: which keys exist is known only per server.)

Each problem comes back with its line and column inside the expression. ``CelRule`` is the
compiled program ``core.policy`` calls; every way an evaluation can fail — a CEL error, the
evaluator's own recursion limit, a bug in the library — becomes a ``RuleFailure`` with a
short message, never a traceback.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import celpy
import lark
from celpy import celtypes
from celpy.adapter import json_to_cel
from celpy.celparser import CELParseError
from celpy.evaluation import CELEvalError, base_functions

from reconciler.config.schema import suggest
from reconciler.core.changes import Change, ChangeCause
from reconciler.core.cost import CostSummary
from reconciler.core.limits import MAX_RULE_CHARS, MAX_RULE_MACRO_NESTING, MAX_RULE_NESTING
from reconciler.core.model import Action, DesiredServer, ObservedServer, ServerStatus, Size
from reconciler.core.policy import (
    VARIABLES,
    PlanFacts,
    Shape,
    change_variables,
    plan_variables,
    server_variables,
)
from reconciler.core.policy_model import GLOBAL_SCOPE, Enforcement, Policy, RuleFailure, Subject

_Tree = lark.Tree[Any]
MACROS = frozenset({"all", "exists", "exists_one", "map", "filter"})
_FUNCTIONS = frozenset(name for name in base_functions if name[:1].isalpha()) | {"has", "dyn"}
_MESSAGE_CHARS = 300


@dataclass(frozen=True)
class Problem:
    """Something wrong with an expression, at a line and column of its text (1-based)."""

    line: int
    column: int
    message: str


@dataclass(frozen=True)
class Compiled:
    program: CelRule
    subject: Subject
    uses_plan: bool


@functools.cache
def _environment() -> celpy.Environment:
    return celpy.Environment()  # the interpreted runner: nothing is turned into Python code


class CelRule:
    """One compiled rule: ``rule(variables)`` is true or false, or raises ``RuleFailure``."""

    def __init__(self, runner: celpy.Runner) -> None:
        self._runner = runner

    def __call__(self, variables: Mapping[str, object]) -> bool:
        try:
            result = self._runner.evaluate(_cel(variables))
        except CELEvalError as exc:
            raise RuleFailure(error_text(exc)) from None
        except RecursionError:
            raise RuleFailure("it nests too deeply to evaluate") from None
        except Exception as exc:  # the evaluator's own bug: a violation, not a crash
            raise RuleFailure(f"the CEL evaluator failed ({type(exc).__name__})") from None
        if not isinstance(result, celtypes.BoolType):
            raise RuleFailure(f"it gives {_type_name(type(result))}, not true or false")
        return bool(result)


def _cel(variables: Mapping[str, object]) -> dict[str, Any]:
    """The variables as CEL values (they are JSON-like: built by ``core.policy``)."""
    values: dict[str, Any] = {}
    for name, value in variables.items():
        plain: Any = value
        values[name] = json_to_cel(plain)
    return values


# --- messages ----------------------------------------------------------------------------------
_OPERATORS = {
    "relation_lt": "<", "relation_le": "<=", "relation_gt": ">", "relation_ge": ">=",
    "relation_eq": "==", "relation_ne": "!=", "relation_in": "in", "addition_add": "+",
    "addition_sub": "-", "multiplication_mul": "*", "multiplication_div": "/",
    "multiplication_mod": "%", "unary_not": "!", "unary_neg": "-", "_&&_": "&&", "_||_": "||",
}  # fmt: skip
_RULE_TOKEN = re.compile(r"Token\('RULE', '(\w+)'\)")
_CLASS = re.compile(r"<class 'celpy\.celtypes\.(\w+?)(?:Type)?'>")


def _type_name(cls: type) -> str:
    name = cls.__name__
    name = name[:-4] if name.endswith("Type") else name
    return {"NoneType": "null", "Double": "double", "Int": "int", "Uint": "uint"}.get(name, name.lower())


_INNER = re.compile(r"""CELEvalError\(\*\((["'])(.*?)\1, <class""")


def _propagated(exc: BaseException) -> bool:
    """An operator given errors (``a && b`` with both failing): not a type error of the rule's own."""
    return bool(exc.args) and isinstance(exc.args[0], str) and "CELEvalError" in exc.args[0]


def error_text(exc: BaseException) -> str:
    """A CEL error's message, short and readable (no activation dump, operators as written; for an
    operator given errors, the first error it was given)."""
    raw = exc.args[0] if exc.args and isinstance(exc.args[0], str) else str(exc)
    if _propagated(exc) and len(exc.args) > 2:
        given = exc.args[2]
        inner = _INNER.search(" ".join(map(str, given)) if isinstance(given, tuple) else str(given))
        raw = inner[2] if inner else raw
    raw = raw.split(" (in activation", 1)[0]
    text = _RULE_TOKEN.sub(lambda m: _OPERATORS.get(m[1], m[1]), raw)
    text = _CLASS.sub(lambda m: m[1].lower() if m[1] != "Double" else "double", text)
    return text if len(text) <= _MESSAGE_CHARS else text[: _MESSAGE_CHARS - 1] + "…"


# --- compiling ---------------------------------------------------------------------------------
def compile_rule(text: str) -> Compiled | list[Problem]:
    """The rule compiled, or every problem found in it."""
    if len(text) > MAX_RULE_CHARS:
        return [Problem(1, 1, f"is {len(text)} characters long, more than {MAX_RULE_CHARS}; shorten it")]
    try:
        tree = _environment().compile(text)
    except CELParseError as exc:
        return [Problem(exc.line or 1, exc.column or 1, _syntax(text, exc.line or 1, exc.column or 1))]
    except RecursionError:
        return [Problem(1, 1, "nests too deeply to parse; write it flatter")]
    checker = _Checker()
    checker.walk(tree)
    if checker.problems:
        return checker.problems
    runner = _environment().program(tree)
    uses = checker.roots
    subject = Subject.CHANGE if "change" in uses else Subject.SERVER if "server" in uses else Subject.PLAN
    rule = CelRule(runner)
    problem = _trial(rule)
    if problem is not None:
        return [Problem(1, 1, problem)]
    return Compiled(rule, subject, "plan" in uses)


def _syntax(text: str, line: int, column: int) -> str:
    """``is not valid CEL: …`` saying where, with the text around the spot."""
    lines = text.splitlines() or [""]
    written = lines[min(line, len(lines)) - 1]
    before = written[: column - 1].rstrip()
    shown = before if len(before) <= 30 else "…" + before[-29:]
    if column - 1 >= len(written.rstrip()) and line >= len(lines):
        return f"is not valid CEL: it ends too early, after {shown!r}; finish the expression"
    at = written[column - 1 : column + 9]
    return f"is not valid CEL: a syntax error at column {column}, at {at!r}; check the operator or name there"


def _children(node: _Tree) -> Iterator[_Tree]:
    return (c for c in node.children if isinstance(c, lark.Tree))


def _line(node: _Tree | lark.Token) -> tuple[int, int]:
    if isinstance(node, lark.Token):
        return node.line or 1, node.column or 1
    meta = node.meta
    return (getattr(meta, "line", 1) or 1, getattr(meta, "column", 1) or 1)


def _ident(node: _Tree) -> lark.Token | None:
    """The IDENT of an expression that is nothing but a name (a comprehension's variable)."""
    while isinstance(node, lark.Tree):
        if node.data == "ident":
            token = node.children[0]
            return token if isinstance(token, lark.Token) else None
        trees = list(_children(node))
        if len(trees) != 1 or len(node.children) != 1:
            return None
        node = trees[0]
    return None


class _Checker:
    """Walks a parse tree (without recursion: the tree may be deep) checking names, fields and shape."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []
        self.roots: set[str] = set()
        self._seen: set[str] = set()

    def add(self, at: _Tree | lark.Token, message: str) -> None:
        if message not in self._seen:
            self._seen.add(message)
            line, column = _line(at)
            self.problems.append(Problem(line, column, message))

    def walk(self, tree: _Tree) -> None:
        stack: list[tuple[_Tree, int, int, frozenset[str]]] = [(tree, 0, 0, frozenset())]
        while stack:
            node, depth, macros, bound = stack.pop()
            if node.data == "expr":
                depth += 1
                if depth == MAX_RULE_NESTING + 2:
                    self.add(node, f"nests more than {MAX_RULE_NESTING} levels deep; write it flatter")
            if node.data == "ident":
                self.name(node, bound)
            elif node.data == "ident_arg":
                self.function(node.children[0])
            elif node.data == "member_dot":
                self.fields(node, bound)
            elif node.data == "member_dot_arg":
                method = node.children[1]
                if isinstance(method, lark.Token) and str(method) in MACROS:
                    macros += 1
                    if macros > MAX_RULE_MACRO_NESTING:
                        message = f"has {method}() inside another comprehension; write them one by one"
                        self.add(method, message)
                    bound = self.macro(node, bound)
                elif isinstance(method, lark.Token):
                    self.function(method)
            for child in _children(node):
                stack.append((child, depth, macros, bound))

    def macro(self, node: _Tree, bound: frozenset[str]) -> frozenset[str]:
        args = [c for c in _children(node) if c.data == "exprlist"]
        first = next(_children(args[0]), None) if args else None
        token = _ident(first) if first is not None else None
        if token is None:
            self.add(node, f"{node.children[1]}() takes a variable name first, as in tags.all(k, k != '')")
            return bound
        return bound | {str(token)}

    def function(self, token: object) -> None:
        if isinstance(token, lark.Token) and str(token) not in _FUNCTIONS:
            hint = suggest(str(token), sorted(_FUNCTIONS))
            self.add(token, f"calls unknown function {str(token)!r}" + (f"; {hint}" if hint else ""))

    def name(self, node: _Tree, bound: frozenset[str]) -> None:
        token = node.children[0]
        text = str(token)
        if text in bound:
            return
        if text in VARIABLES:
            self.roots.add(text)
            return
        if text in ("true", "false", "null"):
            return
        hint = suggest(text, sorted(VARIABLES))
        self.add(
            node, f"names {text!r}, which is not a variable; rules use server, change and plan" + (
                f" ({hint})" if hint else ""
            )
        )

    def fields(self, node: _Tree, bound: frozenset[str]) -> None:
        chain: list[lark.Token] = []
        current: _Tree = node
        while current.data in ("member_dot", "member"):
            if current.data == "member_dot":
                field = current.children[1]
                if not isinstance(field, lark.Token):
                    return
                chain.append(field)
            trees = list(_children(current))
            if not trees:
                return
            current = trees[0]
        if current.data != "primary":
            return
        root = _ident(current)
        if root is None or str(root) in bound or str(root) not in VARIABLES:
            return
        shape: Shape | str = VARIABLES[str(root)]
        path = str(root)
        for token in reversed(chain):
            if not isinstance(shape, Mapping):
                if shape != "map":
                    self.add(token, f"{path} is {_article(shape)} {shape} and has no field {str(token)!r}")
                return
            if str(token) not in shape:
                hint = suggest(str(token), sorted(shape))
                fields = ", ".join(sorted(shape))
                fix = hint if hint else f"its fields are: {fields}"
                self.add(token, f"{path} has no field {str(token)!r}; {fix}")
                return
            shape = shape[str(token)]
            path = f"{path}.{token}"


def _article(word: str) -> str:
    return "an" if word[:1] in "aeiou" else "a"


# --- the type check: one evaluation over sample variables --------------------------------------------
def _samples() -> dict[str, object]:
    size = Size(2, 4096, 40)
    server = DesiredServer(
        key="shop/web/0", name="shop-web-0", cluster="shop", member="web", ordinal=0, provider="sim",
        provider_type="simcloud", template="web", image="debian-12", size=size, flavor="sim.small",
    )  # fmt: skip
    before = ObservedServer(
        provider="sim", resource_id="i-0", key="shop/web/0", name="shop-web-0", owner="shop",
        status=ServerStatus.RUNNING, size=size, image="debian-12", spec_hash="", flavor="sim.small",
    )  # fmt: skip
    change = Change(
        id="shop/web/0", action=Action.UPDATE, key="shop/web/0", provider="sim",
        cause=ChangeCause.SIZE_CHANGED, reason="", before=before, after=server,
    )  # fmt: skip
    policy = Policy(name="sample", scope=GLOBAL_SCOPE, enforcement=Enforcement.DENY)
    plan = plan_variables(PlanFacts((change,), CostSummary()), policy, (server,))
    return {"server": server_variables(server), "change": change_variables(change), "plan": plan}


def _trial(rule: CelRule) -> str | None:
    """A type error found by evaluating once over sample variables, or None."""
    try:
        rule._runner.evaluate(_cel(_samples()))
    except CELEvalError as exc:
        if len(exc.args) > 1 and exc.args[1] is TypeError and not _propagated(exc):
            return f"has a type error: {error_text(exc)}; compare like with like (numbers unquoted)"
        return None
    except Exception:
        return None
    try:
        rule(_samples())
    except RuleFailure as exc:
        text = str(exc)
        return f"must be true or false: {text}" if text.startswith("it gives") else None
    return None
