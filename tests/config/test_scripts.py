"""Script rendering: values are shell-quoted, secrets stay hidden until apply, unsafe spots are refused."""

from __future__ import annotations

import shlex
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest

from reconciler.config import load_desired_state, render_phase, render_user_data
from reconciler.config.scripts import check_script
from reconciler.core.errors import UserError
from reconciler.core.model import (
    DesiredServer,
    ResolvedInput,
    Script,
    ScriptPhase,
    SecretRef,
    Size,
)
from tests.config.conftest import WriteFiles


def _server(*inputs: ResolvedInput, scripts: tuple[Script, ...] = ()) -> DesiredServer:
    return DesiredServer(
        key="shop/app/1",
        name="shop-app-1",
        cluster="shop",
        member="app",
        ordinal=1,
        provider="sim",
        provider_type="simcloud",
        template="app",
        image="img",
        size=Size(1, 512, 10),
        flavor=None,
        inputs=inputs,
        scripts=scripts,
    )


def _boot(source: str, name: str = "boot") -> Script:
    return Script(ScriptPhase.BOOT, name, source)


INJECTIONS = ["x; rm -rf /", "$(rm -rf /)", "`reboot`", "a'b", 'a"b', "line\nrm -rf /", "*", "--help", ""]


@pytest.mark.parametrize("evil", INJECTIONS)
def test_an_input_cannot_inject_shell(evil: str, tmp_path: Path) -> None:
    server = _server(
        ResolvedInput("name", evil, "member"), scripts=(_boot("printf '%s' {{ name }} > out\n"),)
    )
    rendered = render_user_data(server, None)
    assert rendered == f"printf '%s' {shlex.quote(evil)} > out\n"
    subprocess.run(["sh", "-c", rendered], cwd=tmp_path, check=True, timeout=10)
    assert (tmp_path / "out").read_text() == evil


def test_values_render_as_shell_words() -> None:
    inputs = (
        ResolvedInput("port", 8080, "t"),
        ResolvedInput("on", True, "t"),
        ResolvedInput("off", False, "t"),
        ResolvedInput("ratio", 0.5, "t"),
        ResolvedInput("unset", None, "not set"),
    )
    source = (
        "run {{ port }} {{ on }} {{ off }} {{ ratio }} {{ unset }} {{ server.name }} {{ server.ordinal }}\n"
        "{% if on %}\necho yes\n{% endif %}\n"
    )
    assert (
        render_user_data(_server(*inputs, scripts=(_boot(source),)), None)
        == "run 8080 true false 0.5 '' shop-app-1 1\necho yes\n"
    )


def test_sensitive_values_show_only_with_a_resolver() -> None:
    inputs = (
        ResolvedInput("password", "hunter2", "Inputs global (x.yaml:3)", sensitive=True),
        ResolvedInput("token", SecretRef("env", "TOKEN"), "member shop/app (x.yaml:9)", sensitive=True),
    )
    server = _server(*inputs, scripts=(_boot("P={{ password }} T={{ token }}\n"),))
    hidden = render_user_data(server, None)
    assert hidden == "P='(sensitive)' T='(sensitive)'\n"
    assert "hunter2" not in hidden
    resolved = render_user_data(server, lambda ref: f"value of {ref}")
    assert resolved == "P=hunter2 T='value of env:TOKEN'\n"


def test_boot_scripts_are_concatenated_in_order_and_other_phases_kept_apart() -> None:
    scripts = (
        _boot("echo one", "first"),
        Script(ScriptPhase.OPERATIONAL, "op", "echo op\n"),
        _boot("echo two\n", "second"),
        Script(ScriptPhase.DECOMMISSION, "bye", "echo bye\n"),
    )
    server = _server(scripts=scripts)
    assert render_user_data(server, None) == "echo one\necho two\n"
    assert render_phase(server, ScriptPhase.OPERATIONAL, None) == "echo op\n"
    assert render_phase(server, ScriptPhase.DECOMMISSION, None) == "echo bye\n"


