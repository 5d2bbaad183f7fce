"""Loading and resolving: input precedence, expansion into servers, dependencies, hashes, names."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import pytest

from reconciler.config import deployment_name, explain_inputs, load_desired_state
from reconciler.core import provider as base
from reconciler.core.errors import UserError
from reconciler.core.model import (
    DriftMode,
    FailoverMode,
    SecretRef,
    Size,
    UpdateStrategy,
    compute_spec_hash,
)
from tests.config.conftest import WriteFiles

PROVIDER = """\
apiVersion: reconciler/v1
kind: Provider
metadata: {name: sim}
spec: {type: simcloud, price_list: standard, max_parallel: 4}
---
apiVersion: reconciler/v1
kind: PriceList
metadata: {name: standard}
spec:
  currency: EUR
  flavors: {sim.small: "0.0104", sim.large: 0.1}
  units: {vcpu_hour: 0.015, disk_gb_month: "0.10"}
"""

TEMPLATE = """\
apiVersion: reconciler/v1
kind: ServerTemplate
metadata: {name: app}
spec:
  image: {simcloud: img-app, aws: ami-1}
  flavor: {simcloud: sim.small}
  size: {cpus: 2, memory_mb: 2048, disk_gb: 20}
  inputs:
    level: {type: string, default: from-default}
    port: {type: integer, default: 80}
    ratio: {type: number}
    debug: {type: boolean, default: false}
    password: {type: string, sensitive: true}
    token: {type: string}
  scripts:
    boot: |
      echo {{ level }} {{ port }}
  tags: {team: shop, role: app}
"""

INPUTS = """\
apiVersion: reconciler/v1
kind: Inputs
metadata: {name: everywhere}
spec:
  scope: global
  values:
    level: from-global
    port: 81
---
apiVersion: reconciler/v1
kind: Inputs
metadata: {name: shop-values}
spec:
  scope: shop
  values:
    level: from-cluster
    password: hunter2
"""

SHOP = """\
apiVersion: reconciler/v1
kind: Cluster
metadata: {name: shop}
spec:
  provider: sim
  members:
    db:
      template: app
      count: 1
    app:
      template: app
      count: 3
      depends_on: [db]
      protect: true
      backup_policy: nightly
      update: {strategy: replace, allow_restart: false}
      drift: warn
      failover: {mode: restart, grace_seconds: 60}
      inputs:
        level: from-member
        token: {secret: env:SHOP_TOKEN}
    idle:
      template: app
      count: 0
"""

POLICY = """\
apiVersion: reconciler/v1
kind: BackupPolicy
metadata: {name: nightly}
spec:
  schedule: "0 2 * * *"
  method: image
  quiesce: shutdown
  retention: {keep_last: 3, keep_weekly: 4}
  max_age_hours: 26
