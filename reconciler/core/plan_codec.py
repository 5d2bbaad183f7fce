"""core.plan_codec: the Plan's JSON form (plan files, ``plan --format json``), written and read back."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from reconciler.core.backups import BackupAction, BackupKind
from reconciler.core.changes import Change, ChangeCause, FieldChange
from reconciler.core.clock import isoformat, parse_timestamp
from reconciler.core.errors import UserError
from reconciler.core.limits import money_problem, size_problem
from reconciler.core.model import (
    Action,
    BackupMethod,
    BillingMode,
    DesiredServer,
    DriftMode,
    FailoverMode,
    Granularity,
    ObservedServer,
    PriceList,
    ProviderConfig,
    Quiesce,
    ResolvedInput,
    Script,
    ScriptPhase,
    SecretRef,
    ServerStatus,
    Size,
    UpdateStrategy,
)
from reconciler.core.plan import (
    FORMAT_VERSION,
    BudgetCheck,
    CostLine,
    CostSummary,
    Plan,
)
from reconciler.core.plan_signature import sign, verify
from reconciler.core.policy_codec import (
    violation_from_dict,
    violation_to_dict,
    window_from_dict,
    window_to_dict,
)


# --- JSON ---------------------------------------------------------------------------------
def _size_to(size: Size) -> dict[str, int]:
    return {"cpus": size.cpus, "memory_mb": size.memory_mb, "disk_gb": size.disk_gb}


def _size_from(data: Mapping[str, Any]) -> Size:
    data = _obj(data)
    for name in ("cpus", "memory_mb", "disk_gb"):  # the ranges are size_problem's, said with the field
        if isinstance(data[name], bool) or not isinstance(data[name], int):
            raise ValueError(f"size {name} must be a whole number, found {_shown_amount(repr(data[name]))}")
    return Size(data["cpus"], data["memory_mb"], data["disk_gb"])


def _int(value: Any) -> int:
    """A whole number of a plan file, within 64 bits."""
    if isinstance(value, bool) or not isinstance(value, int) or not -(2**63) <= value < 2**63:
        raise ValueError(f"expected a whole number, found {_shown_amount(repr(value))}")
    return value


def _desired_size_from(data: Mapping[str, Any]) -> Size:
    """A size to create or resize to: within the limits the desired state has (a plan file can be edited)."""
    size = _size_from(data)
    problem = size_problem(size)
    if problem is not None:
        raise ValueError(f"size {problem}")
    return size


def _money(value: Any) -> Decimal:
    """A rate of a saved price list, bounded as a PriceList's rates are."""
    amount = Decimal(str(value))
    problem = money_problem(amount)
    if problem is not None:
        raise ValueError(f"rate {_shown_amount(value)} {problem}")
    return amount


def _shown_amount(value: Any) -> str:
    text = str(value)
    return text if len(text) <= 30 else f"{text[:20]}… ({len(text)} characters)"


def _s(value: Any) -> str:
    """A text field of a plan file (an edited file may hold anything)."""
    if not isinstance(value, str):
        raise ValueError(f"expected text, found {_shown_amount(repr(value))}")
    return value


def _opt_s(value: Any) -> str | None:
    return None if value is None else _s(value)


def _texts(value: Any) -> tuple[str, ...]:
    return tuple(_s(item) for item in _seq(value))


def _seq(value: Any) -> list[Any]:
    if not isinstance(value, list):
        raise ValueError(f"expected a list, found {_shown_amount(repr(value))}")
    return value


def _obj(value: Any) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise ValueError(f"expected an object, found {_shown_amount(repr(value))}")
    return value


