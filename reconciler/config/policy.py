"""config.policy: a schema-valid ``Policy`` document → a typed ``core.policy_model.Policy``.

What the schema cannot say is checked here, each problem at its line: rule names unique in
their policy, every CEL expression compiled (``config.cel``: syntax, names, fields, types,
size — a problem inside the expression at the expression's own line), every window's
schedule a valid cron that fires, ``monthly_cost`` bounded money. The scope (global or a
Cluster) is checked by ``resolve`` with the other references.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from reconciler.config.documents import Problems, Ref, ref
from reconciler.config.yamlsafe import Document, YamlPath, dotted
from reconciler.core import cron
from reconciler.core.errors import Diagnostic
from reconciler.core.limits import MONEY_DIGITS, MONEY_PLACES, money_problem
from reconciler.core.policy_model import (
    AllowedField,
    AllowList,
    ChangeWindow,
    Enforcement,
    Policy,
    PolicyRule,
    Quota,
    QuotaResource,
    Where,
)


@dataclass(frozen=True)
class PolicySpec:
    """A schema-valid Policy: the policy, its document, the scope it holds (a Cluster or global)."""

    policy: Policy
    doc: Document
    scope: Ref


def _where(doc: Document, path: YamlPath) -> Where:
    return Where(doc.file, doc.line_of(path))


def build_policy(doc: Document) -> tuple[PolicySpec | None, Problems]:
    name, spec = doc.data["metadata"]["name"], doc.data["spec"]
    problems: Problems = []
    enforcement = Enforcement(spec.get("enforcement", "deny"))
    scope = str(spec["scope"])
    quotas = tuple(_quota(doc, key, raw, problems) for key, raw in spec.get("quotas", {}).items())
    allowed = tuple(
        AllowList(AllowedField(key), tuple(str(p) for p in raw), _where(doc, ("spec", "allowed", key)))
        for key, raw in spec.get("allowed", {}).items()
    )
    rules: list[PolicyRule] = []
    seen: dict[str, int] = {}
    for index, raw in enumerate(spec.get("rules", [])):
        path: YamlPath = ("spec", "rules", index)
        rule_name = str(raw["name"])
        if rule_name in seen:
            problems.append(
                Diagnostic(
                    doc.file,
                    doc.line_of((*path, "name")),
                    f"two rules of policy {name!r} are named {rule_name!r} (the first at line "
                    f"{seen[rule_name]}); rename one",
                )
            )
        seen.setdefault(rule_name, doc.line_of((*path, "name")))
        rule = _rule(doc, path, rule_name, str(raw["expr"]), str(raw["message"]), problems)
        if rule is not None:
            rules.append(rule)
    windows = tuple(
        _window(doc, ("spec", "windows", index), name, scope, enforcement, raw, problems)
        for index, raw in enumerate(spec.get("windows", []))
    )
    if problems:
        return None, problems
    policy = Policy(
        name=name,
        scope=scope,
        enforcement=enforcement,
        quotas=quotas,
        allowed=allowed,
        required_tags=tuple(str(t) for t in spec.get("required_tags", [])),
        required_tags_where=_where(doc, ("spec", "required_tags")) if "required_tags" in spec else None,
        rules=tuple(rules),
        windows=windows,
        where=Where(doc.file, doc.line),
    )
    return PolicySpec(policy, doc, ref(doc, ("spec", "scope"), scope)), []


def _quota(doc: Document, key: str, raw: object, problems: Problems) -> Quota:
    path: YamlPath = ("spec", "quotas", key)
    limit = Decimal(str(raw))
    if key == QuotaResource.MONTHLY_COST.value:
        problem = money_problem(limit)
        if problem is not None:
            problems.append(
                Diagnostic(
                    doc.file,
                    doc.line_of(path),
                    f"{dotted(path)} {raw} {problem}; write a decimal of at most {MONEY_DIGITS} digits "
                    f"before the point and {MONEY_PLACES} after, such as '2500.00'",
                )
            )
    return Quota(QuotaResource(key), limit, _where(doc, path))


def _rule(
    doc: Document, path: YamlPath, name: str, expr: str, message: str, problems: Problems
) -> PolicyRule | None:
    expr_path: YamlPath = (*path, "expr")
    first = doc.content_line(expr_path) if "\n" in expr.rstrip("\n") else doc.line_of(expr_path)
    from reconciler.config.cel import Compiled, compile_rule  # here: cel-python only for a state with rules

    compiled = compile_rule(expr)
    if not isinstance(compiled, Compiled):
        for problem in compiled:
            column = f" (column {problem.column})" if "\n" in expr.rstrip("\n") or problem.column > 1 else ""
            message = f"rule {name!r}: the expression {problem.message}{column}"
            problems.append(Diagnostic(doc.file, first + problem.line - 1, message))
        return None
    return PolicyRule(
        name=name,
        expr=expr,
        message=message,
        subject=compiled.subject,
        where=_where(doc, path),
        uses_plan=compiled.uses_plan,
        program=compiled.program,
    )


def _window(
    doc: Document,
    path: YamlPath,
    policy: str,
    scope: str,
    enforcement: Enforcement,
    raw: dict[str, object],
    problems: Problems,
) -> ChangeWindow:
    schedule = str(raw["deny"])
    line = doc.line_of((*path, "deny"))
    if not cron.valid(schedule):
        problems.append(
            Diagnostic(
                doc.file,
                line,
                f"window deny {schedule!r} is not a valid cron expression; write five fields (minute hour "
                "day-of-month month day-of-week) in UTC, e.g. '0 18 * * 5' for Fridays at 18:00",
            )
        )
    elif not cron.fires(schedule):
        problems.append(
            Diagnostic(
                doc.file,
                line,
                f"window deny {schedule!r} never opens (no date matches it, such as 30 February); "
                "fix the day of the month or the month",
            )
        )
    return ChangeWindow(
        policy=policy,
        scope=scope,
        enforcement=enforcement,
        deny=schedule,
        duration_hours=int(str(raw["duration_hours"])),
        message=str(raw.get("message", "")),
        allow_heal=bool(raw.get("allow_heal", True)),
        where=_where(doc, path),
    )
