"""core.policy: hold every ``Policy`` against the desired state and a plan, and find the change
windows open now.

Pure decisions over values (the policy's own values are in ``core.policy_model``):

* **quotas** — the desired servers of a policy's scope add up to at most ``servers``, ``vcpus``,
  ``memory_gb`` (1024 MB each) and ``disk_gb``; with a plan, its cost after per 30-day month
  is at most ``monthly_cost`` (in the plan's currency);
* **allowed** — every server's provider name, flavor and image matches one of the glob patterns
  (``fnmatch``, case-sensitive); a server with no flavor yet is checked once the plan has
  asked its provider which flavor it gets;
* **required_tags** — every server carries each tag key;
* **rules** — CEL expressions (compiled by ``config.cel``) over each desired server, each
  change, or the plan once; a rule that cannot be evaluated is a violation of its own kind
  (``evaluation``), never a crash;
* **windows** — ``open_windows`` says which are open at an instant and ``held_keys`` which
  changes one holds back (a failed or stopped server's heal passes when ``allow_heal``).

``check_policies`` without plan facts is what ``validate`` can know (no change, no cost);
with them it is the plan's whole check. The variables a rule sees are built here, from the
values only: a secret input's value never reaches CEL (it reads ``(sensitive)``), and their
shapes (``VARIABLES``) are what ``config.cel`` checks field names against.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING, Any

from reconciler.core.cron import latest_tick
from reconciler.core.keys import ServerKey
from reconciler.core.model import HOURS_PER_MONTH, SENSITIVE, Action, DesiredServer, ObservedServer, SecretRef
from reconciler.core.policy_model import (
    GLOBAL_SCOPE,
    AllowedField,
    ChangeWindow,
    Enforcement,
    Policy,
    PolicyRule,
    QuotaResource,
    RuleFailure,
    Subject,
    Violation,
    ViolationKind,
    Where,
)

if TYPE_CHECKING:  # validate checks policies without loading the plan's types
    from reconciler.core.changes import Change
    from reconciler.core.cost import CostSummary

Shape = Mapping[str, Any]  # field -> a leaf type ("string", "int", "bool", "double", "map") or a Shape

_SIZE: Shape = {"cpus": "int", "memory_mb": "int", "disk_gb": "int"}
SERVER_SHAPE: Shape = {
    "key": "string",
    "cluster": "string",
    "member": "string",
    "ordinal": "int",
    "provider": "string",
    "provider_type": "string",
    "template": "string",
    "image": "string",
    "flavor": "string",  # null when none
    "size": _SIZE,
    "tags": "map",
    "inputs": "map",
    "protect": "bool",
}
OBSERVED_SHAPE: Shape = {
    "key": "string",
    "cluster": "string",
    "member": "string",
    "ordinal": "int",
    "provider": "string",
    "resource_id": "string",
    "status": "string",
    "image": "string",
    "flavor": "string",
    "size": _SIZE,
    "tags": "map",
    "protected": "bool",
    "generation": "int",
}
CHANGE_SHAPE: Shape = {
    "id": "string",
    "key": "string",
    "cluster": "string",
    "action": "string",
    "cause": "string",
    "provider": "string",
    "before": OBSERVED_SHAPE,  # null for a create
    "after": SERVER_SHAPE,  # null for a delete
}
PLAN_SHAPE: Shape = {
    "changes": "int",
    "counts": {"create": "int", "update": "int", "replace": "int", "delete": "int", "unchanged": "int"},
    "cost": {"currency": "string", "before": "double", "after": "double", "delta": "double"},
    "costs": "map",  # currency → the same four fields, for a scope priced in several
}
VARIABLES: Mapping[str, Shape] = {"server": SERVER_SHAPE, "change": CHANGE_SHAPE, "plan": PLAN_SHAPE}


# --- the variables a rule sees ------------------------------------------------------------------
def _size(cpus: int, memory_mb: int, disk_gb: int) -> dict[str, object]:
    return {"cpus": cpus, "memory_mb": memory_mb, "disk_gb": disk_gb}


def server_variables(server: DesiredServer) -> dict[str, object]:
    """``server`` for CEL: a desired server, its secret inputs as ``(sensitive)``."""
    inputs: dict[str, object] = {}
    for item in server.inputs:
        if item.sensitive or isinstance(item.value, SecretRef):
            inputs[item.name] = SENSITIVE
        elif item.value is not None:
            inputs[item.name] = item.value
    return {
        "key": server.key,
        "cluster": server.cluster,
        "member": server.member,
        "ordinal": server.ordinal,
        "provider": server.provider,
        "provider_type": server.provider_type,
        "template": server.template,
        "image": server.image,
        "flavor": server.flavor,
        "size": _size(server.size.cpus, server.size.memory_mb, server.size.disk_gb),
        "tags": dict(server.tags),
        "inputs": inputs,
        "protect": server.protect,
    }


def observed_variables(server: ObservedServer) -> dict[str, object]:
    """An observed server for CEL (``change.before``)."""
    key = ServerKey.try_parse(server.key)
    return {
        "key": server.key,
        "cluster": key.cluster if key is not None else server.cluster,
        "member": key.name if key is not None else "",
        "ordinal": key.ordinal if key is not None else 0,
        "provider": server.provider,
        "resource_id": server.resource_id,
        "status": server.status.value,
        "image": server.image,
        "flavor": server.flavor,
        "size": _size(server.size.cpus, server.size.memory_mb, server.size.disk_gb),
        "tags": dict(server.tags),
        "protected": server.protected,
        "generation": server.generation,
    }


def change_variables(change: Change) -> dict[str, object]:
    return {
        "id": change.id,
        "key": change.key,
        "cluster": change.cluster,
        "action": change.action.value,
        "cause": change.cause.value,
        "provider": change.provider,
        "before": observed_variables(change.before) if change.before is not None else None,
        "after": server_variables(change.after) if change.after is not None else None,
    }


def _change_server(change: Change) -> dict[str, object]:
    """``server`` beside ``change``: the desired server, or the observed one a delete removes."""
    if change.after is not None:
        return server_variables(change.after)
    assert change.before is not None, "a change has a server before or after it"
    seen = observed_variables(change.before)
    return {
        **{name: seen[name] for name in SERVER_SHAPE if name in seen},
        "provider_type": "",
        "template": "",
        "inputs": {},
        "protect": change.before.protected,
    }


@dataclass(frozen=True)
class PlanFacts:
    """What a plan adds to the desired state for a check: its changes and its cost."""

    changes: tuple[Change, ...]
    cost: CostSummary


def _scope_costs(cost: CostSummary, scope: str) -> dict[str, tuple[Decimal, Decimal]]:
    """Per currency, the (before, after) cost of a scope per 30-day month (never summed across
    currencies)."""
    lines = cost.totals if scope == GLOBAL_SCOPE else [x for x in cost.by_cluster if x.scope == scope]
    return {
        line.currency: (line.before_hourly * HOURS_PER_MONTH, line.after_hourly * HOURS_PER_MONTH)
        for line in lines
    }


def _money(currency: str, before: Decimal, after: Decimal) -> dict[str, object]:
    delta = after - before
    return {"currency": currency, "before": float(before), "after": float(after), "delta": float(delta)}


def plan_variables(facts: PlanFacts, policy: Policy, servers: Sequence[DesiredServer]) -> dict[str, object]:
    """``plan`` for CEL, narrowed to the policy's scope: counts of its changes, its cost per 30-day month."""
    changes = [c for c in facts.changes if policy.covers(c.cluster)]
    counts = {a.value: sum(1 for c in changes if c.action is a) for a in _COUNTED}
    changed = {c.key for c in changes}
    counts["unchanged"] = sum(1 for s in servers if policy.covers(s.cluster) and s.key not in changed)
    costs = _scope_costs(facts.cost, policy.scope)
    only = next(iter(costs.items())) if len(costs) == 1 else ("", (Decimal(0), Decimal(0)))
    currency, (before, after) = only
    return {
        "changes": len(changes),
        "counts": counts,
        # the scope's one currency; priced in several, each is in ``costs`` and ``cost`` is empty
        "cost": _money(currency, before, after),
        "costs": {name: _money(name, *amounts) for name, amounts in costs.items()},
    }


