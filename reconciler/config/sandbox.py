"""config.sandbox: the Jinja2 environment scripts render in — sandboxed, immutable and bounded.

A script is code the desired state brings into the reconciler, so it renders in Jinja2's
``ImmutableSandboxedEnvironment``: attributes and keys starting with ``_`` are refused (no
``''.__class__.__mro__``, no ``attr('__class__')``), so are methods that modify a list, dict or
set, and there is no loader, so ``{% include %}``, ``{% import %}`` and ``{% extends %}`` reach no
file (``config.scripts`` refuses them when the template is loaded). Every render of one script is
bounded by these limits:

* ``MAX_OUTPUT_CHARS`` — characters of rendered text, counted while the output streams out of
  ``generate()``, so an oversized script stops there and then;
* ``MAX_VALUE_SIZE`` — the size of any one value a script computes: characters of a string, the
  items' sizes added up for a list or mapping. Operations whose result can outgrow their operands
  are checked *before* they run: repetition (``'x' * n``, ``[x] * n``) and ``**`` and ``%``
  through the sandbox's ``intercepted_binops``; padding and filling (``center``, ``indent``,
  ``wordwrap``, ``ljust``, ``zfill``, ``expandtabs``, ``format``, ``'%*d'``, ``'{:>{w}}'``),
  ``join``, ``replace``, ``translate``, ``slice``, ``batch``, ``tojson`` and ``lipsum``. Every
  value a filter, call, operator or ``~`` produces, and every item an iterator yields, is
  checked after;
* ``MAX_WORK`` — all the text and values one render produces, added up: what a loop writes into
  a ``{% set %}`` block or a macro counts even though it never reaches the output;
* ``MAX_RANGE`` — the items of one ``range()``;
* ``MAX_STEPS`` — loop iterations, calls, filters and operators of one render, together (a call
  of a macro, ``caller()`` or ``loop()`` runs template code, and counts as ``MACRO_STEPS``);
* ``MAX_INT_BITS`` — the size of an integer (``10 ** 100000`` is refused before it is computed);
* ``MAX_CALL_DEPTH`` — calls nested in calls: macros, ``caller()`` and recursive ``loop()``;
* ``RENDER_SECONDS`` — wall-clock time, checked at every step and every chunk of output.

The loop, ``~`` and literal-text checks are calls the environment adds to each template's syntax
tree before compiling it (``guard_tree``); the output they produce is the same. Crossing a limit
raises ``LimitExceeded``, whose message names the limit and what to do — never a value.
"""

from __future__ import annotations

import functools
import inspect
import re
import string
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence, Set
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from types import BuiltinMethodType
from typing import Any

from jinja2 import nodes
from jinja2.exceptions import TemplateRuntimeError
from jinja2.ext import Extension
from jinja2.runtime import Context, LoopContext, Macro
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.utils import Namespace, generate_lorem_ipsum
from jinja2.visitor import NodeTransformer

MAX_OUTPUT_CHARS = 1_000_000
MAX_VALUE_SIZE = 1_000_000
MAX_WORK = 10_000_000
MAX_RANGE = 10_000
MAX_STEPS = 200_000
MACRO_STEPS = 10
MAX_INT_BITS = 4096
MAX_CALL_DEPTH = 32
RENDER_SECONDS = 2.0


class LimitExceeded(TemplateRuntimeError):
    """A render crossed one of the limits above; the message says which, and never shows a value."""


# --- the budget of the render under way ----------------------------------------------------------
@dataclass
class _Budget:
    """What one render may still spend: the deadline, steps and work done, the call depth."""

    deadline: float
    steps: int = 0
    work: int = 0
    depth: int = 0


_BUDGET: ContextVar[_Budget | None] = ContextVar("reconciler_script_budget", default=None)


@contextmanager
def bounded() -> Iterator[None]:
    """Count a render against the limits (each thread and each render has a budget of its own)."""
    token = _BUDGET.set(_Budget(time.monotonic() + RENDER_SECONDS))
    try:
        yield
    finally:
        _BUDGET.reset(token)


