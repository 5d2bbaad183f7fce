"""The script sandbox: hostile scripts fail fast as located user errors; valid ones render as before."""

from __future__ import annotations

import shlex
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from jinja2 import StrictUndefined
from jinja2.sandbox import SandboxedEnvironment

from reconciler.config import load_desired_state, render_phase, render_user_data
from reconciler.config import sandbox as sandbox_module
from reconciler.config.scripts import check_script, render_problems
from reconciler.core.errors import UserError
from reconciler.core.model import (
    DesiredServer,
    ResolvedInput,
    Script,
    ScriptPhase,
    Size,
    SourceLocation,
)

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _server(source: str, *inputs: ResolvedInput, line: int | None = 40) -> DesiredServer:
    location = SourceLocation("templates.yaml", line) if line is not None else None
    return DesiredServer(
        key="shop/app/0",
        name="shop-app-0",
        cluster="shop",
        member="app",
        ordinal=0,
        provider="sim",
        provider_type="simcloud",
        template="app",
        image="img",
        size=Size(1, 512, 10),
        flavor=None,
        inputs=inputs,
        scripts=(Script(ScriptPhase.BOOT, "boot", source, location),),
        location=SourceLocation("shop.yaml", 9),
    )


def _failure(source: str, *inputs: ResolvedInput) -> str:
    """The one diagnostic rendering ``source`` gives, checked to come quickly."""
    started = time.monotonic()
    with pytest.raises(UserError) as caught:
        render_user_data(_server(source, *inputs), None)
    assert time.monotonic() - started < 1.0, "a hostile script took too long to be stopped"
    [diagnostic] = caught.value.diagnostics
    return str(diagnostic)


LOOPS_10K = "{% for i in range(10000) %}{% for j in range(10000) %}{% endfor %}{% endfor %}"

# Scripts that would take gigabytes: each is refused before the big value is made.
MEMORY = [
    ("{{ 'x' * 1000000000 }}", "uses the * operator to make about 1000000000 characters"),
    ("{{ [0] * 1000000000 }}", "uses the * operator to make about"),
    ("{{ [[1] * 1000] * 1000 }}", "uses the * operator to make about"),
    ("{{ 10 ** 100000 }}", "uses the ** operator to make an integer of more than 4096 bits"),
    (
        "{% set ns = namespace(n=3) %}{% for i in range(40) %}{% set ns.n = ns.n * ns.n %}{% endfor %}",
        "uses the * operator to make an integer of more than 4096 bits",
    ),
    ("{{ 'x'|center(1000000000) }}", "uses the center filter to make about 1000000000 characters"),
    ("{{ 'x'.ljust(1000000000) }}", "uses ljust() to make about 1000000000 characters"),
    ("{{ 'x'.zfill(1000000000) }}", "uses zfill() to make about"),
    ("{{ '\\t'.expandtabs(1000000000) }}", "uses expandtabs() to make about"),
    ("{{ '%*d' % (1000000000, 1) }}", "uses the % operator to make about"),
    ("{{ '%01000000000d' % 1 }}", "uses the % operator to make about"),
    ("{{ '%1000000000s'|format('x') }}", "uses the format filter to make about"),
    ("{{ '{:>1000000000}'.format(1) }}", "uses str.format to make about"),
    ("{{ '{:>{w}}'.format(1, w=1000000000) }}", "uses str.format to make about"),
    ("{{ range(10000)|map('center', 1000000)|join }}", "uses the map filter (all the items it yields)"),
    ("{{ ','.join(range(10000)|map('center', 1000000)) }}", "uses the map filter (all the items it yields)"),
    ("{{ ('x' * 1000)|replace('x', 'y' * 10000) }}", "uses the replace filter to make about 10001000"),
    ("{{ ('x' * 1000).replace('x', 'y' * 10000) }}", "uses replace() to make about 10001000"),
    ("{{ ('a' * 100).translate({97: 'x' * 100000}) }}", "uses translate() to make about 10000000"),
    ("{{ lipsum(100000, false, 1000, 1000) }}", "uses lipsum() to make about"),
    ("{{ [1]|batch(1000000000, 0)|list }}", "uses the batch filter to make about"),
    ("{{ [1]|slice(1000000000)|list }}", "uses the slice filter to make about"),
    ("{{ ('x\\n' * 1000)|indent(10000) }}", "uses the indent filter to make about"),
    ("{{ ('a ' * 100000)|wordwrap(1, wrapstring='x' * 100) }}", "uses the wordwrap filter to make about"),
    ("{{ range(1000)|list|tojson(indent=100000) }}", "uses the tojson filter to make about"),
    (
        "{% set ns = namespace(s='x') %}{% for i in range(60) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}",
        "uses the ~ operator to make about 1048576 characters",
    ),
    (
        "{% set ns = namespace(s=['x']) %}{% for i in range(30) %}{% set ns.s = ns.s + ns.s %}{% endfor %}",
        "uses the + operator to make about",
    ),
    (
        "{% set ns = namespace(s=['x']) %}{% for i in range(60) %}{% set ns.s = [ns.s, ns.s] %}{% endfor %}"
        "{{ ns.s }}",
        "uses {{ ... }} to make about",
    ),
    (
        "{% set x %}{% for i in range(10000) %}" + "A" * 2000 + "{% endfor %}{% endset %}",
        "produces more than 10000000 characters of text and values in all",
    ),
    ("{% for i in range(5000) %}" + "B" * 300 + "\n{% endfor %}", "renders more than 1000000 characters"),
    (
        "{% macro f(n) %}{% if n %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}{% endmacro %}{{ f(25) }}",
        "uses the macro f() to make about",
    ),
]