def test_a_script_not_reading_server_is_rendered_once_for_a_run() -> None:
    """An apply renders user data for thousands of servers: a script that reads only its inputs
    comes out alike for all of them and is kept; one that reads ``server`` is rendered for each."""
    scripts = (_boot("echo {{ release }}", "shared"), _boot("echo {{ server.name }}", "own"))
    release = ResolvedInput("release", "v1", "default")
    first = _server(release, scripts=scripts)
    second = replace(first, key="shop/app/2", name="shop-app-2", ordinal=2)
    rendered: dict[tuple[str, str], str] = {}
    texts = [render_user_data(s, None, rendered) for s in (first, second)]
    assert texts == ["echo v1\necho shop-app-1\n", "echo v1\necho shop-app-2\n"]
    assert list(rendered.values()) == ["echo v1"]  # the shared one, once
    assert texts == [render_user_data(s, None) for s in (first, second)]  # the same as without
    changed = replace(second, inputs=(ResolvedInput("release", "v2", "default"),))
    assert render_user_data(changed, None, rendered).startswith("echo v2\n")  # other inputs: again


def test_a_script_failing_at_render_time_is_a_user_error() -> None:
    server = _server(ResolvedInput("n", 0, "t"), scripts=(_boot("{{ 1 // n }}"),))
    with pytest.raises(UserError) as caught:
        render_user_data(replace(server), None)
    assert "script boot/boot of template 'app' cannot be rendered for shop/app/1" in str(caught.value)


def test_sandbox_blocks_python_internals() -> None:
    server = _server(scripts=(_boot("{{ ''.__class__.__mro__ }}"),))
    with pytest.raises(UserError):
        render_user_data(server, None)


@pytest.mark.parametrize(
    ("source", "problem"),
    [
        ('echo "{{ a }}"\n', "inside double quotes"),
        ("echo '{{ a }}'\n", "inside single quotes"),
        ("echo `id {{ a }}`\n", "inside backticks"),
        ("echo $'{{ a }}'\n", "inside $'...' quotes"),
        ("# note {{ a }}\n", "inside a comment"),
        ("cat <<EOF\n{{ a }}\nEOF\n", "inside a here-document"),
        ("cat <<-'END'\n\t{{ a }}\n\tEND\n", "inside a here-document"),
    ],
)
def test_insertions_where_quoting_cannot_protect_are_refused(source: str, problem: str) -> None:
    [found] = check_script(source, ["a"])
    assert problem in found.message


@pytest.mark.parametrize(
    "source",
    [
        "echo {{ a }}\n",
        'A={{ a }}\necho "$A"\n',
        "x=$(echo {{ a }})\n",
        "echo it\\'s {{ a }}\n",
        "echo {{ a }}#not-a-comment\n",
        "cat <<EOF\nplain $A\nEOF\necho {{ a }}\n",
        'cat <<<"here string"\necho {{ a }}\n',
        "#!/bin/sh\necho \"quoted 'single' inside\" {{ a }}\n",
    ],
)
def test_safe_insertions_pass(source: str) -> None:
    assert check_script(source, ["a"]) == []


def test_example_style_template_loads_and_renders(write_files: WriteFiles) -> None:
    template = """\
apiVersion: reconciler/v1
kind: ServerTemplate
metadata: {name: web}
spec:
  image: {simcloud: img}
  size: {cpus: 1, memory_mb: 512, disk_gb: 5}
  inputs:
    motd: {type: string, default: "hello; rm -rf /"}
  scripts:
    boot:
      - name: a
        source: |
          MOTD={{ motd }}
          printf '%s\\n' "$MOTD" > /etc/motd
"""
    cluster = (
        "apiVersion: reconciler/v1\nkind: Cluster\nmetadata: {name: c}\nspec:\n  provider: sim\n"
        "  members:\n    web: {template: web, count: 1}\n"
    )
    provider = "apiVersion: reconciler/v1\nkind: Provider\nmetadata: {name: sim}\nspec: {type: simcloud}\n"
    state = load_desired_state(write_files({"t.yaml": template, "c.yaml": cluster, "p.yaml": provider}))
    assert (
        render_user_data(state.servers[0], None)
        == "MOTD='hello; rm -rf /'\nprintf '%s\\n' \"$MOTD\" > /etc/motd\n"
    )