def _step(work: int = 0, steps: int = 1) -> None:
    """One step of the render doing ``work`` characters of work; raise when a limit is crossed.

    Outside ``bounded()`` — Jinja2 folding constants while it compiles — nothing is counted:
    filters refuse to run there (so what they make is made during the render, and counted),
    and what else folds is no larger than the source.
    """
    budget = _BUDGET.get()
    if budget is None:
        return
    budget.steps += steps
    budget.work += work
    if budget.steps > MAX_STEPS:
        raise LimitExceeded(
            f"takes more than {MAX_STEPS} steps (loop iterations, calls, filters and operators); "
            "loop over fewer items or simplify the script"
        )
    if budget.work > MAX_WORK:
        raise LimitExceeded(
            f"produces more than {MAX_WORK} characters of text and values in all; "
            "make its loops and the values they build smaller"
        )
    if time.monotonic() > budget.deadline:
        raise LimitExceeded(
            f"takes longer than {RENDER_SECONDS:g} seconds to render; simplify its loops and filters"
        )


def charge_output(chars: int) -> None:
    """Count ``chars`` characters of rendered output as work (and a step)."""
    _step(chars)


# --- sizes -----------------------------------------------------------------------------------------
def size_of(value: Any) -> int:
    """About how many characters ``value`` takes once written out: a string's length, a
    container's items added up (shared items counted every time they occur, without walking
    them twice). Everything else counts as a few characters."""
    return _size(value, {})


def _size(value: Any, memo: dict[int, int]) -> int:
    if isinstance(value, str | bytes | bytearray):
        return len(value)
    if isinstance(value, bool) or value is None:
        return 4
    if isinstance(value, int):
        return value.bit_length() // 3 + 1
    if isinstance(value, float | complex):
        return 24
    if isinstance(value, range):
        return len(value) * (len(str(max(abs(value.start), abs(value.stop)))) + 2)
    if not isinstance(value, Sequence | Set | Mapping | Namespace):
        return 4
    key = id(value)
    if key in memo:
        return memo[key]
    memo[key] = 0  # a value that contains itself adds nothing more
    if isinstance(value, Namespace):
        value = object.__getattribute__(value, "_Namespace__attrs")
    if isinstance(value, Mapping):
        total = 2 + sum(_size(k, memo) + _size(v, memo) + 4 for k, v in value.items())
    else:
        total = 2 + sum(_size(item, memo) + 2 for item in value)
    memo[key] = total
    return total


def _refuse_size(what: str, size: int) -> LimitExceeded:
    return LimitExceeded(
        f"uses {what} to make about {size} characters, more than the {MAX_VALUE_SIZE} that one value "
        "of a script may hold; make it smaller"
    )


def _too_many_bits(what: str) -> LimitExceeded:
    return LimitExceeded(
        f"uses {what} to make an integer of more than {MAX_INT_BITS} bits; use smaller numbers"
    )


def _before(what: str, size: int) -> None:
    """Refuse an operation whose result would be ``size`` characters, before it runs."""
    if size > MAX_VALUE_SIZE:
        raise _refuse_size(what, size)


