"""Fixtures of the conformance suite: every ``backend_*.py`` next to this file, found by glob.

The ``backend`` fixture is parametrized over every backend of every provider, so each test
in this folder runs once per backend. ``provider`` is a fresh provider on an empty scope,
closed after the test; ``owner`` is a deployment name unique to the test.
"""

from __future__ import annotations

import hashlib
import importlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from reconciler.core.provider import Provider
from tests.conformance.backend import Backend

HERE = Path(__file__).parent
PACKAGE = "tests.conformance"
_OUR_PACKAGES = ("tests", "providers", "reconciler")


def backend_files() -> list[Path]:
    """Every provider's backend file, sorted by name."""
    return sorted(HERE.glob("backend_*.py"))


def _discover() -> list[Any]:
    params: list[Any] = []
    for path in backend_files():
        try:
            module = importlib.import_module(f"{PACKAGE}.{path.stem}")
        except ModuleNotFoundError as exc:
            # A missing SDK skips that provider's backends; a broken import of our own code does not.
            if exc.name is None or exc.name.split(".")[0] in _OUR_PACKAGES:
                raise
            reason = f"{path.name}: Python package {exc.name!r} is not installed"
            params.append(pytest.param(None, id=path.stem, marks=pytest.mark.skip(reason=reason)))
            continue
        backends: list[Backend] = module.BACKENDS
        for backend in backends:
            marks = [pytest.mark.skip(reason=backend.skip_reason)] if backend.skip_reason else []
            params.append(pytest.param(backend, id=backend.name, marks=marks))
    return params


BACKEND_PARAMS = _discover()


@pytest.fixture(scope="session", params=BACKEND_PARAMS)
def backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    chosen: Backend = request.param
    yield chosen
    chosen.close()


@pytest.fixture
def provider(backend: Backend, tmp_path: Path) -> Iterator[Provider]:
    made = backend.make_provider(tmp_path)
    try:
        yield made
    finally:
        made.close()


@pytest.fixture
def owner(request: pytest.FixtureRequest) -> str:
    """A deployment name unique to this test, so tests sharing a real backend never see each other."""
    return "conf-" + hashlib.sha256(request.node.nodeid.encode()).hexdigest()[:10]
