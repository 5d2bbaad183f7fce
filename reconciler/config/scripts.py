"""config.scripts: check and render the Jinja2 shell scripts of a template, injection-safe.

Every value a script inserts (``{{ db_host }}``) passes through Jinja2's ``finalize`` hook,
which shell-quotes it with ``shlex.quote``: an input such as ``x; rm -rf /`` becomes one
harmless word. Quoting only protects a value where the shell would parse it as a word, so
when a template is loaded its literal text is scanned like a shell would, and an insertion
inside quotes, backticks, a comment or a here-document is rejected (a newline or ``$(...)`` in
the value would escape those); the fix offered is to assign a variable first
(``DB_HOST={{ db_host }}``) and use ``"$DB_HOST"`` there.

Scripts render in the bounded sandbox of ``config.sandbox``. Loading a template refuses what
the sandbox would refuse anyway, where it can be seen in the text: ``{% include %}``,
``{% import %}``, ``{% extends %}`` and names starting with ``_``. ``render_problems`` renders
every script of every server — at validate and plan time with placeholders for secrets, and
again with the real values just before an apply — so a script that fails, or boot scripts too
large for the provider's user data, stop the run before anything is created.

Sensitive inputs render as ``(sensitive)`` unless a secret resolver is given: the real
values only ever exist inside the apply. A render error names the script, the line and
what went wrong, never a value: rendered with secrets, it shows only names written in the
script itself and the kind of Python error, not its message.
"""

from __future__ import annotations

import functools
import shlex
from collections.abc import Callable, Collection, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, NoReturn

from jinja2 import StrictUndefined, Template, TemplateSyntaxError, Undefined, UndefinedError, meta, nodes
from jinja2.exceptions import SecurityError
from jinja2.utils import missing

from reconciler.config.sandbox import LimitExceeded, ScriptEnvironment, compile_script, generate_bounded
from reconciler.config.schema import suggest
from reconciler.core.errors import Diagnostic, UserError
from reconciler.core.model import SENSITIVE, DesiredServer, Script, ScriptPhase, SecretRef

SERVER_FIELDS = ("key", "name", "cluster", "member", "ordinal", "provider", "provider_type", "template")


def _finalize(value: Any) -> str:
    if value is None:
        return "''"
    if isinstance(value, bool):
        return "true" if value else "false"
    return shlex.quote(str(value))


class _UndefinedUse(UndefinedError):
    """A script used something undefined; says what, so the message can leave values out."""

    def __init__(self, message: str, name: object, owner: str | None, unsafe: bool) -> None:
        super().__init__(message)
        self.name = name
        self.owner = owner  # type of the value it was looked up on; None for a top-level name
        self.unsafe = unsafe  # refused by the sandbox rather than missing


class _Undefined(StrictUndefined):
    """StrictUndefined that raises ``_UndefinedUse``."""

    __slots__ = ()

    def _fail_with_undefined_error(self, *args: Any, **kwargs: Any) -> NoReturn:
        owner = None if self._undefined_obj is missing else type(self._undefined_obj).__name__
        raise _UndefinedUse(
            self._undefined_message,
            self._undefined_name,
            owner,
            self._undefined_exception is SecurityError,
        )


def _rebind_operators() -> None:
    """Undefined and StrictUndefined bind their operators (``__str__``, ``__iter__``, ``__add__``…)
    to the base class's failing method when they are defined: bind them to _Undefined's."""
    for base in (Undefined, StrictUndefined):
        for name, attr in list(vars(base).items()):
            if attr is Undefined._fail_with_undefined_error:
                setattr(_Undefined, name, _Undefined._fail_with_undefined_error)


_rebind_operators()


def _environment() -> ScriptEnvironment:
    return ScriptEnvironment(
        undefined=_Undefined,
        finalize=_finalize,
        autoescape=False,
        keep_trailing_newline=True,
        trim_blocks=True,  # a {% if %} line leaves no blank line behind
        lstrip_blocks=True,
    )


_ENV = _environment()


