"""Conformance: every provider module registers itself properly and comes with a conformance backend."""

from __future__ import annotations

from pathlib import Path

import jsonschema
import pytest

import providers
from reconciler.core.model import Capabilities
from reconciler.core.provider import BUILTIN_MODULES, Provider, provider_class
from tests.conformance.backend import Backend
from tests.conformance.conftest import backend_files

PROVIDERS_DIR = Path(providers.__file__).parent


def _written_provider_types() -> list[str]:
    """Built-in provider types whose module exists in this tree."""
    return sorted(
        t for t, module in BUILTIN_MODULES.items() if (PROVIDERS_DIR / f"{module.split('.')[-1]}.py").exists()
    )


@pytest.mark.parametrize("type_name", _written_provider_types())
def test_every_provider_module_has_a_backend(type_name: str) -> None:
    names = {path.stem for path in backend_files()}
    assert f"backend_{type_name}" in names, (
        f"providers/{type_name}.py has no conformance backend; add tests/conformance/backend_{type_name}.py "
        "defining BACKENDS (see tests/conformance/backend.py)"
    )


def test_provider_registers_itself(backend: Backend, provider: Provider) -> None:
    cls = type(provider)
    assert provider_class(cls.type_name) is cls
    assert isinstance(cls.capabilities, Capabilities)
    jsonschema.Draft202012Validator.check_schema(cls.spec_schema)
    assert cls.spec_schema.get("type") == "object"
