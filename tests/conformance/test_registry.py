"""Conformance: every provider family is a package of its own that registers its type, imports
nothing of the engine but ``reconciler.core`` and nothing of another family, and comes with a
conformance backend."""

from __future__ import annotations

import ast
from pathlib import Path

import jsonschema
import pytest

import providers
from reconciler.core.errors import UserError
from reconciler.core.model import Capabilities
from reconciler.core.provider import BUILTIN_MODULES, Provider, provider_class
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
        assert (_package_dir(module) / "provider.py").exists(), f"{module} has no provider.py"


@pytest.mark.parametrize("type_name", _written_provider_types())
def test_every_provider_module_has_a_backend(type_name: str) -> None:
    names = {path.stem for path in backend_files()}
    assert f"backend_{type_name}" in names, (
        f"providers/{type_name}/ has no conformance backend; add tests/conformance/backend_{type_name}.py "
        "defining BACKENDS (see tests/conformance/backend.py)"
    )


@pytest.mark.parametrize("type_name", _written_provider_types())
def test_importing_the_package_registers_the_provider_module(type_name: str) -> None:
    try:
        cls = provider_class(type_name)
    except UserError as exc:
        if "needs the Python package" not in str(exc):
            raise
        pytest.skip(f"{type_name}: {exc}")
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