# Scripts that would run for hours, or recurse without end.
TIME = [
    (LOOPS_10K, "takes more than 200000 steps"),
    ("{{ range(1000000)|length }}", "asks for a range of 1000000 items, more than the 10000"),
    (
        "{% macro f(n) %}{% if n %}{% set a = f(n - 1) %}{% set b = f(n - 1) %}{% endif %}{% endmacro %}"
        "{{ f(25) }}",
        "takes more than 200000 steps",
    ),
    ("{% macro up(n) %}{{ up(n + 1) }}{% endmacro %}{{ up(0) }}", "nests calls more than 32 deep"),
    (
        "{% macro a() %}{{ b() }}{% endmacro %}{% macro b() %}{{ a() }}{% endmacro %}{{ a() }}",
        "nests calls more than 32 deep",
    ),
    ("{% for x in range(10) recursive %}{{ loop(range(10)) }}{% endfor %}", "nests calls more than 32 deep"),
    (
        "{% set ns = namespace(x=[]) %}{% for i in range(5000) %}{% set ns.x = [ns.x] %}{% endfor %}"
        "{{ ns.x }}",
        "nests calls or values too deeply",
    ),
]


HOSTILE_IDS = [f"memory{i}" for i in range(len(MEMORY))] + [f"time{i}" for i in range(len(TIME))]


@pytest.mark.parametrize(("source", "problem"), MEMORY + TIME, ids=HOSTILE_IDS)
def test_a_hostile_script_is_stopped_fast_with_a_located_error(source: str, problem: str) -> None:
    message = _failure(source)
    assert message.startswith(
        "templates.yaml:40: script boot/boot of template 'app' cannot be rendered for shop/app/0: it "
    ), message
    assert problem in message


def test_the_deadline_stops_a_script_that_is_slow_within_the_other_limits(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sandbox_module, "RENDER_SECONDS", 0.05)
    source = "{% set big = range(10000)|list %}{% for i in range(10000) %}{{ big|sort|first }}{% endfor %}"
    assert "takes longer than 0.05 seconds to render" in _failure(source)


@pytest.mark.parametrize(
    ("source", "name", "problem"),
    [
        ("{{ server|attr(field) }}", "__class__", "reads '__class__', which the sandbox refuses"),
        ("{{ ''[field] }}", "__init__", "reads '__init__', which the sandbox refuses"),
        ("{{ [].append(field) }}", "x", "reads 'append', which the sandbox refuses"),
        ("{{ {}.update(a=field) }}", "x", "reads 'update', which the sandbox refuses"),
        ("{{ server.pop(field) }}", "key", "reads 'pop', which the sandbox refuses"),
    ],
)
def test_python_internals_and_mutation_are_refused_at_render_time(
    source: str, name: str, problem: str
) -> None:
    assert problem in _failure(source, ResolvedInput("field", name, "member"))


