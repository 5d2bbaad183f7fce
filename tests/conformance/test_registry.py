"""Conformance: every provider family is a package of its own whose ``provider`` module registers
its type and whose ``spec`` module declares the type's spec schema and capabilities without
loading its SDK; it imports nothing of the engine but ``reconciler.core`` and nothing of another
family, and comes with a conformance backend."""

from __future__ import annotations

import ast
import importlib
import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

import providers
from reconciler.core.errors import UserError
from reconciler.core.provider import (
    BUILTIN_MODULES,
    Capabilities,
    Provider,
    TypeFacts,
    provider_class,
    type_facts,
)
from tests.conformance.backend import Backend
from tests.conformance.conftest import backend_files

PROVIDERS_DIR = Path(providers.__file__).parent


def _package_dir(module: str) -> Path:
    """Where the package ``providers.<family>`` lives in this tree."""
    package, _, family = module.partition(".")
    assert package == "providers" and family and "." not in family, f"{module} is not a providers package"
    return PROVIDERS_DIR / family


def _written_provider_types() -> list[str]:
    """Built-in provider types whose package exists in this tree."""
    return sorted(
        t for t, module in BUILTIN_MODULES.items() if (_package_dir(module) / "__init__.py").exists()
    )


def test_the_registry_names_the_family_packages() -> None:
    families = sorted(path.parent.name for path in PROVIDERS_DIR.glob("*/__init__.py"))
    assert families == sorted(_package_dir(module).name for module in BUILTIN_MODULES.values())
    assert _written_provider_types() == sorted(BUILTIN_MODULES)
    for module in BUILTIN_MODULES.values():
        for part in ("provider.py", "spec.py"):
            assert (_package_dir(module) / part).exists(), f"{module} has no {part}"


# What a family's ``spec`` module (and its package) may not load: any SDK, the provider module.
_SDKS = ("boto3", "botocore", "openstack", "keystoneauth1", "libvirt", "XenAPI")
_SPEC_PROBE = """
import json, sys
from reconciler.core.provider import type_facts
type_facts(sys.argv[1])
print(json.dumps(sorted(sys.modules)))
"""


@pytest.mark.parametrize("type_name", _written_provider_types())
def test_a_type_s_facts_load_without_its_sdk_or_its_provider_module(type_name: str) -> None:
    done = subprocess.run(
        [sys.executable, "-c", _SPEC_PROBE, type_name], capture_output=True, text=True, timeout=60, check=True
    )
    modules = set(json.loads(done.stdout))
    assert {m.split(".")[0] for m in modules} & set(_SDKS) == set()
    package = BUILTIN_MODULES[type_name]
    assert f"{package}.spec" in modules
    assert f"{package}.provider" not in modules


def _class_or_skip(type_name: str) -> type[Provider]:
    """The registered class, or a skip where this machine lacks the type's SDK."""
    try:
        return provider_class(type_name)
    except UserError as exc:
        if "needs the Python package" not in str(exc):
            raise
        pytest.skip(f"{type_name}: {exc}")


@pytest.mark.parametrize("type_name", _written_provider_types())
def test_a_type_s_facts_are_its_provider_class_s(type_name: str) -> None:
    spec = importlib.import_module(f"{BUILTIN_MODULES[type_name]}.spec")
    cls = _class_or_skip(type_name)
    assert cls.spec_schema is spec.SPEC_SCHEMA
    assert cls.capabilities == spec.CAPABILITIES
    assert type_facts(type_name) == TypeFacts(spec.SPEC_SCHEMA, spec.CAPABILITIES)


@pytest.mark.parametrize("type_name", _written_provider_types())
def test_every_provider_module_has_a_backend(type_name: str) -> None:
    names = {path.stem for path in backend_files()}
    assert f"backend_{type_name}" in names, (
        f"providers/{type_name}/ has no conformance backend; add tests/conformance/backend_{type_name}.py "
        "defining BACKENDS (see tests/conformance/backend.py)"
    )


@pytest.mark.parametrize("type_name", _written_provider_types())
def test_importing_the_provider_module_registers_the_type(type_name: str) -> None:
    cls = _class_or_skip(type_name)
    assert cls.__module__ == f"{BUILTIN_MODULES[type_name]}.provider"
    assert cls.type_name == type_name


def test_provider_registers_itself(backend: Backend, provider: Provider) -> None:
    cls = type(provider)
    assert provider_class(cls.type_name) is cls
    assert isinstance(cls.capabilities, Capabilities)
    jsonschema.Draft202012Validator.check_schema(cls.spec_schema)
    assert cls.spec_schema.get("type") == "object"


def _provider_modules() -> list[Path]:
    return sorted(p for p in PROVIDERS_DIR.rglob("*.py") if p != PROVIDERS_DIR / "__init__.py")


def _our_imports(path: Path) -> set[str]:
    """The modules of this project ``path`` imports; relative imports keep their leading dots."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            names.add("." * node.level + (node.module or ""))
    return {n for n in names if n.startswith(".") or n.split(".")[0] in ("reconciler", "providers")}


@pytest.mark.parametrize("path", _provider_modules(), ids=lambda p: str(p.relative_to(PROVIDERS_DIR)))
def test_a_family_imports_only_the_core_and_itself(path: Path) -> None:
    family = path.relative_to(PROVIDERS_DIR).parts[0]
    assert path.parent == PROVIDERS_DIR / family, "provider modules live one level down, in their family"
    bad = sorted(
        n for n in _our_imports(path)
        if not (n == "reconciler.core" or n.startswith("reconciler.core."))
        and not (n == f"providers.{family}" or n.startswith(f"providers.{family}."))
    )
    assert bad == [], f"{path.relative_to(PROVIDERS_DIR)} imports {bad}"


@pytest.mark.parametrize("path", _provider_modules(), ids=lambda p: str(p.relative_to(PROVIDERS_DIR)))
def test_every_module_opens_with_a_docstring_naming_it(path: Path) -> None:
    docstring = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
    parts = path.relative_to(PROVIDERS_DIR.parent).with_suffix("").parts
    name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
    assert docstring.startswith(f"{name}: "), f"{path.name} should open with '{name}: …'"


def test_the_engine_reaches_providers_only_through_the_registry() -> None:
    engine = Path(providers.__file__).parents[1] / "reconciler"
    found = {
        str(path.relative_to(engine)): sorted(n for n in _our_imports(path) if n.split(".")[0] == "providers")
        for path in sorted(engine.rglob("*.py"))
    }
    assert {name: imports for name, imports in found.items() if imports} == {}
