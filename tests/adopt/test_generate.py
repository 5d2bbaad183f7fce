"""``config.generate``: servers grouped into members by name, one template per shape, adopt
entries binding ordinals to ids, YAML that loads as written."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from reconciler.config import load_desired_state
from reconciler.config.generate import clean_name, generate_yaml, group, stem
from reconciler.core.model import ObservedServer, ProviderConfig, ServerStatus, Size

SIM = ProviderConfig(name="sim", type="simcloud")


def _server(name: str, rid: str, *, cpus: int = 1, image: str = "debian-12",
            tags: tuple[tuple[str, str], ...] = ()) -> ObservedServer:
    return ObservedServer(
        provider="sim", resource_id=rid, key="", name=name, owner="", status=ServerStatus.RUNNING,
        size=Size(cpus, 1024, 10), image=image, spec_hash="", tags=tags,
    )


def test_names_group_servers_into_members() -> None:
    assert [stem(_server(n, "x")) for n in ("web-a", "web-b", "db-1", "web01", "app", "Web_Front-7")] == [
        "web", "web", "db", "web", "app", "web-front",
    ]
    assert stem(_server("i-0abc", "i-0abc")) == "server"  # no name of its own
    assert clean_name("9lives") == "s-9lives" and clean_name("---") == "server"


def test_one_template_per_shape_and_members_per_name() -> None:
    servers = [
        _server("web-b", "sim-2"), _server("web-a", "sim-1"), _server("db-1", "sim-3", cpus=2),
        _server("web-c", "sim-4", cpus=4),  # a web server of another shape: a member of its own
    ]
    templates, members = group(servers, "fleet")
    assert sorted(templates.values()) == ["fleet-db", "fleet-web", "fleet-web-2"]
    assert [(m.name, m.template, [s.resource_id for s in m.servers]) for m in members] == [
        ("db", "fleet-db", ["sim-3"]),
        ("web", "fleet-web", ["sim-1", "sim-2"]),
        ("web-2", "fleet-web-2", ["sim-4"]),
    ]


def test_the_yaml_loads_as_written(tmp_path: Path) -> None:
    tagged = (("made-by", "hand"), ("team", "ops"))
    servers = [
        _server("web-a", "sim-00000001", tags=tagged), _server("web-b", "sim-00000002", tags=tagged),
        dataclasses.replace(_server("odd\nname", "sim-00000003"), size=Size(1, 1024, 0), image=""),
    ]
    text = generate_yaml(servers, provider=SIM, cluster="fleet", command="reconciler generate x").text
    (tmp_path / "providers.yaml").write_text(
        "apiVersion: reconciler/v1\nkind: Provider\nmetadata: {name: sim}\nspec: {type: simcloud}\n",
        encoding="utf-8",
    )
    (tmp_path / "fleet.yaml").write_text(text, encoding="utf-8")
    state = load_desired_state(tmp_path)
    by_key = {s.key: s for s in state.servers}
    assert [by_key[f"fleet/web/{n}"].adopt_id for n in (0, 1)] == ["sim-00000001", "sim-00000002"]
    assert by_key["fleet/web/0"].tags == tagged
    assert by_key["fleet/odd-name/0"].size.disk_gb == 1  # unknown disk: the least, with a TODO
    assert "TODO: the provider does not report the disk" in text
    assert "TODO: the provider does not report the image" in text
    assert "# odd?name" in text  # a comment never breaks the file