@pytest.mark.parametrize(
    ("source", "problem"),
    [
        ("{% include 'common.sh' %}", "uses {% include %}, which scripts cannot"),
        ("{% include field %}", "uses {% include %}, which scripts cannot"),
        ("{% import 'lib.sh' as lib %}", "uses {% import %}, which scripts cannot"),
        ("{% from 'lib.sh' import helper %}", "uses {% from ... import %}, which scripts cannot"),
        ("{% extends 'base.sh' %}", "uses {% extends %}, which scripts cannot"),
        ("{{ ''.__class__ }}", "reads '__class__', which the sandbox refuses"),
        ("{{ field|attr('__globals__') }}", "reads '__globals__', which the sandbox refuses"),
        ("{{ field['__dict__'] }}", "reads '__dict__', which the sandbox refuses"),
        ("{{ " + "(" * 1000 + "1" + ")" * 1000 + " }}", "nests expressions too deeply for Jinja2 to read"),
        ("{{ field|shout }}", "has a Jinja2 syntax error: No filter named 'shout'"),
    ],
)
def test_what_the_text_shows_is_refused_when_the_template_loads(source: str, problem: str) -> None:
    problems = check_script(source, ["field"])
    assert problems, source
    assert problem in problems[0].message


@pytest.mark.parametrize(
    ("source", "problem"),
    [
        ("{{ 1 + 'a' }}", "raises TypeError: unsupported operand type(s) for +: 'int' and 'str'"),
        ("{{ {}[[1]] }}", "looks up a key or attribute computed from a value (not shown) on a dict value"),
        ("{{ server.nope }}", "looks up 'nope' on a dict value that has none by that name"),
        ("{{ [1, 2][5] }}", "looks up 5 on a list value that has none by that name"),
        ("{% if false %}{% set later = 1 %}{% endif %}{{ later }}", "uses {{ later }}, which is not defined"),
    ],
)
def test_other_render_failures_are_located_user_errors_too(source: str, problem: str) -> None:
    assert problem in _failure(source)


def test_the_error_names_the_line_of_the_script_in_the_yaml() -> None:
    source = "echo one\necho two\n{{ port // 0 }}\n"
    message = _failure(source, ResolvedInput("port", 80, "member"))
    assert message == (
        "templates.yaml:42: script boot/boot of template 'app' cannot be rendered for shop/app/0: it "
        "divides by zero; check the divisor"
    )
    with pytest.raises(UserError) as caught:
        render_user_data(_server(source, ResolvedInput("port", 80, "m"), line=None), None)
    assert str(caught.value.diagnostics[0]).startswith(
        "shop.yaml:9: script boot/boot of template 'app' cannot be rendered for shop/app/0 (line 3 of the "
        "script): it divides by zero"
    )


def test_render_problems_reports_each_failing_script_once_and_keeps_going() -> None:
    bad = [_server(LOOPS_10K), _server(LOOPS_10K)]
    good = _server("echo fine\n")
    problems = render_problems([*bad, good])
    assert len(problems) == 1
    assert "takes more than 200000 steps" in problems[0].message


