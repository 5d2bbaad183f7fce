"""core.plan_codec: the Plan's JSON form (plan files, ``plan --format json``), written and read back."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from typing import Any

from reconciler.core import plan_fields as field
from reconciler.core.backups import BackupAction, BackupKind
from reconciler.core.changes import Change, ChangeCause, FieldChange
from reconciler.core.clock import isoformat, parse_timestamp
from reconciler.core.cost_codec import cost_from_dict, cost_to_dict, price_list_from_dict, price_list_to_dict
from reconciler.core.errors import UserError
from reconciler.core.model import (
    Action,
    BackupMethod,
    DesiredServer,
    DriftMode,
    FailoverMode,
    ObservedServer,
    ProviderConfig,
    Quiesce,
    ResolvedInput,
    Script,
    ScriptPhase,
    SecretRef,
    ServerStatus,
    UpdateStrategy,
)
from reconciler.core.plan import (
    FORMAT_VERSION,
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
        "size": field.size_to_dict(server.size),
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
    data = field.obj(data)
    return ObservedServer(
        provider=field.text(data["provider"]),
        resource_id=field.text(data["resource_id"]),
        key=field.text(data["key"]),
        name=field.text(data["name"]),
        owner=field.text(data["owner"]),
        status=ServerStatus(data["status"]),
        size=field.size_from(data["size"]),
        image=field.text(data["image"]),
        spec_hash=field.text(data["spec_hash"]),
        generation=field.whole(data.get("generation", 0)),
        token=field.text(data.get("token", "")),
        flavor=field.opt_text(data.get("flavor")),
        addresses=field.texts(data.get("addresses", [])),
        created_at=parse_timestamp(field.text(data["created_at"])) if data.get("created_at") else None,
        tags=field.tags(data.get("tags", [])),
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
        "size": field.size_to_dict(server.size),
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
    data = field.obj(data)
    return DesiredServer(
        key=field.text(data["key"]),
        name=field.text(data["name"]),
        cluster=field.text(data["cluster"]),
        member=field.text(data["member"]),
        ordinal=field.whole(data["ordinal"]),
        provider=field.text(data["provider"]),
        provider_type=field.text(data["provider_type"]),
        template=field.text(data["template"]),
        image=field.text(data["image"]),
        size=field.desired_size_from(data["size"]),
        flavor=field.opt_text(data.get("flavor")),
        inputs=tuple(
            ResolvedInput(
                name=field.text(i["name"]),
                value=_value_from(i["value"]),
                source=field.text(i["source"]),
                sensitive=bool(i.get("sensitive", False)),
            )
            for i in map(field.obj, field.seq(data.get("inputs", [])))
        ),
        scripts=tuple(
            Script(phase=ScriptPhase(s["phase"]), name=field.text(s["name"]), source=field.text(s["source"]))
            for s in map(field.obj, field.seq(data.get("scripts", [])))
        ),
        tags=field.tags(data.get("tags", [])),
        protect=bool(data.get("protect", False)),
        depends_on=field.texts(data.get("depends_on", [])),
        update_strategy=UpdateStrategy(data.get("update_strategy", "in-place")),
        allow_restart=bool(data.get("allow_restart", True)),
        drift=DriftMode(data.get("drift", "heal")),
        failover=FailoverMode(data.get("failover", "replace")),
        backup_policy=field.opt_text(data.get("backup_policy")),
        spec_hash=field.text(data["spec_hash"]),
        adopt_id=field.text(data.get("adopt_id", "")),
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
        cost = field.obj(data.get("cost") or {})
        plan = Plan(
            deployment=field.text(data["deployment"]),
            created_at=parse_timestamp(field.text(data["created_at"])),
            source_path=field.text(data.get("source_path", "")),
            commit=field.opt_text(data.get("commit")),
            targets=field.texts(data.get("targets", [])),
            tree=field.opt_text(data.get("tree")),
            tree_path=field.text(data.get("tree_path", "")),
            author=field.text(data.get("author", "")),
            committer=field.text(data.get("committer", "")),
            noop_count=field.whole(field.obj(data.get("summary") or {}).get(Action.NOOP.value, 0)),
            cost=cost_from_dict(cost),
            changes=tuple(
                Change(
                    id=field.text(c["id"]),
                    action=Action(c["action"]),
                    key=field.text(c["key"]),
                    provider=field.text(c["provider"]),
                    cause=ChangeCause(c["cause"]),
                    reason=field.text(c["reason"]),
                    before=observed_from_dict(c["before"]) if c.get("before") else None,
                    after=desired_from_dict(c["after"]) if c.get("after") else None,
                    token=field.opt_text(c.get("token")),
                    generation=field.whole(c.get("generation", 0)),
                    depends_on=field.texts(c.get("depends_on", [])),
                    fields=tuple(
                        FieldChange(field.text(f["name"]), field.text(f["before"]), field.text(f["after"]))
                        for f in map(field.obj, field.seq(c.get("fields", [])))
                    ),
                )
                for c in map(field.obj, field.seq(data["changes"]))
            ),
            backups=tuple(action_from_dict(field.obj(b)) for b in field.seq(data.get("backups", []))),
            skip_final_backup=bool(data.get("skip_final_backup", False)),
            providers=tuple(ProviderConfig.from_dict(field.obj(p)) for p in field.seq(data["providers"])),
            price_lists=tuple(price_list_from_dict(p) for p in field.seq(data.get("price_lists", []))),
            basis=tuple(observed_from_dict(s) for s in field.seq(field.obj(data["basis"])["servers"])),
            diagnostics=field.texts(data.get("diagnostics", [])),
            violations=tuple(violation_from_dict(field.obj(v))
                             for v in field.seq(data.get("violations", []))),
            windows=tuple(window_from_dict(field.obj(w)) for w in field.seq(data.get("windows", []))),
        )
        digest = field.obj(data["basis"]).get("digest")
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
        monthly_cost=None if cost is None else field.amount(cost),
        currency=str(data.get("currency", "")),
    )