@functools.lru_cache(maxsize=512)
def _compiled(source: str) -> Template:
    template: Template = compile_script(_ENV, source)
    return template


@functools.lru_cache(maxsize=512)
def _written_names(source: str) -> frozenset[object]:
    """Names, attributes and constants written in the script: what a render error may show."""
    tree = _ENV.parse(source)
    found: set[object] = {n.name for n in tree.find_all(nodes.Name)}
    found |= {n.attr for n in tree.find_all(nodes.Getattr)}
    found |= {n.value for n in tree.find_all(nodes.Const) if isinstance(n.value, str | int)}
    return frozenset(found)


@functools.lru_cache(maxsize=512)
def _uses_server(source: str) -> bool:
    """Whether the script reads ``server``: if not, it renders alike for every server with the
    same inputs, and ``render_problems`` renders it once for all of them."""
    return any(n.name == "server" for n in _ENV.parse(source).find_all(nodes.Name))


@dataclass(frozen=True)
class ScriptProblem:
    """A problem found in one script, at a line of the script's own source."""

    line: int  # 1-based, inside the script source
    message: str


# --- the shell context scanner ---------------------------------------------------------------
_PLAIN, _SINGLE, _DOUBLE, _BACKTICK, _ANSI, _COMMENT, _HEREDOC = range(7)
_CONTEXT_WORDS = {
    _SINGLE: "inside single quotes",
    _DOUBLE: "inside double quotes",
    _BACKTICK: "inside backticks",
    _ANSI: "inside $'...' quotes",
}


class _ShellScanner:
    """Tracks, character by character, whether the shell would read the next text as a bare word."""

    def __init__(self) -> None:
        self.state = _PLAIN
        self.escaped = False
        self.prev = "\n"
        self.pending: list[tuple[str, bool]] = []  # here-documents opened on the current line
        self.heredoc: tuple[str, bool] | None = None
        self.line = ""  # current line so far (here-document terminator detection, << parsing)

    def feed(self, text: str) -> None:
        for char in text:
            self.step(char)
            self.prev = char

    def step(self, char: str) -> None:
        if char == "\n":
            self.newline()
            return
        self.line += char
        if self.escaped:
            self.escaped = False
            return
        state = self.state
        if state == _PLAIN:
            self.plain(char)
        elif state == _SINGLE and char == "'":
            self.state = _PLAIN
        elif state in (_DOUBLE, _BACKTICK, _ANSI) and char == "\\":
            self.escaped = True
        elif (state, char) in ((_DOUBLE, '"'), (_BACKTICK, "`"), (_ANSI, "'")):
            self.state = _PLAIN

    def plain(self, char: str) -> None:
        if char == "\\":
            self.escaped = True
        elif char == "'":
            self.state = _ANSI if self.prev == "$" else _SINGLE
        elif char == '"':
            self.state = _DOUBLE
        elif char == "`":
            self.state = _BACKTICK
        elif char == "#" and (self.prev.isspace() or self.prev in ";|&("):
            self.state = _COMMENT

    def newline(self) -> None:
        line, self.line = self.line, ""
        self.escaped = False
        if self.state == _HEREDOC and self.heredoc is not None:
            delimiter, strip_tabs = self.heredoc
            if (line.lstrip("\t") if strip_tabs else line) == delimiter:
                self.heredoc = None
                self.state = _PLAIN
                self.open_pending()
            return
        if self.state in (_PLAIN, _COMMENT):
            self.pending.extend(_heredocs(line))
            self.state = _PLAIN
            self.open_pending()

    def open_pending(self) -> None:
        if self.pending:
            self.heredoc = self.pending.pop(0)
            self.state = _HEREDOC

    def context(self, shown: str) -> str | None:
        """What is wrong with inserting a value here and how to fix it, or None when quoting protects it."""
        if self.state == _PLAIN:
            return None
        if self.state == _COMMENT:
            return (
                "inside a comment, where a newline in the value would run as a command; "
                "remove it from the comment"
            )
        fix = f"assign it to a variable first (VALUE={{{{ {shown} }}}}) and use "
        if self.state == _HEREDOC:
            return "inside a here-document, where shell quoting does not apply; " + fix + "$VALUE there"
        return (
            _CONTEXT_WORDS[self.state]
            + ", where shell quoting does not protect it; "
            + fix
            + '"$VALUE" there'
        )