def _after(what: str, value: Any) -> Any:
    """Check a value an operation produced; count it as work; bound what an iterator yields."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > MAX_INT_BITS:
        raise _too_many_bits(what)
    size = size_of(value)
    if size > MAX_VALUE_SIZE:
        raise _refuse_size(what, size)
    _step(size)
    if isinstance(value, Iterator) and not isinstance(value, _BoundedIterator):
        return _BoundedIterator(value, what)
    return value


class _BoundedIterator(Iterator[Any]):
    """Yields what the wrapped iterator yields, while what it yielded stays within MAX_VALUE_SIZE."""

    def __init__(self, items: Iterator[Any], what: str) -> None:
        self._items = items
        self._what = what
        self._total = 0

    def __next__(self) -> Any:
        item = next(self._items)
        size = size_of(item) + 2
        self._total += size
        if self._total > MAX_VALUE_SIZE:
            raise _refuse_size(f"{self._what} (all the items it yields)", self._total)
        _step(size)
        return item


def _materialized(value: Any) -> Any:
    """An iterator as a list (bounded while it is read); anything else as it is."""
    if isinstance(value, Iterator):
        return list(value if isinstance(value, _BoundedIterator) else _BoundedIterator(value, "join"))
    return value


def _length(value: Any) -> int:
    return len(value) if isinstance(value, Sequence | Set | Mapping) else 0


def _number(value: Any, default: int = 0) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


# --- operations that can outgrow their operands ----------------------------------------------------
_PRINTF = re.compile(r"%(?:\([^)]*\))?[#0\- +]*(\*|\d+)?(?:\.(\*|\d+))?[hlL]?[A-Za-z%]")


def _check_printf(what: str, template: str | bytes, args: Any) -> None:
    """Refuse a ``%`` format whose field widths or precisions would make too large a string."""
    text = template.decode("latin-1") if isinstance(template, bytes) else template
    star = False
    for match in _PRINTF.finditer(text):
        for part in match.groups():
            if part == "*":
                star = True
            elif part and (len(part) > 9 or int(part) > MAX_VALUE_SIZE):
                raise _refuse_size(what, MAX_VALUE_SIZE + 1)
    if star:
        values = args.values() if isinstance(args, Mapping) else args if isinstance(args, tuple) else (args,)
        if any(abs(_number(v)) > MAX_VALUE_SIZE for v in values):
            raise _refuse_size(what, MAX_VALUE_SIZE + 1)


def _check_format(what: str, template: str, args: Iterable[Any]) -> None:
    """Refuse a ``str.format`` template whose widths (literal or ``{:{w}}``) are too large."""
    nested = False
    for _, _, spec, _ in string.Formatter().parse(template):
        for digits in re.findall(r"\d+", spec or ""):
            if len(digits) > 9 or int(digits) > MAX_VALUE_SIZE:
                raise _refuse_size(what, MAX_VALUE_SIZE + 1)
        nested = nested or "{" in (spec or "")
    if nested and any(abs(_number(v)) > MAX_VALUE_SIZE for v in args):
        raise _refuse_size(what, MAX_VALUE_SIZE + 1)


def _replaced_size(text: str, old: Any, new: Any, count: Any) -> int:
    if not isinstance(text, str) or not isinstance(old, str) or not isinstance(new, str):
        return len(text) if isinstance(text, str) else 0
    times = text.count(old) if old else len(text) + 1
    if isinstance(count, int) and count >= 0:
        times = min(times, count)
    return len(text) + times * len(new)


def _joined_size(items: Any, separator: Any) -> int:
    return size_of(items) + max(_length(items) - 1, 0) * len(str(separator))


def _indented_size(a: Mapping[str, Any]) -> int:
    width = a.get("width", 4)
    pad = len(width) if isinstance(width, str) else _number(width, 4)
    return size_of(a["s"]) + (str(a["s"]).count("\n") + 1) * pad


def _wrapped_size(a: Mapping[str, Any]) -> int:
    text = str(a["s"])
    lines = len(text) // max(_number(a.get("width"), 79), 1) + text.count(" ") + 1
    return len(text) + lines * len(str(a.get("wrapstring") or "\n"))


def _filled_size(a: Mapping[str, Any], count: str, pad: int) -> int:
    """``slice`` and ``batch``: the items, plus as many fillers as ``count`` could ask for."""
    fill = a.get("fill_with")
    if count == "linecount" and fill is None:
        return size_of(a["value"])
    return size_of(a["value"]) + max(_number(a.get(count)), 0) * (size_of(fill) + pad)


# Checks made before a filter runs: name -> f(bound arguments) -> the size of the result.
_FILTER_SIZES: dict[str, Callable[[Mapping[str, Any]], int]] = {
    "center": lambda a: max(size_of(a["value"]), _number(a.get("width"), 80)),
    "indent": _indented_size,
    "wordwrap": _wrapped_size,
    "join": lambda a: _joined_size(a["value"], a.get("d", "")),
    "replace": lambda a: _replaced_size(a["s"], a["old"], a["new"], a.get("count")),
    "slice": lambda a: _filled_size(a, "slices", 4),
    "batch": lambda a: _filled_size(a, "linecount", 2),
    "tojson": lambda a: size_of(a["value"]) * (6 + max(_number(a.get("indent")), 0)),
}


_INJECTED = ("environment", "eval_ctx", "context")


def _guard_filter(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    """The filter, with its result checked (and, for filters that can grow a value, its arguments)."""
    estimate = _FILTER_SIZES.get(name)
    signature = inspect.signature(func) if estimate is not None else None
    # Jinja2 passes some filters the environment or context first, which their wrapped
    # (async-variant) signature may not show: leave it out when binding the arguments.
    injected = getattr(func, "jinja_pass_arg", None) is not None
    skip = int(injected and signature is not None and next(iter(signature.parameters), "") not in _INJECTED)
    what = f"the {name} filter"

    @functools.wraps(func)  # keeps jinja_pass_arg: Jinja2 still passes the context or environment
    def guarded(*args: Any, **kwargs: Any) -> Any:
        if _BUDGET.get() is None:  # Jinja2 folding constants at compile time: leave it to the render,
            raise LimitExceeded("filters run only inside a bounded render")  # which counts it
        _step()
        if estimate is not None and signature is not None:
            if name == "join":
                args = tuple(_materialized(a) for a in args)
            try:
                bound = signature.bind(*args[skip:], **kwargs)
            except TypeError:
                pass  # the filter itself reports wrong arguments
            else:
                _before(what, estimate(bound.arguments))
        if name == "format" and args:
            _check_printf(what, str(args[0]), args[1:] or kwargs)
        return _after(what, func(*args, **kwargs))

    return guarded


def _method_size(method: Any, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> int | None:
    """The size a string method's result would have, for the methods that can outgrow the string."""
    text = method.__self__
    name = method.__name__
    if name in ("center", "ljust", "rjust", "zfill"):
        return max(len(text), _number(args[0] if args else kwargs.get("width")))
    if name == "expandtabs":
        tabsize = _number(args[0] if args else kwargs.get("tabsize"), 8)
        return len(text) + (text.count("\t") if isinstance(text, str) else text.count(b"\t")) * tabsize
    if name == "replace" and isinstance(text, str) and len(args) >= 2:
        return _replaced_size(text, args[0], args[1], args[2] if len(args) > 2 else kwargs.get("count"))
    if name == "join" and args:
        return _joined_size(args[0], text)
    if name == "translate" and args and isinstance(args[0], Mapping):
        widest = max((size_of(v) for v in args[0].values()), default=1)
        return len(text) * max(widest, 1)
    return None


