"""The JSON Schemas: valid Draft 2020-12, documented, closed, and in line with the examples."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from reconciler.config import KINDS, kind_schema
from reconciler.config.schema import KIND_SCHEMAS
from reconciler.config.yamlsafe import read_file

REPO = Path(__file__).resolve().parents[2]
SCHEMA_DIR = REPO / "reconciler" / "schemas"
EXAMPLES = REPO / "examples" / "clusters"


def _walk(node: Any, path: str = "#") -> list[tuple[str, dict[str, Any]]]:
    found: list[tuple[str, dict[str, Any]]] = []
    if isinstance(node, dict):
        found.append((path, node))
        for key, value in node.items():
            found += _walk(value, f"{path}/{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += _walk(value, f"{path}/{index}")
    return found


@pytest.mark.parametrize("kind", KINDS)
def test_schema_is_valid_and_identified(kind: str) -> None:
    schema = json.loads((SCHEMA_DIR / KIND_SCHEMAS[kind]).read_text())
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"].startswith("urn:gitops-reconciler:schema:")
    assert schema["title"] == kind and schema["properties"]["kind"] == {
        "const": kind,
        "description": "The kind of document.",
    }


@pytest.mark.parametrize("kind", KINDS)
def test_every_field_is_described_and_objects_are_closed(kind: str) -> None:
    schema = kind_schema(kind)
    defs = schema.get("$defs", {})
    for path, node in _walk(schema):
        for name, sub in node.get("properties", {}).items():
            target = defs.get(sub.get("$ref", "").rsplit("/", 1)[-1], {})
            assert "description" in sub or "description" in target, f"{kind} {path}/properties/{name}"
        provider_settings = kind == "Provider" and path == "#/properties/spec"  # open: checked per type
        if "properties" in node and not provider_settings:
            assert node.get("additionalProperties") is False, f"{kind} {path} accepts unknown fields"


def test_provider_types_follow_the_registry() -> None:
    schema = kind_schema("Provider", provider_types=["b", "a"])
    assert schema["properties"]["spec"]["properties"]["type"]["enum"] == ["a", "b"]
    assert kind_schema("Provider")["properties"]["spec"]["properties"]["type"]["enum"] == [
        "simcloud",
        "aws",
        "openstack",
        "libvirt",
        "xcp",
    ]


def test_top_level_schemas_folder_is_the_packaged_one() -> None:
    assert (REPO / "schemas").resolve() == SCHEMA_DIR.resolve()
    kinds_and_plan = [*KIND_SCHEMAS.values(), "plan.json"]  # plan.json: the plan file (tests/engine)
    assert sorted(p.name for p in (REPO / "schemas").glob("*.json")) == sorted(kinds_and_plan)


@pytest.mark.parametrize("example", sorted(EXAMPLES.glob("*.yaml")), ids=lambda p: p.name)
def test_example_files_name_their_schema_for_editors(example: Path) -> None:
    first = example.read_text().splitlines()[0]
    match = re.fullmatch(r"# yaml-language-server: \$schema=(\S+)", first)
    assert match, f"{example.name} should start with a yaml-language-server line"
    schema_path = (example.parent / match[1]).resolve()
    schema = json.loads(schema_path.read_text())
    result = read_file(example, example.name, example.name)
    assert result.documents and not result.diagnostics
    validator = Draft202012Validator(schema)
    for doc in result.documents:
        assert list(validator.iter_errors(doc.data)) == []
