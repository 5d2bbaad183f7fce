"""schemas/plan.json is the shape of real plan files, and the Rego example's input is one.

A real plan with something in every part — creates, updates, deletes, a replace, the observed
basis, backups, a budget, policy violations of both enforcements and a change window — is
validated against the published schema, and so is ``examples/policies/rego/input.json``.
Without an OPA binary, the example's expected decision is checked to follow from its input by
the same rules written in Python (they mirror ``plan.rego`` one for one).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from reconciler.core.clock import Clock, parse_timestamp
from reconciler.core.plan_codec import dump_signed_plan
from reconciler.run.apply import apply_plan
from reconciler.run.audit import new_run
from reconciler.run.planning import plan_path
from reconciler.run.workspace import Workspace

REPO = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((REPO / "schemas" / "plan.json").read_text(encoding="utf-8"))
EXAMPLE = REPO / "examples" / "policies" / "rego"
WARN_POLICY = """\
apiVersion: reconciler/v1
kind: Policy
metadata: {name: tags}
spec:
  scope: global
  enforcement: warn
  required_tags: [cost-center]
  rules:
    - {name: no-deletes, expr: "change.action != 'delete'", message: deletes need a second review}
  windows:
    - {deny: "0 18 * * 5", duration_hours: 62, message: no changes over the weekend, allow_heal: false}
---
apiVersion: reconciler/v1
kind: Policy
metadata: {name: sizes}
spec:
  scope: shop
  rules:
    - {name: small, expr: "server.size.cpus <= 1", message: at most 1 vCPU}
---
apiVersion: reconciler/v1
kind: Budget
metadata: {name: shop-cap}
spec: {scope: shop, monthly: "10.00"}
"""


def errors(document: Any) -> list[str]:
    validator = Draft202012Validator(SCHEMA)
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(document)]


def test_the_schema_is_valid_and_bounded() -> None:
    Draft202012Validator.check_schema(SCHEMA)
    assert SCHEMA["properties"]["format_version"] == {"const": 2, "description": SCHEMA["properties"][
        "format_version"]["description"]}  # fmt: skip


@pytest.fixture
def ws(tmp_path: Path) -> Iterator[Workspace]:
    clock = Clock(fixed=parse_timestamp("2026-11-02T10:00:00Z"))
    workspace = Workspace(state_dir=tmp_path / "state", clock=clock)
    yield workspace
    workspace.close()


def test_a_real_plan_file_is_valid(tmp_path: Path, ws: Workspace) -> None:
    folder = tmp_path / "clusters"
    shutil.copytree(REPO / "examples" / "clusters", folder)
    applied = plan_path(folder, ws)
    assert errors(json.loads(dump_signed_plan(applied, b"k" * 32))) == []
    apply_plan(applied, ws, new_run("tester", None))
    shop = folder / "shop.yaml"
    shop.write_text(shop.read_text().replace("count: 3", "count: 1").replace("count: 2", "count: 3"))
    templates = folder / "templates.yaml"
    text = templates.read_text()
    templates.write_text(text.replace("debian-12-python-3.12", "debian-13-python-3.13", 1))
    (folder / "extra.yaml").write_text(WARN_POLICY)
    saturday = Workspace(state_dir=ws.state_dir, clock=Clock(fixed=parse_timestamp("2026-11-07T03:00:00Z")))
    try:
        plan = plan_path(folder, saturday)
    finally:
        saturday.close()
    actions = {c.action.value for c in plan.changes}
    assert actions >= {"create", "replace", "delete"}, actions
    assert plan.basis and plan.backups and plan.cost.budgets and plan.windows
    assert {v.enforcement.value for v in plan.violations} == {"deny", "warn"}
    document = json.loads(dump_signed_plan(plan, b"k" * 32))
    assert errors(document) == []
    document["violations"][0]["enforcement"] = "block"
    document["windows"][0]["duration_hours"] = 1000
    del document["changes"][0]["cause"]
    assert errors(document) == [
        "violations/0/enforcement: 'block' is not one of ['deny', 'warn']",
        "windows/0/duration_hours: 1000 is greater than the maximum of 744",
        "changes/0: 'cause' is a required property",
    ]


# --- the Rego example --------------------------------------------------------------------------
def test_the_rego_examples_input_is_a_valid_plan() -> None:
    document = json.loads((EXAMPLE / "input.json").read_text(encoding="utf-8"))
    assert errors(document) == []
    assert "signature" not in document  # an example, not a plan file to apply


def _decision(plan: dict[str, Any], max_deletes: int = 1) -> dict[str, list[str]]:
    """``plan.rego`` in Python, rule for rule (OPA returns each set sorted)."""
    removed = [c["key"] for c in plan["changes"] if c["action"] in ("delete", "replace")]
    deny: set[str] = set()
    warn: set[str] = set()
    if len(removed) > max_deletes:
        deny.add(
            f"the plan deletes or replaces {len(removed)} servers ({', '.join(removed)}); "
            f"at most {max_deletes} per plan"
        )
    for v in plan["violations"]:
        line = f"{v['file']}:{v['line']}: policy {v['policy']}, rule {v['rule']}: {v['message']}"
        (deny if v["enforcement"] == "deny" else warn).add(line)
    for c in plan["changes"]:
        if c["action"] in ("delete", "replace") and c["before"]["protected"]:
            deny.add(f"{c['key']} carries the protect mark")
    if float(plan["cost"]["delta_monthly"]) > 0:
        warn.add(f"the plan adds {plan['cost']['delta_monthly']} {plan['cost']['currency']} per 30-day month")
    return {"deny": sorted(deny), "warn": sorted(warn)}


def test_the_rego_examples_expected_decision_follows_from_its_input() -> None:
    document = json.loads((EXAMPLE / "input.json").read_text(encoding="utf-8"))
    expected = json.loads((EXAMPLE / "decision.json").read_text(encoding="utf-8"))
    assert _decision(document) == expected
    readme = (REPO / "examples" / "policies" / "README.md").read_text(encoding="utf-8")
    assert json.dumps(expected, indent=2) in readme
    rego = (EXAMPLE / "plan.rego").read_text(encoding="utf-8")
    for fragment in (
        "max_deletes := 1",
        'violation.enforcement == "deny"',
        "change.before.protected",
        'violation.enforcement == "warn"',
        "to_number(input.cost.delta_monthly) > 0",
    ):
        assert fragment in rego