def _range(*args: int) -> range:
    """``range()`` of at most MAX_RANGE items."""
    items = range(*args)
    if len(items) > MAX_RANGE:
        raise LimitExceeded(
            f"asks for a range of {len(items)} items, more than the {MAX_RANGE} a script may; loop over fewer"
        )
    return items


# --- the checks added to each template's syntax tree ---------------------------------------------
class Guards(Extension):
    """Gives compiled templates the loop, ``~`` and literal-text checks (see ``guard_tree``)."""

    def iterate(self, iterable: Any) -> Iterator[Any]:
        """What a ``{% for %}`` loops over, one step per iteration."""
        for item in iterable:
            _step()
            yield item

    def concat(self, parts: Sequence[Any]) -> str:
        """``a ~ b``: what Jinja2 compiles it to (``str_join``), with the result's size checked first."""
        _before("the ~ operator", sum(size_of(p) for p in parts))
        return str(_after("the ~ operator", "".join(map(str, parts))))

    def literal(self, chars: int) -> str:
        """Count the literal text an output statement is about to write as work."""
        _step(chars)
        return ""


_GUARDS_ID = Guards.identifier


def _guard_call(method: str, node: nodes.Node, *args: nodes.Node) -> nodes.Call:
    call = nodes.Call(nodes.ExtensionAttribute(_GUARDS_ID, method), list(args), [], None, None)
    call.set_lineno(node.lineno)
    return call


class _TreeGuard(NodeTransformer):
    def visit_For(self, node: nodes.For) -> nodes.For:
        self.generic_visit(node)
        node.iter = _guard_call("iterate", node, node.iter)
        return node

    def visit_Concat(self, node: nodes.Concat) -> nodes.Call:
        self.generic_visit(node)
        return _guard_call("concat", node, nodes.List(node.nodes))

    def visit_Output(self, node: nodes.Output) -> list[nodes.Node]:
        self.generic_visit(node)
        chars = sum(len(n.data) for n in node.nodes if isinstance(n, nodes.TemplateData))
        if not chars:
            return [node]
        charge = nodes.ExprStmt(_guard_call("literal", node, nodes.Const(chars)))
        charge.set_lineno(node.lineno)
        return [charge, node]


def guard_tree(tree: nodes.Template) -> nodes.Template:
    """The template with a check before every loop step, every ``~`` and every piece of literal text."""
    result: nodes.Template = _TreeGuard().visit(tree)
    return result


