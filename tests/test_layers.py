"""The layers are checked, not hoped for: the planning core never imports providers, the CLI
or the daemon, and provider modules import only the provider contract and the model."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CORE = ["model", "diff", "graph", "plan", "render", "errors", "clock", "retry", "pricing"]
FORBIDDEN_FOR_CORE = (
    "providers",
    "reconciler.cli.main",
    "reconciler.cli.commands",
    "reconciler.daemon.loop",
    "reconciler.run.engine",
    "reconciler.run.executor",
)
PROVIDER_ALLOWED = (
    "reconciler.core.provider",
    "reconciler.core.model",
    "reconciler.core.errors",
    "reconciler.core.clock",
    "reconciler.core.retry",
)


def imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


@pytest.mark.parametrize("module", CORE)
def test_planning_core_imports_no_outer_layer(module: str) -> None:
    found = imports_of(ROOT / "reconciler" / f"{module}.py")
    bad = sorted(name for name in found if name.startswith(FORBIDDEN_FOR_CORE))
    assert bad == [], f"reconciler.{module} imports {bad}"


@pytest.mark.parametrize("path", sorted((ROOT / "providers").glob("*.py")), ids=lambda p: p.name)
def test_providers_import_only_the_contract(path: Path) -> None:
    ours = {n for n in imports_of(path) if n.split(".")[0] in ("reconciler", "providers")}
    own_family = path.stem.split("_")[0]  # simcloud_admin may import simcloud, xcp may import xcp_wire
    bad = sorted(
        n for n in ours if not n.startswith(PROVIDER_ALLOWED) and not n.startswith(f"providers.{own_family}")
    )
    assert bad == [], f"{path.name} imports {bad}"