def _heredocs(line: str) -> Iterator[tuple[str, bool]]:
    """The here-document delimiters a shell line opens (``<<EOF``, ``<<-'EOF'``), ignoring ``<<<``."""
    index = 0
    while (index := line.find("<<", index)) >= 0:
        rest = line[index + 2 :]
        index += 2
        if rest.startswith("<"):
            index += 1
            continue
        strip_tabs = rest.startswith("-")
        rest = rest[1:] if strip_tabs else rest
        rest = rest.lstrip(" ")
        word = ""
        for char in rest:
            if char.isspace() or char in ";|&<>()":
                break
            word += char
        word = word.replace("'", "").replace('"', "").replace("\\", "")
        if word:
            yield word, strip_tabs


# --- checking --------------------------------------------------------------------------------
_LOADING = {
    nodes.Include: "include",
    nodes.Import: "import",
    nodes.FromImport: "from ... import",
    nodes.Extends: "extends",
}


def _sandbox_problems(ast: nodes.Template) -> Iterator[ScriptProblem]:
    """What the sandbox would refuse at render time, where the script's text already shows it."""
    for loading in ast.find_all((nodes.Include, nodes.Import, nodes.FromImport, nodes.Extends)):
        yield ScriptProblem(
            loading.lineno,
            f"uses {{% {_LOADING[type(loading)]} %}}, which scripts cannot: they render on their own, with "
            "no other templates to load; write the shell code into this script (or into another "
            "script of the template)",
        )
    for node in ast.find_all((nodes.Getattr, nodes.Getitem, nodes.Filter)):
        name: object = None  # the attribute or key it reads, when the text names it
        if isinstance(node, nodes.Getattr):
            name = node.attr
        elif isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const):
            name = node.arg.value
        elif isinstance(node, nodes.Filter) and node.name == "attr" and node.args:
            first = node.args[0]
            name = first.value if isinstance(first, nodes.Const) else None
        if isinstance(name, str) and name.startswith("_"):
            yield ScriptProblem(
                node.lineno,
                f"reads {name!r}, which the sandbox refuses: names starting with '_' reach into Python; "
                "use the inputs and server fields only",
            )


def check_script(source: str, declared: Iterable[str]) -> list[ScriptProblem]:
    """Syntax, undeclared names and unsafe insertion points of one script (lines inside the source)."""
    try:
        ast = _ENV.parse(source)
        tokens = list(_ENV.lex(source))
        _compiled(source)  # unknown filters and tests, assignments to loop, ...
    except TemplateSyntaxError as exc:
        return [
            ScriptProblem(
                exc.lineno or 1,
                f"has a Jinja2 syntax error: {(exc.message or '').rstrip('.')}; fix the template",
            )
        ]
    except (RecursionError, MemoryError):
        return [
            ScriptProblem(
                1, "nests expressions too deeply for Jinja2 to read; split them up with {% set %}"
            )
        ]
    known = set(declared)
    problems: list[ScriptProblem] = list(_sandbox_problems(ast))
    for name in sorted(meta.find_undeclared_variables(ast) - known - {"server"} - set(_ENV.globals)):
        line = next((ln for ln, kind, value in tokens if kind == "name" and value == name), 1)
        hint = suggest(name, known)
        problems.append(
            ScriptProblem(
                line,
                f"uses {{{{ {name} }}}}, which is not a declared input; declare it "
                "under spec.inputs" + (f" ({hint})" if hint else ""),
            )
        )
    scanner = _ShellScanner()
    for index, (line, kind, value) in enumerate(tokens):
        if kind == "data":
            scanner.feed(value)
        elif kind == "variable_begin":
            shown = next((v for _, k, v in tokens[index + 1 :] if k == "name"), "value")
            reason = scanner.context(shown)
            if reason is not None:
                problems.append(ScriptProblem(line, f"inserts {{{{ {shown} }}}} {reason}"))
        elif kind == "variable_end":
            scanner.prev = "x"  # the inserted value is a word: a '#' right after it is not a comment
    return problems