"""


def _state_files() -> dict[str, str]:
    return {
        "providers.yaml": PROVIDER,
        "templates.yaml": TEMPLATE,
        "inputs.yaml": INPUTS,
        "shop.yaml": SHOP,
        "policies.yaml": POLICY,
    }


def test_input_precedence_and_where_each_value_came_from(write_files: WriteFiles) -> None:
    root = write_files(_state_files())
    inputs = {i.name: i for i in explain_inputs(root, "shop/app")}
    assert (inputs["level"].value, inputs["level"].source) == (
        "from-member",
        f"member shop/app ({root}/shop.yaml:20)",
    )
    assert (inputs["port"].value, inputs["port"].source) == (81, f"Inputs global ({root}/inputs.yaml:8)")
    assert (inputs["debug"].value, inputs["debug"].source) == (
        False,
        f"template app default ({root}/templates.yaml:12)",
    )
    assert (inputs["ratio"].value, inputs["ratio"].source) == (None, "not set")
    db = {i.name: i for i in explain_inputs(root, "shop/db/0")}
    assert (db["level"].value, db["level"].source) == ("from-cluster", f"Inputs shop ({root}/inputs.yaml:16)")


def test_sensitive_and_secret_inputs_display_as_sensitive(write_files: WriteFiles) -> None:
    root = write_files(_state_files())
    inputs = {i.name: i for i in explain_inputs(root, "shop/app")}
    assert inputs["password"].sensitive and inputs["password"].display() == "(sensitive)"
    assert inputs["token"].value == SecretRef("env", "SHOP_TOKEN")
    assert inputs["token"].sensitive and inputs["token"].display() == "(sensitive)"
    assert not inputs["level"].sensitive and inputs["level"].display() == '"from-member"'


def test_members_expand_into_keyed_servers(write_files: WriteFiles) -> None:
    root = write_files(_state_files())
    state = load_desired_state(root)
    assert [s.key for s in state.servers] == ["shop/app/0", "shop/app/1", "shop/app/2", "shop/db/0"]
    app = state.servers[1]
    assert (app.name, app.cluster, app.member, app.ordinal) == ("shop-app-1", "shop", "app", 1)
    assert (app.provider, app.provider_type, app.template) == ("sim", "simcloud", "app")
    assert (app.image, app.flavor, app.size) == ("img-app", "sim.small", Size(2, 2048, 20))
    assert app.tags == (("role", "app"), ("team", "shop"))
    assert app.protect and app.backup_policy == "nightly"
    assert (app.update_strategy, app.allow_restart) == (UpdateStrategy.REPLACE, False)
    assert (app.drift, app.failover) == (DriftMode.WARN, FailoverMode.RESTART)
    assert app.depends_on == ("shop/db/0",)
    db = state.servers[3]
    assert (db.protect, db.backup_policy, db.update_strategy, db.drift) == (
        False,
        None,
        UpdateStrategy.IN_PLACE,
        DriftMode.HEAL,
    )
    assert app.location is not None and app.location.line == 10


def test_state_carries_providers_policies_and_exact_prices(write_files: WriteFiles) -> None:
    root = write_files(_state_files())
    state = load_desired_state(root)
    [provider] = state.providers
    assert (provider.name, provider.type, provider.max_parallel, provider.price_list) == (
        "sim",
        "simcloud",
        4,
        "standard",
    )
    assert provider.spec == {}
    prices = state.price_list_for("sim")
    assert prices is not None and prices.currency == "EUR"
    assert prices.flavor_hourly == {"sim.small": Decimal("0.0104"), "sim.large": Decimal("0.1")}
    assert (prices.vcpu_hour, prices.disk_gb_month, prices.ram_gb_hour) == (
        Decimal("0.015"),
        Decimal("0.10"),
        Decimal(0),
    )
    policy = state.backup_policies["nightly"]
    assert (policy.schedule, policy.method, policy.quiesce, policy.max_age_hours) == (
        "0 2 * * *",
        "image",
        "shutdown",
        26.0,
    )
    assert (policy.retention.keep_last, policy.retention.keep_weekly, policy.retention.keep_daily) == (
        3,
        4,
        0,
    )


def test_dependencies_on_members_clusters_and_cluster_members(write_files: WriteFiles) -> None:
    files = _state_files()
    files["billing.yaml"] = """\
apiVersion: reconciler/v1
kind: Cluster
metadata: {name: billing}
spec:
  provider: sim
  depends_on: [shop]
  members:
    api: {template: app, count: 2, depends_on: [shop/db]}
    worker: {template: app, count: 1, depends_on: [api]}
