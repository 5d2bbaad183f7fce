"""Shared fixtures of the config tests: writing YAML folders, and a provider type to test with."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest

from reconciler.core import provider as base
from reconciler.core.model import CreateRequest, ObservedServer, UpdateRequest

WriteFiles = Callable[[dict[str, str]], Path]


class _StandInSimcloud(base.Provider):
    """Used only while providers.simcloud cannot be imported: its settings schema but for
    state_file, no behaviour."""

    spec_schema: ClassVar[dict[str, Any]] = {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "latency_ms": {"type": "number", "minimum": 0},
            "error_rate": {"type": "number", "minimum": 0, "maximum": 1},
            "seed": {"type": "integer"},
            "page_size": {"type": "integer", "minimum": 1},
            "capacity": {"type": "integer", "minimum": 0},
        },
    }

    def observe(self, owner: str) -> list[ObservedServer]:
        raise NotImplementedError

    def lookup(self, owner: str, token: str) -> ObservedServer | None:
        raise NotImplementedError

    def create(self, request: CreateRequest) -> ObservedServer:
        raise NotImplementedError

    def update(self, server: ObservedServer, request: UpdateRequest) -> ObservedServer:
        raise NotImplementedError

    def delete(self, server: ObservedServer) -> None:
        raise NotImplementedError


class RegionCloud(_StandInSimcloud):
    """A provider type registered only for a test, with settings of its own."""

    spec_schema: ClassVar[dict[str, Any]] = {
        "type": "object",
        "properties": {"region": {"type": "string", "enum": ["north", "south"]}},
        "required": ["region"],
    }


@pytest.fixture(autouse=True)
def simcloud_available(monkeypatch: pytest.MonkeyPatch) -> None:
    try:
        importlib.import_module("providers.simcloud.provider")
    except ImportError:
        monkeypatch.setitem(base._REGISTRY, "simcloud", _StandInSimcloud)


@pytest.fixture
def testcloud(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setitem(base._REGISTRY, "testcloud", RegionCloud)
    yield "testcloud"


@pytest.fixture
def write_files(tmp_path: Path) -> WriteFiles:
    """Write {relative name: text} under a fresh folder and return the folder."""
    counter = iter(range(1_000_000))

    def write(files: dict[str, str]) -> Path:
        root = tmp_path / f"state{next(counter)}"
        for name, text in files.items():
            target = root / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
        root.mkdir(parents=True, exist_ok=True)
        return root

    return write
