"""config.scripts: check and render the Jinja2 shell scripts of a template, injection-safe.

Every value a script inserts (``{{ db_host }}``) passes through Jinja2's ``finalize`` hook,
which shell-quotes it with ``shlex.quote``: an input such as ``x; rm -rf /`` becomes one
harmless word. Quoting only protects a value where the shell would parse it as a word, so
when a template is loaded its literal text is scanned like a shell would, and an insertion
inside quotes, backticks, a comment or a here-document is rejected (a newline or ``$(...)`` in
the value would escape those); the fix offered is to assign a variable first
(``DB_HOST={{ db_host }}``) and use ``"$DB_HOST"`` there.

Sensitive inputs render as ``(sensitive)`` unless a secret resolver is given: the real
values only ever exist inside the provider call at apply time.
"""

from __future__ import annotations

import functools
import shlex
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from jinja2 import StrictUndefined, Template, TemplateError, TemplateSyntaxError, meta
from jinja2.sandbox import SandboxedEnvironment

from reconciler.config.schema import suggest
from reconciler.core.errors import Diagnostic, UserError
from reconciler.core.model import SENSITIVE, DesiredServer, ScriptPhase, SecretRef

SERVER_FIELDS = ("key", "name", "cluster", "member", "ordinal", "provider", "provider_type", "template")


def _finalize(value: Any) -> str:
    if value is None:
        return "''"
    if isinstance(value, bool):
        return "true" if value else "false"
    return shlex.quote(str(value))


def _environment() -> SandboxedEnvironment:
    return SandboxedEnvironment(
        undefined=StrictUndefined,
        finalize=_finalize,
        autoescape=False,
        keep_trailing_newline=True,
        trim_blocks=True,  # a {% if %} line leaves no blank line behind
        lstrip_blocks=True,
    )


_ENV = _environment()


@functools.lru_cache(maxsize=512)
def _compiled(source: str) -> Template:
    return _ENV.from_string(source)


@dataclass(frozen=True)
class ScriptProblem:
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
def check_script(source: str, declared: Iterable[str]) -> list[ScriptProblem]:
    """Syntax, undeclared names and unsafe insertion points of one script (lines inside the source)."""
    try:
        ast = _ENV.parse(source)
        tokens = list(_ENV.lex(source))
    except TemplateSyntaxError as exc:
        return [
            ScriptProblem(
                exc.lineno or 1,
                f"has a Jinja2 syntax error: {(exc.message or '').rstrip('.')}; fix the template",
            )
        ]
    known = set(declared)
    problems: list[ScriptProblem] = []
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
_RENDER_ERRORS = (TemplateError, ArithmeticError, TypeError, ValueError, LookupError, AttributeError)


def _context(server: DesiredServer, resolve_secret: SecretResolver | None) -> dict[str, Any]:
    context: dict[str, Any] = {}
    for item in server.inputs:
        value: Any = item.value
        if isinstance(value, SecretRef):
            value = SENSITIVE if resolve_secret is None else resolve_secret(value)
        elif item.sensitive and resolve_secret is None:
            value = SENSITIVE
        context[item.name] = value
    context["server"] = {name: getattr(server, name) for name in SERVER_FIELDS}
    return context


def render_phase(server: DesiredServer, phase: ScriptPhase, resolve_secret: SecretResolver | None) -> str:
    """The server's scripts of one phase, rendered in order and concatenated."""
    context = _context(server, resolve_secret)
    parts: list[str] = []
    for script in server.scripts:
        if script.phase != phase:
            continue
        try:
            text = _compiled(script.source).render(context)
        except _RENDER_ERRORS as exc:  # the script is the user's code: its failure is a user error
            where = server.location
            raise UserError(
                Diagnostic(
                    where.file if where else server.key,
                    where.line if where else None,
                    f"script {phase.value}/{script.name} of template {server.template!r} cannot be "
                    f"rendered for {server.key}: {exc}; fix the script",
                )
            ) from None
        parts.append(text if text.endswith("\n") or not text else text + "\n")
    return "".join(parts)


def render_user_data(server: DesiredServer, resolve_secret: SecretResolver | None) -> str:
    """The boot scripts, rendered: what a provider passes as user data when creating the server.

    With ``resolve_secret=None`` sensitive values show as ``(sensitive)`` (for plans and logs).
    """
    return render_phase(server, ScriptPhase.BOOT, resolve_secret)
