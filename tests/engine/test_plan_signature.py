"""Plan files are signed over their whole content: every edit, however small, is refused.

The corpus tampers with each part of a real plan file — a change's key, resource id,
action or dependencies, the observed basis, a provider's settings, costs, backups, the
deployment, the signature itself — and expects ``PlanSignatureError`` for each.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from reconciler.core.plan_codec import dump_plan, dump_signed_plan, load_signed_plan
from reconciler.core.plan_signature import PlanSignatureError, key_id
from tests.engine.test_render import representative_plan

KEY = b"s" * 32
OTHER = b"o" * 32
Edit = Callable[[dict[str, Any]], None]


def _first(data: dict[str, Any], action: str) -> dict[str, Any]:
    return next(c for c in data["changes"] if c["action"] == action)


def _set(path: str, value: object) -> Edit:
    def edit(data: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = data
        for part in parents:
            node = node[part]
        node[last] = value

    return edit


def _delete_names_another_server(data: dict[str, Any]) -> None:
    change = _first(data, "delete")
    change["key"] = "shop/db/0"
    change["before"]["resource_id"] = "sim-db-0"


def _replace_becomes_delete(data: dict[str, Any]) -> None:
    _first(data, "replace")["action"] = "delete"


def _drop_a_dependency(data: dict[str, Any]) -> None:
    for change in data["changes"]:
        change["depends_on"] = []


def _drop_the_signature(data: dict[str, Any]) -> None:
    del data["signature"]


def _flip_the_mac(data: dict[str, Any]) -> None:
    mac = data["signature"]["mac"]
    data["signature"]["mac"] = ("0" if mac[0] != "0" else "1") + mac[1:]


def _add_a_member(data: dict[str, Any]) -> None:
    data["extra"] = True


TAMPERING: dict[str, Edit] = {
    "delete names another server": _delete_names_another_server,
    "delete's resource id": lambda d: _first(d, "delete")["before"].update(resource_id="i-other"),
    "replace becomes delete": _replace_becomes_delete,
    "dependencies dropped": _drop_a_dependency,
    "change key": lambda d: _first(d, "update").update(key="shop/web/9"),
    "create's image": lambda d: _first(d, "create")["after"].update(image="evil-image"),
    "create's size": lambda d: _first(d, "create")["after"]["size"].update(cpus=64),
    "basis resource id": lambda d: d["basis"]["servers"][0].update(resource_id="i-forged"),
    "basis emptied": lambda d: d["basis"].update(servers=[]),
    "provider settings": lambda d: d["providers"][0].update(spec={"endpoint": "http://evil.example"}),
    "provider max_parallel": lambda d: d["providers"][0].update(max_parallel=1000),
    "deployment": _set("deployment", "someone-else"),
    "cost": _set("cost.after_hourly", "0"),
    "diagnostics": _set("diagnostics", []),
    "skip final backup": _set("skip_final_backup", True),
    "commit": _set("commit", "deadbeef"),
    "a member added": _add_a_member,
    "signature removed": _drop_the_signature,
    "mac flipped": _flip_the_mac,
    "algorithm": _set("signature.alg", "none"),
    "signature not an object": _set("signature", "trust me"),
}


def _signed() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(dump_signed_plan(representative_plan(), KEY))
    return data


def test_an_untouched_plan_file_loads_and_names_its_key() -> None:
    data = _signed()
    assert data["signature"]["alg"] == "HMAC-SHA256" and data["signature"]["key_id"] == key_id(KEY)
    assert KEY.decode() not in json.dumps(data)  # the key itself is never in the plan
    plan = load_signed_plan(json.dumps(data), KEY, source="plan.json")
    assert [c.id for c in plan.changes] == [c.id for c in representative_plan().changes]


def test_white_space_and_member_order_do_not_matter() -> None:
    data = _signed()
    reordered = json.dumps(dict(reversed(list(data.items()))), indent=7)
    load_signed_plan(reordered, KEY, source="plan.json")


@pytest.mark.parametrize("name", sorted(TAMPERING))
def test_every_edit_is_refused(name: str) -> None:
    data = _signed()
    TAMPERING[name](data)
    with pytest.raises(PlanSignatureError) as caught:
        load_signed_plan(json.dumps(data), KEY, source="plan.json")
    assert str(caught.value).startswith("plan.json: ")


def test_an_edit_is_refused_with_what_happened_and_what_to_do() -> None:
    data = _signed()
    _delete_names_another_server(data)
    with pytest.raises(PlanSignatureError, match="edited after it was made; nothing was applied"):
        load_signed_plan(json.dumps(data), KEY, source="plan.json")


def test_a_plan_signed_with_another_key_or_none_is_refused() -> None:
    with pytest.raises(PlanSignatureError, match="another plan key"):
        load_signed_plan(dump_signed_plan(representative_plan(), OTHER), KEY, source="plan.json")
    with pytest.raises(PlanSignatureError, match="not signed"):
        load_signed_plan(dump_plan(representative_plan()), KEY, source="plan.json")