# --- rendering -------------------------------------------------------------------------------
SecretResolver = Callable[[SecretRef], str]


def _context(
    server: DesiredServer, resolve_secret: SecretResolver | None
) -> tuple[dict[str, Any], frozenset[str]]:
    """The names a script sees, and the secret values among them (none without a resolver)."""
    context: dict[str, Any] = {}
    secrets: set[str] = set()
    for item in server.inputs:
        value: Any = item.value
        if isinstance(value, SecretRef):
            value = SENSITIVE if resolve_secret is None else resolve_secret(value)
        elif item.sensitive and resolve_secret is None:
            value = SENSITIVE
        if resolve_secret is not None and (item.sensitive or isinstance(item.value, SecretRef)):
            secrets.add(str(value))
        context[item.name] = value
    context["server"] = {name: getattr(server, name) for name in SERVER_FIELDS}
    return context, frozenset(secrets)


def _template_line(exc: BaseException) -> int | None:
    """The script line being rendered when ``exc`` was raised (Jinja2 rewrites its traceback so)."""
    line = None
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == "<template>":
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def _reason(exc: Exception, source: str, secrets: Collection[str]) -> str:
    """What went wrong, for the user, without a value: with ``secrets`` (a render with the real
    values) only names written in the script and the kind of Python error are shown."""
    if isinstance(exc, LimitExceeded):
        return f"{exc}"
    hidden = bool(secrets)
    if isinstance(exc, _UndefinedUse):
        name = exc.name
        shown = (
            isinstance(name, str | int)
            and (not hidden or name in _written_names(source))
            and str(name) not in secrets
        )
        if exc.unsafe:
            what = repr(name) if shown else "an attribute whose name is computed from a value (not shown)"
            return (
                f"reads {what}, which the sandbox refuses: names starting with '_' and methods that "
                "change a list, dict or set are off-limits; use the inputs and server fields only"
            )
        if exc.owner is None:
            what = f"{{{{ {name} }}}}" if shown else "a name"
            return f"uses {what}, which is not defined at that point; define it, or declare an input"
        what = repr(name) if shown else "a key or attribute computed from a value (not shown)"
        return (
            f"looks up {what} on a {exc.owner} value that has none by that name; check the name, or "
            "test it first with 'is defined'"
        )
    if isinstance(exc, SecurityError):
        return "calls something the sandbox refuses; use plain filters and the methods of strings"
    if isinstance(exc, RecursionError):
        return "nests calls or values too deeply (a macro that calls itself without end?); stop sooner"
    if isinstance(exc, ZeroDivisionError):
        return "divides by zero; check the divisor"
    if hidden:
        return (
            f"raises {type(exc).__name__} (its message is not shown: rendered with the secret values, "
            "it could hold one); check the expressions that use sensitive inputs"
        )
    return f"raises {type(exc).__name__}: {exc}"


def _render_script(
    server: DesiredServer, script: Script, context: dict[str, Any], secrets: frozenset[str]
) -> str:
    """One script, rendered within the sandbox's limits; a failure is a located UserError."""
    try:
        return generate_bounded(_compiled(script.source), context)
    except Exception as exc:  # the script is the user's code: its failure is a user error
        reason = _reason(exc, script.source, secrets)
        line = _template_line(exc)
        where = script.location or server.location
        file, at = (where.file, where.line) if where is not None else (server.key, None)
        if script.location is not None and script.location.line is not None:
            at = script.location.line + (line or 1) - 1
        inside = f" (line {line} of the script)" if line is not None and script.location is None else ""
        raise UserError(
            Diagnostic(
                file,
                at,
                f"script {script.phase.value}/{script.name} of template {server.template!r} cannot be "
                f"rendered for {server.key}{inside}: it {reason}",
            )
        ) from None


def _joined(parts: Iterable[str]) -> str:
    return "".join(text if text.endswith("\n") or not text else text + "\n" for text in parts)