_COUNTED = (Action.CREATE, Action.UPDATE, Action.REPLACE, Action.DELETE)


# --- the checks ---------------------------------------------------------------------------------
def check_policies(
    policies: Sequence[Policy], servers: Sequence[DesiredServer], facts: PlanFacts | None = None
) -> tuple[Violation, ...]:
    """Every violation of every policy, in policy order then as each policy lists its parts.

    ``servers``: the desired servers (none for a destroy). ``facts``: the plan's changes and
    cost; without them only what the desired state alone decides is checked (``validate``).
    """
    found: list[Violation] = []
    for policy in policies:
        mine = [s for s in servers if policy.covers(s.cluster)]
        found += _quotas(policy, mine, facts)
        found += _allowed(policy, mine, checked_flavors=facts is not None)
        found += _required_tags(policy, mine)
        for rule in policy.rules:
            found += _rule(policy, rule, mine, servers, facts)
    return tuple(found)


def _violation(
    policy: Policy, rule: str, kind: ViolationKind, message: str, where: Where | None, keys: Sequence[str]
) -> Violation:
    return Violation(
        policy=policy.name,
        rule=rule,
        kind=kind,
        enforcement=policy.enforcement,
        message=message,
        where=where or policy.where or Where("?"),
        keys=tuple(sorted(set(keys))),
    )


