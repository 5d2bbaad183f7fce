"""reconciler.config: YAML desired state → validated, resolved ``DesiredState``.

The public face of the config layer; the work is split by step:

* ``yamlsafe``  — safe, bounded YAML reading with a line number for every node;
* ``schema``    — JSON Schema validation (``reconciler/schemas``) with actionable messages;
* ``documents`` — typed specs per kind and the checks a schema cannot express;
* ``policy``    — Policy documents: quotas, allowed lists, required tags, rules, windows;
* ``console``   — the Console document: who may use the web console, with which role;
* ``cel``       — their CEL rules, compiled and checked at load, evaluated bounded;
* ``resolve``   — references, input precedence, expansion into servers, dependency cycles;
* ``sandbox``   — the bounded, immutable Jinja2 sandbox scripts render in;
* ``scripts``   — injection-safe Jinja2 rendering of boot/operational/decommission scripts;
* ``secrets``   — ``env:``/``file:`` secret references, read only when needed;
* ``loader``    — the orchestration: ``load_desired_state`` and ``explain_inputs``.

The names below are imported when first asked for (PEP 562), so that importing one module of
the package (``config.generate``, ``config.yamlsafe``) does not load all of them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from reconciler.config.loader import (
        deployment_name,
        explain_inputs,
        load_desired_state,
        load_with_console,
    )
    from reconciler.config.schema import KINDS, kind_schema
    from reconciler.config.scripts import render_phase, render_user_data
    from reconciler.config.secrets import check_secrets, resolve_secret

_WHERE = {
    "KINDS": "schema",
    "check_secrets": "secrets",
    "deployment_name": "loader",
    "explain_inputs": "loader",
    "kind_schema": "schema",
    "load_desired_state": "loader",
    "load_with_console": "loader",
    "render_phase": "scripts",
    "render_user_data": "scripts",
    "resolve_secret": "secrets",
}

__all__ = [
    "KINDS",
    "check_secrets",
    "deployment_name",
    "explain_inputs",
    "kind_schema",
    "load_desired_state",
    "load_with_console",
    "render_phase",
    "render_user_data",
    "resolve_secret",
]


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value