Rendered = dict[tuple[str, str], str]  # (source, inputs) → text of a script that does not read server


def _alike(script: Script, server: DesiredServer) -> tuple[str, str] | None:
    """The key under which ``script`` renders the same for every server with these inputs, or
    None when it reads ``server`` (then it renders for each server apart)."""
    if _uses_server(script.source):
        return None
    return script.source, repr([(item.name, item.value, item.sensitive) for item in server.inputs])


def render_phase(
    server: DesiredServer,
    phase: ScriptPhase,
    resolve_secret: SecretResolver | None,
    rendered: Rendered | None = None,
) -> str:
    """The server's scripts of one phase, rendered in order and concatenated. ``rendered``: texts
    of scripts that do not read ``server``, kept across the servers of one run (``_alike``)."""
    found: tuple[dict[str, Any], frozenset[str]] | None = None
    parts: list[str] = []
    for script in server.scripts:
        if script.phase != phase:
            continue
        alike = _alike(script, server) if rendered is not None else None
        text = rendered.get(alike) if rendered is not None and alike is not None else None
        if text is None:
            found = found or _context(server, resolve_secret)
            text = _render_script(server, script, *found)
            if rendered is not None and alike is not None:
                rendered[alike] = text
        parts.append(text)
    return _joined(parts)


def render_user_data(
    server: DesiredServer, resolve_secret: SecretResolver | None, rendered: Rendered | None = None
) -> str:
    """The boot scripts, rendered: what a provider passes as user data when creating the server.

    With ``resolve_secret=None`` sensitive values show as ``(sensitive)`` (for plans and logs).
    """
    return render_phase(server, ScriptPhase.BOOT, resolve_secret, rendered)


def _user_data_limit(provider_type: str) -> int | None:
    from reconciler.core.provider import type_facts

    try:
        return type_facts(provider_type).capabilities.user_data_max_bytes
    except UserError:
        return None


def render_problems(
    servers: Iterable[DesiredServer], resolve_secret: SecretResolver | None = None
) -> list[Diagnostic]:
    """Render every script of every server and check the boot scripts against the user data its
    provider accepts (``Capabilities.user_data_max_bytes``); every problem found, once per script
    and once per member. Secrets are placeholders unless ``resolve_secret`` is given."""
    problems: list[Diagnostic] = []
    failed: set[tuple[str, ScriptPhase, str]] = set()
    oversized: set[tuple[str, str]] = set()
    rendered: Rendered = {}
    limits: dict[str, int | None] = {}  # provider type → its user data limit
    for server in servers:
        context, secrets = _context(server, resolve_secret)
        boot: list[str] = []
        complete = True
        for script in server.scripts:
            key = (server.template, script.phase, script.name)
            if key in failed:
                complete = complete and script.phase is not ScriptPhase.BOOT
                continue
            alike = _alike(script, server)
            try:
                text = rendered.get(alike) if alike is not None else None
                if text is None:
                    text = _render_script(server, script, context, secrets)
                    if alike is not None:
                        rendered[alike] = text
            except UserError as exc:
                problems.extend(exc.diagnostics)
                failed.add(key)
                complete = complete and script.phase is not ScriptPhase.BOOT
                continue
            if script.phase is ScriptPhase.BOOT:
                boot.append(text)
        if server.provider_type not in limits:
            limits[server.provider_type] = _user_data_limit(server.provider_type)
        limit = limits[server.provider_type]
        member = (server.cluster, server.member)
        if not complete or limit is None or member in oversized:
            continue
        size = len(_joined(boot).encode())
        if size > limit:
            oversized.add(member)
            where = server.location
            problems.append(
                Diagnostic(
                    where.file if where else f"{server.cluster}/{server.member}",
                    where.line if where else None,
                    f"the boot scripts of {server.key} (template {server.template!r}) render to {size} "
                    f"bytes of user data, more than the {limit} that provider {server.provider!r} "
                    f"({server.provider_type}) accepts; make them shorter, or have them fetch the rest "
                    "when the server boots",
                )
            )
    return problems