def test_each_thread_renders_with_a_budget_of_its_own() -> None:
    # 3 x 80,000 steps: fine for each render, too many if the renders shared one budget.
    source = "{% for i in range(10000) %}{% for j in range(7) %}{% endfor %}{% endfor %}done\n"
    results: list[str] = []

    def render() -> None:
        results.append(render_user_data(_server(source), None))

    threads = [threading.Thread(target=render) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert results == ["done\n"] * 3


# --- valid scripts render exactly as they did before the sandbox was bounded ---------------------
def _quote(value: Any) -> str:
    if value is None:
        return "''"
    if isinstance(value, bool):
        return "true" if value else "false"
    return shlex.quote(str(value))


_PLAIN = SandboxedEnvironment(
    undefined=StrictUndefined,
    finalize=_quote,
    autoescape=False,
    keep_trailing_newline=True,
    trim_blocks=True,
    lstrip_blocks=True,
)

VALID = [
    "#!/bin/sh\nNAME={{ name }}\necho \"$NAME\" {{ port }} {{ on }} {{ ratio }}\n",
    "{% for host in hosts %}\nH{{ loop.index }}={{ host }}{% if not loop.last %},{% endif %}\n{% endfor %}\n",
    "{% for host in hosts if host != 'b' %}{{ host }} {{ loop.length }}\n{% else %}none\n{% endfor %}",
    "{% for host in [] %}{{ host }}{% else %}echo none\n{% endfor %}",
    "{% for k, v in tree.items() recursive %}{{ k }}\n{% if v %}{{ loop(v.items()) }}{% endif %}{% endfor %}",
    "{% macro line(k, v='d') %}echo {{ k }} {{ v }}\n{% endmacro %}{{ line('a') }}{{ line('b', v=port) }}",
    "{% macro wrap() %}begin\n{{ caller() }}end\n{% endmacro %}"
    "{% call wrap() %}echo {{ name }}\n{% endcall %}",
    "{% set block %}echo {{ name }}\n{% endset %}{{ block }}",
    "{% set ns = namespace(n=0) %}{% for h in hosts %}{% set ns.n = ns.n + 1 %}{% endfor %}N={{ ns.n }}\n",
    "{{ hosts|join(',') }} {{ hosts|map('upper')|join }} {{ hosts|select('ne', 'a')|list|length }}\n",
    "{{ hosts|sort(reverse=true)|first }} {{ hosts|unique|list|last }} {{ 'ab'|center(6) }}\n",
    "{{ 'x\ny'|indent(2) }} {{ name|replace('o', '0') }} {{ '%05d'|format(port) }}"
    " {{ none_value|default('d') }}\n",
    "{{ hosts|batch(2, 'z')|list }} {{ hosts|slice(2)|list }} {{ tree|tojson }}"
    " {{ 'a b c d'|wordwrap(3) }}\n",
    "{{ name ~ '-' ~ port }} {{ port + 1 }} {{ name * 2 }} {{ '%s:%d' % (name, port) }} {{ 2 ** 10 }}\n",
    "{{ port // 7 }} {{ port / 4 }} {{ port % 7 }} {{ -port }} {{ port > 10 and on }}\n",
    "{{ name.upper() }} {{ name.split('o') }} {{ name.ljust(8) }}| {{ '7'.zfill(3) }}"
    " {{ '{}-{}'.format(1, 2) }}\n",
    "{{ ','.join(hosts) }} {{ name.replace('o', '') }} {{ {'a': 1}['a'] }} {{ server.key }}"
    " {{ server['ordinal'] }}\n",
    "{%- if on -%}\n  yes\n{%- endif %}\n{{ 'a' if on else 'b' }} {{ range(5)|list }}"
    " {{ range(1, 10, 2)|sum }}\n",
    "{% raw %}{{ not rendered }}{% endraw %}\n{% filter upper %}shout {{ name }}{% endfilter %}\n",
    "{{ name is defined }} {{ missing_value is defined }} {{ hosts|length }} {{ ratio|round }}\n",
    "{% for i in range(3) %}{% for j in range(2) %}{{ i }}{{ j }} {% endfor %}\n{% endfor %}",
]


# Inputs are scalars: the lists and mappings the scripts above loop over are made in the script.
SETUP = "{% set hosts = ['a', 'b', 'c'] %}\n{% set tree = {'a': {'b': {}}, 'c': {}} %}\n"


@pytest.mark.parametrize("body", VALID, ids=[f"v{i}" for i in range(len(VALID))])
def test_a_valid_script_renders_as_the_plain_sandbox_renders_it(body: str) -> None:
    source = SETUP + body
    inputs = (
        ResolvedInput("name", "foo bar", "member"),
        ResolvedInput("port", 8080, "member"),
        ResolvedInput("on", True, "member"),
        ResolvedInput("ratio", 0.5, "member"),
        ResolvedInput("none_value", None, "member"),
    )
    server = _server(source, *inputs)
    context: dict[str, Any] = {i.name: i.value for i in inputs}
    context["server"] = {"key": server.key, "ordinal": server.ordinal}
    expected = _PLAIN.from_string(source).render(context)
    expected = expected if expected.endswith("\n") or not expected else expected + "\n"
    assert render_user_data(server, None) == expected


EXAMPLE_FOLDERS = sorted(p.name for p in EXAMPLES.iterdir() if p.name.startswith("clusters"))


@pytest.mark.parametrize("folder", EXAMPLE_FOLDERS)
def test_every_example_renders_as_the_plain_sandbox_renders_it(folder: str) -> None:
    from reconciler.config.scripts import _context

    try:
        state = load_desired_state(EXAMPLES / folder)
    except UserError as exc:
        if "needs the Python package" not in str(exc):
            raise
        pytest.skip(f"{folder}: {exc}")
    assert state.servers
    for server in state.servers:
        context, _ = _context(server, None)
        for phase in ScriptPhase:
            parts = [_PLAIN.from_string(s.source).render(context) for s in server.scripts if s.phase == phase]
            expected = "".join(p if p.endswith("\n") or not p else p + "\n" for p in parts)
            assert render_phase(server, phase, None) == expected
