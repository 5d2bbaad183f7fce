"""core.policy_codec: the JSON form of a plan's policy violations and change windows.

Part of the plan file (``core.plan_codec`` writes them under ``violations`` and ``windows``,
inside the signed content), so ``apply --plan`` decides on exactly what the plan said. The
shape is published in ``schemas/plan.json`` for external engines (OPA/conftest). Reading
checks every value: a window's schedule is a valid five-field cron, its duration within
``MAX_WINDOW_HOURS``; anything else is a ``ValueError`` the plan reader reports.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from reconciler.core import cron
from reconciler.core.limits import MAX_WINDOW_HOURS
from reconciler.core.policy_model import ChangeWindow, Enforcement, Violation, ViolationKind, Where


def _where_to(where: Where) -> dict[str, Any]:
    return {"file": where.file, "line": where.line}


def _where_from(data: Mapping[str, Any]) -> Where:
    line = data.get("line")
    if line is not None and (isinstance(line, bool) or not isinstance(line, int) or line < 0):
        raise ValueError(f"line {line!r} is not a line number")
    return Where(str(data["file"]), line)


def violation_to_dict(violation: Violation) -> dict[str, Any]:
    return {
        "policy": violation.policy,
        "rule": violation.rule,
        "kind": violation.kind.value,
        "enforcement": violation.enforcement.value,
        "message": violation.message,
        **_where_to(violation.where),
        "keys": list(violation.keys),
    }


def violation_from_dict(data: Mapping[str, Any]) -> Violation:
    return Violation(
        policy=str(data["policy"]),
        rule=str(data["rule"]),
        kind=ViolationKind(data["kind"]),
        enforcement=Enforcement(data["enforcement"]),
        message=str(data["message"]),
        where=_where_from(data),
        keys=tuple(str(k) for k in data.get("keys", ())),
    )


def window_to_dict(window: ChangeWindow) -> dict[str, Any]:
    return {
        "policy": window.policy,
        "scope": window.scope,
        "enforcement": window.enforcement.value,
        "deny": window.deny,
        "duration_hours": window.duration_hours,
        "allow_heal": window.allow_heal,
        "message": window.message,
        **_where_to(window.where),
    }


def window_from_dict(data: Mapping[str, Any]) -> ChangeWindow:
    deny = str(data["deny"])
    if not cron.valid(deny):
        raise ValueError(f"window schedule {deny!r} is not a five-field cron expression")
    hours = data["duration_hours"]
    if isinstance(hours, bool) or not isinstance(hours, int) or not 1 <= hours <= MAX_WINDOW_HOURS:
        raise ValueError(f"window duration_hours {hours!r} is not from 1 to {MAX_WINDOW_HOURS}")
    allow_heal = data.get("allow_heal", True)
    if not isinstance(allow_heal, bool):
        raise ValueError(f"window allow_heal {allow_heal!r} is not true or false")
    return ChangeWindow(
        policy=str(data["policy"]),
        scope=str(data["scope"]),
        enforcement=Enforcement(data["enforcement"]),
        deny=deny,
        duration_hours=hours,
        message=str(data.get("message", "")),
        allow_heal=allow_heal,
        where=_where_from(data),
    )