def _in_scope(policy: Policy) -> str:
    return "in all clusters" if policy.scope == GLOBAL_SCOPE else f"in cluster {policy.scope}"


_QUOTA_WORDS = {
    QuotaResource.SERVERS: "servers",
    QuotaResource.VCPUS: "vCPUs",
    QuotaResource.MEMORY_GB: "GB of memory",
    QuotaResource.DISK_GB: "GB of disk",
}


def _quotas(policy: Policy, servers: Sequence[DesiredServer], facts: PlanFacts | None) -> list[Violation]:
    totals = {
        QuotaResource.SERVERS: Decimal(len(servers)),
        QuotaResource.VCPUS: Decimal(sum(s.size.cpus for s in servers)),
        QuotaResource.MEMORY_GB: Decimal(sum(s.size.memory_mb for s in servers)) / 1024,
        QuotaResource.DISK_GB: Decimal(sum(s.size.disk_gb for s in servers)),
    }
    found: list[Violation] = []
    keys = [s.key for s in servers]
    for quota in policy.quotas:
        rule = f"quotas.{quota.resource.value}"
        if quota.resource is QuotaResource.MONTHLY_COST:
            if facts is None:
                continue
            costs = _scope_costs(facts.cost, policy.scope)
            raising = [c.key for c in facts.changes if policy.covers(c.cluster)]
            if len(costs) > 1:  # a quota of one amount cannot be compared across currencies
                message = (
                    f"the plan's cost {_in_scope(policy)} is in {' and '.join(costs)}, and a monthly_cost "
                    "quota has one amount; scope the policy to clusters priced in one currency"
                )
                found.append(_violation(policy, rule, ViolationKind.QUOTA, message, quota.where, raising))
                continue
            for currency, (_, after) in costs.items():
                if after > quota.limit:
                    message = (
                        f"the plan's cost after is {after:.2f} {currency} per 30-day month "
                        f"{_in_scope(policy)}, over the quota of {quota.limit:.2f} {currency}"
                    )
                    found.append(_violation(policy, rule, ViolationKind.QUOTA, message, quota.where, raising))
            continue
        total = totals[quota.resource]
        if total > quota.limit:
            message = (
                f"the desired state asks for {_number(total)} {_QUOTA_WORDS[quota.resource]} "
                f"{_in_scope(policy)}, over the quota of {_number(quota.limit)}"
            )
            found.append(_violation(policy, rule, ViolationKind.QUOTA, message, quota.where, keys))
    return found


def _number(value: Decimal) -> str:
    text = f"{value.quantize(Decimal('0.01')):f}".rstrip("0").rstrip(".")
    return text or "0"


def _allowed(policy: Policy, servers: Sequence[DesiredServer], *, checked_flavors: bool) -> list[Violation]:
    found: list[Violation] = []
    for allow in policy.allowed:
        offending: dict[str, list[str]] = {}
        for server in servers:
            value = _allowed_value(server, allow.field)
            if value is None and (allow.field is not AllowedField.FLAVORS or not checked_flavors):
                continue
            if value is None or not any(fnmatchcase(value, p) for p in allow.patterns):
                offending.setdefault("" if value is None else value, []).append(server.key)
        what = allow.field.value.rstrip("s")
        for value, keys in sorted(offending.items()):
            shown = f"{what} {value!r} is not allowed" if value else f"no {what} is given, and one is needed"
            message = f"{shown} (allowed: {', '.join(allow.patterns)})"
            rule = f"allowed.{allow.field.value}"
            found.append(_violation(policy, rule, ViolationKind.ALLOWED, message, allow.where, keys))
    return found


def _allowed_value(server: DesiredServer, field: AllowedField) -> str | None:
    if field is AllowedField.PROVIDERS:
        return server.provider
    if field is AllowedField.FLAVORS:
        return server.flavor
    return server.image


def _required_tags(policy: Policy, servers: Sequence[DesiredServer]) -> list[Violation]:
    found: list[Violation] = []
    for tag in policy.required_tags:
        missing = [s.key for s in servers if tag not in dict(s.tags)]
        if missing:
            message = f"servers must carry the tag {tag!r}; add it to their templates' tags"
            kind, where = ViolationKind.REQUIRED_TAGS, policy.required_tags_where
            found.append(_violation(policy, "required_tags", kind, message, where, missing))
    return found