"""
    state = load_desired_state(write_files(files))
    by_key = {s.key: s for s in state.servers}
    every_shop = ("shop/app/0", "shop/app/1", "shop/app/2", "shop/db/0")
    assert by_key["billing/api/0"].depends_on == every_shop
    assert by_key["billing/worker/0"].depends_on == ("billing/api/0", "billing/api/1", *every_shop)


def test_spec_hash_is_stable_and_covers_only_replace_only_fields(write_files: WriteFiles) -> None:
    first = load_desired_state(write_files(_state_files()))
    again = load_desired_state(write_files(_state_files()))
    assert [s.spec_hash for s in first.servers] == [s.spec_hash for s in again.servers]
    assert all(len(s.spec_hash) == 16 for s in first.servers)
    for server in first.servers:
        assert server.spec_hash == compute_spec_hash(server)
    bigger = _state_files()
    bigger["templates.yaml"] = TEMPLATE.replace("cpus: 2", "cpus: 4")
    assert [s.spec_hash for s in load_desired_state(write_files(bigger)).servers] == [
        s.spec_hash for s in first.servers
    ]
    new_image = _state_files()
    new_image["templates.yaml"] = TEMPLATE.replace("img-app", "img-app-2")
    assert load_desired_state(write_files(new_image)).servers[0].spec_hash != first.servers[0].spec_hash
    new_input = _state_files()
    new_input["shop.yaml"] = SHOP.replace("level: from-member", "level: other")
    changed = load_desired_state(write_files(new_input))
    assert changed.servers[0].spec_hash != first.servers[0].spec_hash
    assert changed.servers[3].spec_hash == first.servers[3].spec_hash  # db does not take the member input


def test_file_secrets_resolve_next_to_their_yaml_and_hash_independent_of_location(
    write_files: WriteFiles, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = _state_files()
    files["shop.yaml"] = SHOP.replace("{secret: env:SHOP_TOKEN}", '{secret: "file:../secrets/token.txt"}')
    files.pop("shop.yaml")
    files["clusters/shop.yaml"] = SHOP.replace(
        "{secret: env:SHOP_TOKEN}", '{secret: "file:../secrets/token.txt"}'
    )
    files["secrets/token.txt"] = "s3cret\n"
    root = write_files(files)
    state = load_desired_state(root)
    token = next(i for i in state.servers[0].inputs if i.name == "token")
    assert token.value == SecretRef("file", f"{root}/secrets/token.txt")
    assert token.source == f"member shop/app ({root}/clusters/shop.yaml:21)"
    moved = write_files(files)
    monkeypatch.chdir(moved.parent)
    relative = load_desired_state(Path(moved.name))
    assert next(i for i in relative.servers[0].inputs if i.name == "token").value == SecretRef(
        "file", f"{moved.name}/secrets/token.txt"
    )
    assert [s.spec_hash for s in relative.servers] == [s.spec_hash for s in state.servers]


def test_autoscale_runs_its_minimum_and_member_provider_overrides(
    write_files: WriteFiles, testcloud: str
) -> None:
    files = _state_files()
    files["providers.yaml"] = (
        PROVIDER + "---\napiVersion: reconciler/v1\nkind: Provider\nmetadata: {name: cloud}\n"
        "spec: {type: testcloud, region: south}\n"
    )
    files["templates.yaml"] = TEMPLATE.replace("aws: ami-1", "testcloud: img-t")
    files["shop.yaml"] = SHOP.replace(
        "      count: 3\n",
        "      autoscale: {min: 2, max: 5, metric: cpu, target: 60}\n      provider: cloud\n",
    )
    state = load_desired_state(write_files(files))
    apps = [s for s in state.servers if s.member == "app"]
    assert [s.key for s in apps] == ["shop/app/0", "shop/app/1"]
    assert {(s.provider, s.provider_type, s.image, s.flavor) for s in apps} == {
        ("cloud", "testcloud", "img-t", None)
    }
    assert [p.name for p in state.providers] == ["cloud", "sim"]


def test_provider_settings_are_checked_against_the_type_schema(
    write_files: WriteFiles, testcloud: str
) -> None:
    provider = "apiVersion: reconciler/v1\nkind: Provider\nmetadata: {name: t}\nspec:\n  type: testcloud\n"
    state = load_desired_state(write_files({"p.yaml": provider + "  region: north\n"}))
    assert state.providers[0].spec == {"region": "north"}
    root = write_files({"p.yaml": provider + "  region: east\n  zone: a\n"})
    with pytest.raises(UserError) as caught:
        load_desired_state(root)
    assert [str(d) for d in caught.value.diagnostics] == [
        f"{root}/p.yaml:6: spec.region must be one of north, south; got the string 'east'",
        f"{root}/p.yaml:7: unknown field 'zone' in spec; allowed fields: max_parallel, price_list, region, "
        f"type",
    ]
    root = write_files({"p.yaml": provider})
    with pytest.raises(UserError) as caught:
        load_desired_state(root)
    assert [str(d) for d in caught.value.diagnostics] == [
        f"{root}/p.yaml:4: spec is missing the required field 'region'; add it"
    ]


def test_a_provider_module_that_cannot_load_is_reported_at_its_type(
    write_files: WriteFiles, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(base.BUILTIN_MODULES, "ghost", "providers.ghost_module_for_tests")
    root = write_files(
        {"p.yaml": "apiVersion: reconciler/v1\nkind: Provider\nmetadata: {name: g}\nspec:\n  type: ghost\n"}
    )
    with pytest.raises(UserError) as caught:
        load_desired_state(root)
    assert [str(d) for d in caught.value.diagnostics] == [
        f"{root}/p.yaml:5: provider type 'ghost' is not available in this build"
    ]


def test_deployment_name_defaults_to_the_sanitised_folder_name(
    write_files: WriteFiles, tmp_path: Path
) -> None:
    root = write_files(_state_files())
    assert load_desired_state(root).deployment == root.name
    assert load_desired_state(root, deployment="prod-eu").deployment == "prod-eu"
    with pytest.raises(UserError):
        load_desired_state(root, deployment="Prod EU")
    odd = tmp_path / "My Infra_2.0"
    odd.mkdir()
    assert deployment_name(odd) == "my-infra-2-0"
    (odd / "a.yaml").write_text("")
    assert deployment_name(odd / "a.yaml") == "my-infra-2-0"
    assert deployment_name(tmp_path / "___") == "default"
    assert deployment_name(tmp_path / "2026 Infra") == "2026-infra"


def test_single_file_and_folder_walking(write_files: WriteFiles) -> None:
    files = {
        "nested/deeper/providers.yml": PROVIDER,
        "templates.yaml": TEMPLATE,
        "notes.txt": "not yaml: [",
        ".hidden/broken.yaml": "a: [",
        ".broken.yaml": "a: [",
    }
    root = write_files(files)
    state = load_desired_state(root)
    assert [p.name for p in state.providers] == ["sim"] and state.servers == ()
    single = load_desired_state(root / "templates.yaml")
    assert single.providers == () and single.source_path == f"{root}/templates.yaml"
    bad = write_files({"only.yaml": "kind: Nope\n"})
    with pytest.raises(UserError) as caught:
        load_desired_state(bad / "only.yaml")
    assert str(caught.value.diagnostics[0]).startswith(f"{bad}/only.yaml:1: unknown kind 'Nope'")


def test_missing_folder_and_folder_without_yaml(tmp_path: Path) -> None:
    with pytest.raises(UserError) as caught:
        load_desired_state(tmp_path / "nowhere")
    assert (
        str(caught.value) == f"{tmp_path}/nowhere: does not exist; give the folder (or file) that holds the "
        "desired-state YAML"
    )
    with pytest.raises(UserError) as caught:
        load_desired_state(tmp_path)
    assert "holds no .yaml or .yml files" in str(caught.value)


def test_explain_inputs_names_what_exists_when_the_target_does_not(write_files: WriteFiles) -> None:
    root = write_files(_state_files())
    with pytest.raises(UserError) as caught:
        explain_inputs(root, "shop/web")
    assert str(caught.value) == f"{root}: no member 'shop/web'; cluster 'shop' has members: app, db, idle"
    with pytest.raises(UserError) as caught:
        explain_inputs(root, "store/web")
    assert str(caught.value) == f"{root}: no member 'store/web'; clusters are: shop"
    with pytest.raises(UserError) as caught:
        explain_inputs(root, "shop")
    assert "write it as cluster/member" in str(caught.value)
    # a member with no servers still has inputs to explain
    assert {i.name for i in explain_inputs(root, "shop/idle")} == {
        "debug",
        "level",
        "password",
        "port",
        "ratio",
        "token",
    }


def test_an_inputs_value_only_some_templates_declare_is_fine(write_files: WriteFiles) -> None:
    files = _state_files()
    files["templates.yaml"] = (
        TEMPLATE
        + "---\n"
        + TEMPLATE.replace("name: app", "name: lean")
        .replace("    port: {type: integer, default: 80}\n", "")
        .replace(" {{ port }}", "")
    )
    files["shop.yaml"] = SHOP.replace("    db:\n      template: app", "    db:\n      template: lean")
    state = load_desired_state(write_files(files))
    db = next(s for s in state.servers if s.member == "db")
    assert "port" not in {i.name for i in db.inputs}


def test_reference_errors_are_not_repeated_for_documents_that_failed_validation(
    write_files: WriteFiles,
) -> None:
    files = _state_files()
    files["templates.yaml"] = TEMPLATE.replace("cpus: 2", "cpus: 0")
    root = write_files(files)
    with pytest.raises(UserError) as caught:
        load_desired_state(root)
    assert [str(d) for d in caught.value.diagnostics] == [
        f"{root}/templates.yaml:7: spec.size.cpus must be at least 1, got the integer 0"
    ]


def test_servers_are_values(write_files: WriteFiles) -> None:
    state = load_desired_state(write_files(_state_files()))
    server = state.servers[0]
    assert replace(server, location=None) == server  # location is for messages only
    assert hash(server) == hash(replace(server))


def test_a_members_servers_are_what_dataclasses_replace_would_make() -> None:
    """``resolve._sibling`` copies the first server's fields: it needs DesiredServer to stay a plain
    frozen dataclass (no ``__post_init__``, no slots) and must equal ``dataclasses.replace``."""
    import dataclasses

    from reconciler.config.resolve import _sibling
    from reconciler.core.model import DesiredServer, server_name

    assert "__post_init__" not in vars(DesiredServer) and not hasattr(DesiredServer, "__slots__")
    first = DesiredServer(
        key="shop/web/0", name=server_name("shop/web/0", 0), cluster="shop", member="web", ordinal=0,
        provider="sim", provider_type="simcloud", template="web", image="debian-12",
        size=Size(2, 2048, 20), flavor=None, tags=(("team", "a"),), depends_on=("shop/db/0",),
    )
    made = _sibling(first, "shop/web/7", 7)
    assert made == dataclasses.replace(first, key="shop/web/7", name=server_name("shop/web/7", 0), ordinal=7)
    assert made.__dict__ == dataclasses.replace(
        first, key="shop/web/7", name=server_name("shop/web/7", 0), ordinal=7
    ).__dict__
    assert first.key == "shop/web/0" and made != first