# --- the environment -------------------------------------------------------------------------------
class ScriptEnvironment(ImmutableSandboxedEnvironment):
    """``ImmutableSandboxedEnvironment`` without a loader, its filters, calls, operators and
    output checked against the limits of this module. Compile templates with ``compile_script``."""

    intercepted_binops = frozenset({"*", "**", "%", "+"})

    def __init__(self, **options: Any) -> None:
        finalize: Callable[[Any], Any] | None = options.pop("finalize", None)
        super().__init__(loader=None, extensions=[Guards], **options)
        guards = self.extensions[_GUARDS_ID]
        assert isinstance(guards, Guards)
        self.guards = guards
        self.globals["range"] = _range
        self.filters = {name: _guard_filter(name, func) for name, func in self.filters.items()}
        if finalize is not None:
            inner = finalize

            def checked_finalize(value: Any) -> Any:
                _before("{{ ... }}", size_of(value))
                text = inner(value)
                _step(len(str(text)))
                return text

            self.finalize = checked_finalize

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        what = f"the {operator} operator"
        _step()
        if operator == "*":
            for seq, times in ((left, right), (right, left)):
                if isinstance(seq, str | bytes | list | tuple) and isinstance(times, int):
                    _before(what, size_of(seq) * max(times, 0))
            if isinstance(left, int) and isinstance(right, int):
                if left.bit_length() + right.bit_length() > MAX_INT_BITS + 1:
                    raise _too_many_bits(what)
        elif operator == "**" and isinstance(left, int) and isinstance(right, int) and right > 0:
            if abs(left) > 1 and (left.bit_length() - 1) * right > MAX_INT_BITS:
                raise _too_many_bits(what)
        elif operator == "%" and isinstance(left, str | bytes):
            _check_printf(what, left, right)
        return _after(what, super().call_binop(context, operator, left, right))

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        wrapper = super().wrap_str_format(value)
        if wrapper is None:
            return None
        template: str = value.__self__
        formats = wrapper

        def checked(*args: Any, **kwargs: Any) -> str:
            values = [*args, *kwargs.values()]
            if value.__name__ == "format_map" and args and isinstance(args[0], Mapping):
                values = list(args[0].values())
            _check_format(f"str.{value.__name__}", template, values)
            return formats(*args, **kwargs)

        return functools.update_wrapper(checked, wrapper)

    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: N805
        if getattr(__obj, "__self__", None) is __self.guards:
            return __context.call(__obj, *args, **kwargs)  # the checks themselves
        budget = _BUDGET.get()
        _step(steps=MACRO_STEPS if isinstance(__obj, Macro | LoopContext) else 1)
        if isinstance(__obj, Macro):
            what = f"the macro {__obj.name}()"
        else:
            what = f"{getattr(__obj, '__name__', 'a function')}()"
        if isinstance(__obj, BuiltinMethodType) and isinstance(__obj.__self__, str | bytes):
            if __obj.__name__ == "join" and args:
                args = (_materialized(args[0]), *args[1:])
            size = _method_size(__obj, args, kwargs)
            if size is not None:
                _before(what, size)
        elif __obj is generate_lorem_ipsum:
            bound = inspect.signature(generate_lorem_ipsum).bind(*args, **kwargs).arguments
            _before("lipsum()", _number(bound.get("n"), 5) * _number(bound.get("max"), 100) * 16)
        elif isinstance(__obj, LoopContext) and args:  # a recursive loop's next level
            args = (__self.guards.iterate(args[0]), *args[1:])
        if budget is not None:
            if budget.depth >= MAX_CALL_DEPTH:
                raise LimitExceeded(
                    f"nests calls more than {MAX_CALL_DEPTH} deep (a macro that calls itself without "
                    "end?); make the recursion stop sooner"
                )
            budget.depth += 1
        try:
            result = super().call(__context, __obj, *args, **kwargs)
        finally:
            if budget is not None:
                budget.depth -= 1
        return _after(what, result)


def compile_script(env: ScriptEnvironment, source: str) -> Any:
    """``source`` parsed, given the checks of ``guard_tree`` and compiled into a Template."""
    tree = guard_tree(env.parse(source))
    tree.set_environment(env)
    return env.from_string(tree)


def generate_bounded(template: Any, context: Mapping[str, Any]) -> str:
    """Render ``template``, stopping as soon as the output passes MAX_OUTPUT_CHARS."""
    parts: list[str] = []
    written = 0
    with bounded():
        for chunk in template.generate(context):
            written += len(chunk)
            if written > MAX_OUTPUT_CHARS:
                raise LimitExceeded(
                    f"renders more than {MAX_OUTPUT_CHARS} characters; make the script shorter"
                )
            _step()
            parts.append(chunk)
    return "".join(parts)
