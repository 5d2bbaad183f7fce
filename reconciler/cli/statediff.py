"""cli.statediff: what changes between two versions of the desired state — no cloud involved.

``reconciler diff --base REV [--head REV] PATH`` serves pull requests that cannot see a
cloud (forks get no credentials): it loads the desired state of two commits and says which
servers the change adds, changes or removes, and what it does to the estimated hourly
cost. It never observes anything, so it says nothing about drift: that is ``plan``'s job.

A server is *changed* when anything that shapes it differs: provider, template, image,
size, flavor, tags, its scripts or inputs (seen through the spec hash — input values are
never shown, so a secret cannot leak into a pull request), protection, backup policy, or
how the daemon treats it (update strategy, drift mode, failover policy).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Any

from reconciler.cli.render import cost_notes, format_hourly, format_money
from reconciler.cli.review import MARKDOWN_LIMIT, marker
from reconciler.core.changes import FieldChange
from reconciler.core.cost import CostLine, CostSummary
from reconciler.core.keys import natural_key
from reconciler.core.model import DesiredServer, DesiredState
from reconciler.core.pricing import plan_cost

NONE_SHOWN = "(none)"


class DeltaKind(StrEnum):
    ADDED = "added"
    CHANGED = "changed"
    REMOVED = "removed"

    @property
    def symbol(self) -> str:
        return {"added": "+", "changed": "~", "removed": "-"}[self.value]


@dataclass(frozen=True)
class ServerDelta:
    key: str
    kind: DeltaKind
    provider: str
    fields: tuple[FieldChange, ...] = ()


@dataclass(frozen=True)
class StateDiff:
    base: str  # how the base was named (a rev), for display
    head: str
    deployment: str
    deltas: tuple[ServerDelta, ...]
    unchanged: int
    cost: CostSummary  # before = base, after = head

    @property
    def has_changes(self) -> bool:
        return bool(self.deltas)

    def count(self, kind: DeltaKind) -> int:
        return sum(1 for d in self.deltas if d.kind is kind)


def _failover(server: DesiredServer) -> str:
    cap = "no cap" if server.failover_max_per_hour is None else f"max {server.failover_max_per_hour}/h"
    return f"{server.failover.value}, grace {server.failover_grace_seconds}s, {cap}"


def _fields(old: DesiredServer, new: DesiredServer) -> tuple[FieldChange, ...]:
    pairs: list[tuple[str, str, str]] = [
        ("provider", old.provider, new.provider),
        ("template", old.template, new.template),
        ("image", old.image, new.image),
        ("cpus", str(old.size.cpus), str(new.size.cpus)),
        ("memory_mb", str(old.size.memory_mb), str(new.size.memory_mb)),
        ("disk_gb", str(old.size.disk_gb), str(new.size.disk_gb)),
        ("flavor", old.flavor or NONE_SHOWN, new.flavor or NONE_SHOWN),
        ("protect", str(old.protect).lower(), str(new.protect).lower()),
        ("backup_policy", old.backup_policy or NONE_SHOWN, new.backup_policy or NONE_SHOWN),
        ("update", old.update_strategy.value, new.update_strategy.value),
        ("drift", old.drift.value, new.drift.value),
        ("failover", _failover(old), _failover(new)),
    ]
    old_tags, new_tags = dict(old.tags), dict(new.tags)
    for name in sorted(old_tags.keys() | new_tags.keys()):
        pairs.append((f"tags.{name}", old_tags.get(name, NONE_SHOWN), new_tags.get(name, NONE_SHOWN)))
    fields = [FieldChange(name, before, after) for name, before, after in pairs if before != after]
    shape_only = (old.template, old.image, old.size.disk_gb) == (new.template, new.image, new.size.disk_gb)
    if old.spec_hash != new.spec_hash and shape_only:
        fields.append(FieldChange("scripts/inputs", old.spec_hash, new.spec_hash))
    return tuple(fields)


def _totals(state: DesiredState) -> CostSummary:
    return plan_cost(state.servers, [], state.price_list_for)


def compare(base: DesiredState, head: DesiredState, *, base_name: str, head_name: str) -> StateDiff:
    """Servers added, changed and removed from ``base`` to ``head``, and the hourly cost of each."""
    old = {s.key: s for s in base.servers}
    new = {s.key: s for s in head.servers}
    deltas: list[ServerDelta] = []
    unchanged = 0
    for key in sorted(old.keys() | new.keys(), key=natural_key):
        if key not in old:
            deltas.append(ServerDelta(key, DeltaKind.ADDED, new[key].provider))
        elif key not in new:
            deltas.append(ServerDelta(key, DeltaKind.REMOVED, old[key].provider))
        else:
            fields = _fields(old[key], new[key])
            if fields:
                deltas.append(ServerDelta(key, DeltaKind.CHANGED, new[key].provider, fields))
            else:
                unchanged += 1
    before, after = _totals(base), _totals(head)
    by_before = {(line.currency, line.scope): line.after_hourly for line in before.by_cluster}
    by_after = {(line.currency, line.scope): line.after_hourly for line in after.by_cluster}
    lines = tuple(
        CostLine(
            scope=cluster, currency=currency, before_hourly=by_before.get((currency, cluster), Decimal(0)),
            after_hourly=by_after.get((currency, cluster), Decimal(0)),
        )
        for currency, cluster in sorted(by_before.keys() | by_after.keys())
    )
    cost = CostSummary(by_cluster=lines, unpriced=after.unpriced, measured=after.measured)
    return StateDiff(base_name, head_name, head.deployment, tuple(deltas), unchanged, cost)


# --- rendering ----------------------------------------------------------------------------------
def _summary(result: StateDiff) -> str:
    return (
        f"{result.count(DeltaKind.ADDED)} added, {result.count(DeltaKind.CHANGED)} changed, "
        f"{result.count(DeltaKind.REMOVED)} removed, {result.unchanged} unchanged"
    )


def _cost(result: StateDiff) -> str:
    """The hourly cost from base to head, per currency (``; ``-separated); never summed across them."""
    totals = result.cost.totals
    if not totals:
        return "not priced"
    return "; ".join(
        (f"{total.currency} " if len(totals) > 1 else "")
        + f"{format_hourly(total.before_hourly, total.currency)}/h → "
        f"{format_hourly(total.after_hourly, total.currency)}/h "
        f"({format_hourly(total.delta_hourly, total.currency, signed=True)}/h, "
        f"{format_money(total.delta_monthly, total.currency, signed=True)} per 30-day month)"
        for total in totals
    )


def _field_text(field: FieldChange) -> str:
    if field.name == "scripts/inputs":
        return f"scripts/inputs changed (spec hash {field.before} → {field.after})"
    return f"{field.name}: {field.before} → {field.after}"


def render_text(result: StateDiff) -> str:
    lines = [f"Desired state {result.base} → {result.head} (deployment {result.deployment}):", ""]
    if not result.deltas:
        lines.append("No servers added, changed or removed.")
    for delta in result.deltas:
        lines.append(f"  {delta.kind.symbol} {delta.key} ({delta.provider}) {delta.kind.value}")
        lines.extend(f"      {_field_text(f)}" for f in delta.fields)
    lines += ["", f"Servers: {_summary(result)}.", f"Cost: {_cost(result)}"]
    lines.extend(cost_notes(result.cost))
    return "\n".join(lines) + "\n"


def render_markdown(result: StateDiff, *, limit: int = MARKDOWN_LIMIT) -> str:
    """The diff as a pull-request comment: the plan's marker first, removed servers before changed
    and added ones, never over ``limit`` characters (rows that do not fit are counted, not shown)."""
    head = [
        marker(result.deployment),
        f"### Desired state: `{result.base}` → `{result.head}`",
        "",
        f"**{_summary(result)}** · cost {_cost(result)}",
        "",
    ]
    tail = [line for note in cost_notes(result.cost) for line in ("", note)]
    if not result.deltas:
        return "\n".join([*head, "No servers added, changed or removed.", *tail]) + "\n"
    order = {DeltaKind.REMOVED: 0, DeltaKind.CHANGED: 1, DeltaKind.ADDED: 2}
    rows = []
    for delta in sorted(result.deltas, key=lambda d: order[d.kind]):  # stable: keys stay in order
        what = "<br>".join(_field_text(f).replace("|", "\\|") for f in delta.fields) or delta.kind.value
        rows.append(f"| `{delta.kind.symbol}` | `{delta.key}` | {delta.provider} | {what} |")
    room = limit - len("\n".join([*head, *tail])) - 300
    shown: list[str] = []
    for row in rows:
        room -= len(row) + 1
        if room < 0:
            break
        shown.append(row)
    if len(shown) < len(rows):
        left = len(rows) - len(shown)
        tail = ["", f"… {left} more servers not shown (`reconciler diff --format json`)", *tail]
    table = ["| | server | provider | what changes |", "|---|---|---|---|", *shown]
    text = "\n".join([*head, *table, *tail]) + "\n"
    if len(text) <= limit:
        return text
    return text[: limit - 1] + "…" if limit > 0 else ""


def to_dict(result: StateDiff) -> dict[str, Any]:
    cost = result.cost
    return {
        "base": result.base,
        "head": result.head,
        "deployment": result.deployment,
        "summary": {kind.value: result.count(kind) for kind in DeltaKind} | {"unchanged": result.unchanged},
        "servers": [
            {
                "key": d.key,
                "change": d.kind.value,
                "provider": d.provider,
                "fields": [{"name": f.name, "before": f.before, "after": f.after} for f in d.fields],
            }
            for d in result.deltas
        ],
        "cost": _cost_dict(cost),
    }


def _cost_dict(cost: CostSummary) -> dict[str, Any]:
    """One total per currency (and, priced in one currency only, its figures at the top too)."""
    totals = [
        {
            "currency": total.currency,
            "before_hourly": str(total.before_hourly),
            "after_hourly": str(total.after_hourly),
            "delta_hourly": str(total.delta_hourly),
            "delta_monthly": str(total.delta_monthly),
        }
        for total in cost.totals
    ]
    return (totals[0] if len(totals) == 1 else {}) | {
        "totals": totals,
        "by_cluster": [
            {
                "cluster": line.scope,
                "currency": line.currency,
                "before_hourly": str(line.before_hourly),
                "after_hourly": str(line.after_hourly),
            }
            for line in cost.by_cluster
        ],
        "unpriced": list(cost.unpriced),
        "measured": list(cost.measured),
    }


def render_json(result: StateDiff) -> str:
    return json.dumps(to_dict(result), indent=2) + "\n"