def _amount(value: Any) -> Decimal:
    """An amount of a plan's cost: a finite decimal number, as ``plan_to_dict`` writes it."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ValueError(f"expected an amount, found {_shown_amount(repr(value))}")
    amount = Decimal(str(value))
    if not amount.is_finite() or abs(amount) >= Decimal(10) ** 18:
        raise ValueError(f"amount {_shown_amount(value)} is not a finite amount below 10^18")
    return amount


def _tags(value: Any) -> tuple[tuple[str, str], ...]:
    pairs = [_seq(pair) for pair in _seq(value)]
    if any(len(pair) != 2 for pair in pairs):
        raise ValueError("a tag is a [name, value] pair")
    return tuple((str(k), str(v)) for k, v in pairs)


def _value_to(value: Any) -> Any:
    if isinstance(value, SecretRef):
        return {"secret": str(value)}
    return value


def _value_from(value: Any) -> Any:
    if isinstance(value, dict) and "secret" in value:
        ref = SecretRef.parse(str(value["secret"]))
        if ref is None:
            raise UserError(f"plan holds a malformed secret reference {value['secret']!r}")
        return ref
    return value


def observed_to_dict(server: ObservedServer) -> dict[str, Any]:
    return {
        "provider": server.provider,
        "resource_id": server.resource_id,
        "key": server.key,
        "name": server.name,
        "owner": server.owner,
        "status": server.status.value,
        "size": _size_to(server.size),
        "image": server.image,
        "spec_hash": server.spec_hash,
        "generation": server.generation,
        "token": server.token,
        "flavor": server.flavor,
        "addresses": list(server.addresses),
        "created_at": isoformat(server.created_at) if server.created_at else None,
        "tags": [list(t) for t in server.tags],
        "protected": server.protected,
        "backup_policy": server.backup_policy,
    }


def observed_from_dict(data: Mapping[str, Any]) -> ObservedServer:
    data = _obj(data)
    return ObservedServer(
        provider=_s(data["provider"]),
        resource_id=_s(data["resource_id"]),
        key=_s(data["key"]),
        name=_s(data["name"]),
        owner=_s(data["owner"]),
        status=ServerStatus(data["status"]),
        size=_size_from(data["size"]),
        image=_s(data["image"]),
        spec_hash=_s(data["spec_hash"]),
        generation=_int(data.get("generation", 0)),
        token=_s(data.get("token", "")),
        flavor=_opt_s(data.get("flavor")),
        addresses=_texts(data.get("addresses", [])),
        created_at=parse_timestamp(_s(data["created_at"])) if data.get("created_at") else None,
        tags=_tags(data.get("tags", [])),
        protected=data.get("protected", False) is not False,  # anything but false protects
        backup_policy=str(data.get("backup_policy") or ""),
    )


def desired_to_dict(server: DesiredServer) -> dict[str, Any]:
    return {
        "key": server.key,
        "name": server.name,
        "cluster": server.cluster,
        "member": server.member,
        "ordinal": server.ordinal,
        "provider": server.provider,
        "provider_type": server.provider_type,
        "template": server.template,
        "image": server.image,
        "size": _size_to(server.size),
        "flavor": server.flavor,
        "inputs": [
            {"name": i.name, "value": _value_to(i.value), "source": i.source, "sensitive": i.sensitive}
            for i in server.inputs
        ],
        "scripts": [{"phase": s.phase.value, "name": s.name, "source": s.source} for s in server.scripts],
        "tags": [list(t) for t in server.tags],
        "protect": server.protect,
        "depends_on": list(server.depends_on),
        "update_strategy": server.update_strategy.value,
        "allow_restart": server.allow_restart,
        "drift": server.drift.value,
        "failover": server.failover.value,
        "backup_policy": server.backup_policy,
        "spec_hash": server.spec_hash,
        "adopt_id": server.adopt_id,
        "allow_replace_on_adopt": server.allow_replace_on_adopt,
    }


def desired_from_dict(data: Mapping[str, Any]) -> DesiredServer:
    data = _obj(data)
    return DesiredServer(
        key=_s(data["key"]),
        name=_s(data["name"]),
        cluster=_s(data["cluster"]),
        member=_s(data["member"]),
        ordinal=_int(data["ordinal"]),
        provider=_s(data["provider"]),
        provider_type=_s(data["provider_type"]),
        template=_s(data["template"]),
        image=_s(data["image"]),
        size=_desired_size_from(data["size"]),
        flavor=_opt_s(data.get("flavor")),
        inputs=tuple(
            ResolvedInput(
                name=_s(i["name"]),
                value=_value_from(i["value"]),
                source=_s(i["source"]),
                sensitive=bool(i.get("sensitive", False)),
            )
            for i in map(_obj, _seq(data.get("inputs", [])))
        ),
        scripts=tuple(
            Script(phase=ScriptPhase(s["phase"]), name=_s(s["name"]), source=_s(s["source"]))
            for s in map(_obj, _seq(data.get("scripts", [])))
        ),
        tags=_tags(data.get("tags", [])),
        protect=bool(data.get("protect", False)),
        depends_on=_texts(data.get("depends_on", [])),
        update_strategy=UpdateStrategy(data.get("update_strategy", "in-place")),
        allow_restart=bool(data.get("allow_restart", True)),
        drift=DriftMode(data.get("drift", "heal")),
        failover=FailoverMode(data.get("failover", "replace")),
        backup_policy=_opt_s(data.get("backup_policy")),
        spec_hash=_s(data["spec_hash"]),
        adopt_id=_s(data.get("adopt_id", "")),
        allow_replace_on_adopt=data.get("allow_replace_on_adopt", False) is True,
    )


def _sensitive_free(server: DesiredServer) -> DesiredServer:
    """Drop literal values of inputs marked sensitive (refs are kept: they are not secrets)."""
    inputs = tuple(
        i
        if not i.sensitive or isinstance(i.value, SecretRef)
        else ResolvedInput(name=i.name, value=None, source=i.source, sensitive=True)
        for i in server.inputs
    )
    return dataclasses.replace(server, inputs=inputs)


_UNIT_RATES = ("vcpu_hour", "ram_gb_hour", "disk_gb_month", "network_gb", "backup_gb_month")


def price_list_to_dict(plist: PriceList) -> dict[str, Any]:
    return {
        "name": plist.name,
        "currency": plist.currency,
        "billing": plist.billing.value,
        "flavor_hourly": {k: str(v) for k, v in sorted(plist.flavor_hourly.items())},
        **{unit: str(getattr(plist, unit)) for unit in _UNIT_RATES},
        "granularity": plist.granularity.value,
        "flat_monthly": str(plist.flat_monthly),
        "network_in_gb": None if plist.network_in_gb is None else str(plist.network_in_gb),
        "network_out_gb": None if plist.network_out_gb is None else str(plist.network_out_gb),
    }


def price_list_from_dict(data: Mapping[str, Any]) -> PriceList:
    data = _obj(data)

    def rate(unit: str) -> Decimal:
        return _money(data.get(unit, "0"))

    return PriceList(
        name=_s(data["name"]),
        currency=_s(data.get("currency", "USD")),
        billing=BillingMode(data.get("billing", "instance-hours")),
        flavor_hourly={_s(k): _money(v) for k, v in _obj(data.get("flavor_hourly", {})).items()},
        vcpu_hour=rate("vcpu_hour"),
        ram_gb_hour=rate("ram_gb_hour"),
        disk_gb_month=rate("disk_gb_month"),
        network_gb=rate("network_gb"),
        backup_gb_month=rate("backup_gb_month"),
        granularity=Granularity(data.get("granularity", "second")),
        flat_monthly=rate("flat_monthly"),
        network_in_gb=None if data.get("network_in_gb") is None else rate("network_in_gb"),
        network_out_gb=None if data.get("network_out_gb") is None else rate("network_out_gb"),
    )


def _line_to_dict(line: CostLine) -> dict[str, Any]:
    return {
        "scope": line.scope,
        "currency": line.currency,
        "before_hourly": str(line.before_hourly),
        "after_hourly": str(line.after_hourly),
        "delta_hourly": str(line.delta_hourly),
    }


def _total_to_dict(total: CostLine) -> dict[str, Any]:
    return {
        "currency": total.currency,
        "before_hourly": str(total.before_hourly),
        "after_hourly": str(total.after_hourly),
        "delta_hourly": str(total.delta_hourly),
        "before_monthly": str(total.before_monthly),
        "after_monthly": str(total.after_monthly),
        "delta_monthly": str(total.delta_monthly),
    }


def cost_to_dict(cost: CostSummary) -> dict[str, Any]:
    """The plan's cost: one total per currency (``totals``), lines by cluster and currency, budgets.

    A plan priced in one currency also carries that total's figures at the top
    (``currency``, ``before_hourly``…), as plans always have; one priced in several carries
    none there, so a reader expecting one currency fails rather than mixes them.
    """
    totals = cost.totals
    data: dict[str, Any] = _total_to_dict(totals[0]) if len(totals) == 1 else {}
    return data | {
        "totals": [_total_to_dict(total) for total in totals],
        "by_cluster": [_line_to_dict(line) for line in cost.by_cluster],
        "unpriced": list(cost.unpriced),
        "measured": list(cost.measured),
        "budgets": [
            {
                "name": check.name,
                "scope": check.scope,
                "currency": check.currency,
                "limit_monthly": str(check.limit_monthly),
                "before_monthly": str(check.before_monthly),
                "after_monthly": str(check.after_monthly),
                "keys": list(check.keys),
                "broken": check.broken,
            }
            for check in cost.budgets
        ],
    }


def cost_from_dict(cost: Mapping[str, Any]) -> CostSummary:
    """The cost of a plan file; the totals it states must be those of its lines (an edit is refused).

    A plan written before costs were kept per currency names its one currency at the top only.
    """
    default = _s(cost.get("currency", "USD"))
    summary = CostSummary(
        by_cluster=tuple(
            CostLine(
                scope=_s(line["scope"]),
                currency=_s(line.get("currency", default)),
                before_hourly=_amount(line["before_hourly"]),
                after_hourly=_amount(line["after_hourly"]),
            )
            for line in map(_obj, _seq(cost.get("by_cluster", [])))
        ),
        unpriced=_texts(cost.get("unpriced", [])),
        measured=_texts(cost.get("measured", [])),
        budgets=tuple(
            BudgetCheck(
                name=_s(check["name"]),
                scope=_s(check["scope"]),
                currency=_s(check.get("currency", default)),
                limit_monthly=_amount(check["limit_monthly"]),
                before_monthly=_amount(check["before_monthly"]),
                after_monthly=_amount(check["after_monthly"]),
                keys=_texts(check.get("keys", [])),
            )
            for check in map(_obj, _seq(cost.get("budgets", [])))
        ),
    )
    stated = [*map(_obj, _seq(cost.get("totals", []))), *([cost] if "before_hourly" in cost else [])]
    for total in stated:
        mine = summary.total(_s(total.get("currency", default)))
        figures = (_amount(total["before_hourly"]), _amount(total["after_hourly"]))
        if figures != (mine.before_hourly, mine.after_hourly):
            raise ValueError(f"the cost totals in {mine.currency} are not the sums of its lines")
    return summary


def plan_to_dict(plan: Plan) -> dict[str, Any]:
    return {
        "format_version": plan.format_version,
        "deployment": plan.deployment,
        "created_at": isoformat(plan.created_at),
        "source_path": plan.source_path,
        "commit": plan.commit,
        "tree": plan.tree,
        "tree_path": plan.tree_path,
        "author": plan.author,
        "committer": plan.committer,
        "summary": plan.summary(),
        "violations": [violation_to_dict(v) for v in plan.violations],  # listed first, for people and engines
        "windows": [window_to_dict(w) for w in plan.windows],
        "targets": list(plan.targets),
        "cost": cost_to_dict(plan.cost),
        "changes": [
            {
                "id": c.id,
                "action": c.action.value,
                "key": c.key,
                "provider": c.provider,
                "cause": c.cause.value,
                "reason": c.reason,
                "before": observed_to_dict(c.before) if c.before else None,
                "after": desired_to_dict(_sensitive_free(c.after)) if c.after else None,
                "token": c.token,
                "generation": c.generation,
                "depends_on": list(c.depends_on),
                "fields": [{"name": f.name, "before": f.before, "after": f.after} for f in c.fields],
            }
            for c in plan.changes
        ],
        "backups": [action_to_dict(b) for b in plan.backups],
        "skip_final_backup": plan.skip_final_backup,
        "providers": [p.to_dict() for p in plan.providers],
        "price_lists": [price_list_to_dict(p) for p in plan.price_lists],
        "basis": {
            "digest": plan.basis_digest(),
            "servers": [observed_to_dict(s) for s in plan.basis],
        },
        "diagnostics": list(plan.diagnostics),
    }


def plan_from_dict(data: Mapping[str, Any], *, source: str = "plan") -> Plan:
    version = data.get("format_version")
    if version != FORMAT_VERSION:
        raise UserError(
            f"{source}: plan format_version {version!r} is not supported (this reconciler reads "
            f"version {FORMAT_VERSION}); make the plan again with this version"
        )
    try:
        cost = _obj(data.get("cost") or {})
        plan = Plan(
            deployment=_s(data["deployment"]),
            created_at=parse_timestamp(_s(data["created_at"])),
            source_path=_s(data.get("source_path", "")),
            commit=_opt_s(data.get("commit")),
            targets=_texts(data.get("targets", [])),
            tree=_opt_s(data.get("tree")),
            tree_path=_s(data.get("tree_path", "")),
            author=_s(data.get("author", "")),
            committer=_s(data.get("committer", "")),
            noop_count=_int(_obj(data.get("summary") or {}).get(Action.NOOP.value, 0)),
            cost=cost_from_dict(cost),
            changes=tuple(
                Change(
                    id=_s(c["id"]),
                    action=Action(c["action"]),
                    key=_s(c["key"]),
                    provider=_s(c["provider"]),
                    cause=ChangeCause(c["cause"]),
                    reason=_s(c["reason"]),
                    before=observed_from_dict(c["before"]) if c.get("before") else None,
                    after=desired_from_dict(c["after"]) if c.get("after") else None,
                    token=_opt_s(c.get("token")),
                    generation=_int(c.get("generation", 0)),
                    depends_on=_texts(c.get("depends_on", [])),
                    fields=tuple(
                        FieldChange(_s(f["name"]), _s(f["before"]), _s(f["after"]))
                        for f in map(_obj, _seq(c.get("fields", [])))
                    ),
                )
                for c in map(_obj, _seq(data["changes"]))
            ),
            backups=tuple(action_from_dict(_obj(b)) for b in _seq(data.get("backups", []))),
            skip_final_backup=bool(data.get("skip_final_backup", False)),
            providers=tuple(ProviderConfig.from_dict(_obj(p)) for p in _seq(data["providers"])),
            price_lists=tuple(price_list_from_dict(p) for p in _seq(data.get("price_lists", []))),
            basis=tuple(observed_from_dict(s) for s in _seq(_obj(data["basis"])["servers"])),
            diagnostics=_texts(data.get("diagnostics", [])),
            violations=tuple(violation_from_dict(_obj(v)) for v in _seq(data.get("violations", []))),
            windows=tuple(window_from_dict(_obj(w)) for w in _seq(data.get("windows", []))),
        )
        digest = _obj(data["basis"]).get("digest")
    # A wrong type or a bad number anywhere (decimal.InvalidOperation is an ArithmeticError):
    # one error naming the file, whatever the edit was.
    except (KeyError, TypeError, ValueError, ArithmeticError, AttributeError, RecursionError) as exc:
        raise UserError(f"{source}: not a valid plan file ({type(exc).__name__}: {exc})") from None
    except UserError as exc:  # a bad timestamp or secret reference: said of this file
        said = "; ".join(d.message for d in exc.diagnostics)
        raise UserError(f"{source}: not a valid plan file ({said})") from None
    if plan.basis_digest() != digest:
        raise UserError(f"{source}: the plan's observed basis does not match its digest; was it edited?")
    return plan


def dump_plan(plan: Plan) -> str:
    """The plan as JSON, unsigned: for a plan that stays in this process."""
    return json.dumps(plan_to_dict(plan), indent=2, sort_keys=False) + "\n"


def dump_signed_plan(plan: Plan, key: bytes) -> str:
    """The plan file: the plan as JSON, signed over its whole content (``core.plan_signature``)."""
    return json.dumps(sign(plan_to_dict(plan), key), indent=2, sort_keys=False) + "\n"


def _parse(text: str, source: str) -> dict[str, Any]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UserError(f"{source}:{exc.lineno}: not valid JSON ({exc.msg})") from None
    except RecursionError:
        raise UserError(f"{source}: the JSON is nested too deeply to be a plan") from None
    if not isinstance(data, dict):
        raise UserError(f"{source}: a plan file holds one JSON object")
    return data


def load_plan(text: str, *, source: str = "plan") -> Plan:
    """A plan from its JSON, trusted as it is (``load_signed_plan`` reads plan files)."""
    return plan_from_dict(_parse(text, source), source=source)


def load_signed_plan(text: str, key: bytes, *, source: str) -> Plan:
    """A plan file, refused (``PlanSignatureError``) unless signed by ``key`` over all it says."""
    data = _parse(text, source)
    verify(data, key, source=source)
    return plan_from_dict(data, source=source)


# --- JSON (the plan file) -----------------------------------------------------------------
def action_to_dict(action: BackupAction) -> dict[str, Any]:
    return {
        "kind": action.kind.value,
        "key": action.key,
        "provider": action.provider,
        "policy": action.policy,
        "reason": action.reason,
        "resource_id": action.resource_id,
        "name": action.name,
        "snapshot_id": action.snapshot_id,
        "taken_at": isoformat(action.taken_at) if action.taken_at else None,
        "size_gb": action.size_gb,
        "estimated": action.estimated,
        "quiesce": action.quiesce.value,
        "method": action.method.value,
        "change_id": action.change_id,
        "monthly_cost": None if action.monthly_cost is None else str(action.monthly_cost),
        "currency": action.currency,
    }


def action_from_dict(data: Mapping[str, Any]) -> BackupAction:
    cost = data.get("monthly_cost")
    return BackupAction(
        kind=BackupKind(data["kind"]),
        key=str(data["key"]),
        provider=str(data["provider"]),
        policy=str(data["policy"]),
        reason=str(data.get("reason", "")),
        resource_id=str(data.get("resource_id", "")),
        name=str(data.get("name", "")),
        snapshot_id=str(data.get("snapshot_id", "")),
        taken_at=parse_timestamp(data["taken_at"]) if data.get("taken_at") else None,
        size_gb=float(data.get("size_gb", 0.0)),
        estimated=bool(data.get("estimated", False)),
        quiesce=Quiesce(data.get("quiesce", "none")),
        method=BackupMethod(data.get("method", "snapshot")),
        change_id=str(data.get("change_id", "")),
        monthly_cost=None if cost is None else _amount(cost),
        currency=str(data.get("currency", "")),
    )