def _rule(
    policy: Policy,
    rule: PolicyRule,
    mine: Sequence[DesiredServer],
    servers: Sequence[DesiredServer],
    facts: PlanFacts | None,
) -> list[Violation]:
    """The rule over each server, change or the plan: one violation for the keys it is false for,
    and one per distinct reason it could not be evaluated."""
    if rule.program is None:
        return []
    if facts is None and (rule.uses_plan or rule.subject is not Subject.SERVER):
        return []  # validate: no plan yet
    plan = plan_variables(facts, policy, servers) if facts is not None else None
    cases: list[tuple[tuple[str, ...], dict[str, object]]]
    if rule.subject is Subject.SERVER:
        cases = [((s.key,), {"server": server_variables(s)}) for s in mine]
    elif facts is not None and rule.subject is Subject.CHANGE:
        covered = [c for c in facts.changes if policy.covers(c.cluster)]
        cases = [((c.key,), {"server": _change_server(c), "change": change_variables(c)}) for c in covered]
    else:
        changed = tuple(c.key for c in facts.changes if policy.covers(c.cluster)) if facts else ()
        cases = [(changed, {})]
    false: list[str] = []
    violated = False
    failures: dict[str, list[str]] = {}
    for keys, variables in cases:
        if plan is not None and (rule.uses_plan or rule.subject is Subject.PLAN):
            variables["plan"] = plan
        try:
            if not rule.program(variables):
                violated = True
                false += keys
        except RuleFailure as exc:
            failures.setdefault(str(exc), []).extend(keys)
    found: list[Violation] = []
    if violated:
        found.append(_violation(policy, rule.name, ViolationKind.RULE, rule.message, rule.where, false))
    for reason, failed in sorted(failures.items()):
        message = f"could not be evaluated: {reason}"
        found.append(_violation(policy, rule.name, ViolationKind.EVALUATION, message, rule.where, failed))
    return found


# --- change windows ---------------------------------------------------------------------------
@dataclass(frozen=True)
class OpenWindow:
    """A deny window of a Policy that is open now: since when, until when."""

    window: ChangeWindow
    opened: datetime
    closes: datetime

    def describe(self) -> str:
        """``policy shop-limits: no weekend changes (open 2026-11-06 18:00 → 2026-11-09 08:00 UTC)``"""
        stamp = "%Y-%m-%d %H:%M"
        why = self.window.message or f"a change window ({self.window.deny}, {self.window.duration_hours} h)"
        return (
            f"policy {self.window.policy}: {why} (open {self.opened.strftime(stamp)} → "
            f"{self.closes.strftime(stamp)} UTC)"
        )


def open_windows(windows: Sequence[ChangeWindow], now: datetime) -> tuple[OpenWindow, ...]:
    """The windows open at ``now``: opened at their latest tick at or before it, not yet closed."""
    found: list[OpenWindow] = []
    for window in windows:
        opened = latest_tick(window.deny, now)
        closes = opened + timedelta(hours=window.duration_hours)
        if opened <= now < closes:
            found.append(OpenWindow(window, opened, closes))
    return tuple(found)


def holds(window: ChangeWindow, change: Change) -> bool:
    """Whether an open window holds this change back: it is in the window's scope, and it is not
    the heal of a failed or stopped server that the window lets through (``allow_heal``)."""
    if window.scope != GLOBAL_SCOPE and window.scope != change.cluster:
        return False
    return not (window.allow_heal and change.cause.is_failover)


def held_keys(opened: OpenWindow, changes: Sequence[Change]) -> tuple[str, ...]:
    return tuple(sorted({c.key for c in changes if holds(opened.window, c)}))


@dataclass(frozen=True)
class WindowHold:
    """An open window and the keys of the changes it holds back."""

    opened: OpenWindow
    keys: tuple[str, ...]

    @property
    def blocks(self) -> bool:
        """A deny policy's window refuses the apply; a warn policy's is shown and never blocks."""
        return self.opened.window.enforcement is Enforcement.DENY

    def describe(self) -> str:
        more = f" and {len(self.keys) - 10} more" if len(self.keys) > 10 else ""
        shown = ", ".join(self.keys[:10]) + more
        return f"{self.opened.window.where}: {self.opened.describe()} — holds {shown}"


def window_holds(
    windows: Sequence[ChangeWindow], changes: Sequence[Change], now: datetime
) -> tuple[WindowHold, ...]:
    """Every window open at ``now`` that holds back at least one of ``changes``."""
    found: list[WindowHold] = []
    for opened in open_windows(windows, now):
        keys = held_keys(opened, changes)
        if keys:
            found.append(WindowHold(opened, keys))
    return tuple(found)
