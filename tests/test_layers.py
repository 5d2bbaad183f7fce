"""The layers are checked, not hoped for.

`lint-imports` (the contracts in pyproject.toml) is the authority and runs in
scripts/run-tests.sh; these tests say the same things from the source text, so a failure
names the file and the line of thought: no import cycle between any two modules (counting
imports inside functions and under TYPE_CHECKING), core imports nothing else of ours,
providers import only core, and every module is small and says what it is for.
"""

from __future__ import annotations

import ast
from pathlib import Path

import networkx as nx
import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("reconciler", "providers")
MAX_LINES = 600


def _modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join(parts)] = path
    return found


MODULES = _modules()


def _imports(name: str, path: Path) -> set[str]:
    """Every module of ours that ``name`` imports, anywhere in the file (functions and
    ``if TYPE_CHECKING:`` blocks included), resolved to the longest existing module name."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    wanted: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            wanted.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, *([base] if base else [])])
            wanted.update(f"{base}.{alias.name}" for alias in node.names)
    resolved: set[str] = set()
    for target in wanted:
        while target and target not in MODULES:
            target = target.rpartition(".")[0]
        if target and target != name:
            resolved.add(target)
    return resolved


GRAPH = {name: _imports(name, path) for name, path in MODULES.items()}


def test_no_import_cycle_between_any_two_modules() -> None:
    graph = nx.DiGraph([(a, b) for a, targets in GRAPH.items() for b in targets])
    cycles = list(nx.simple_cycles(graph))
    assert cycles == [], "import cycles: " + "; ".join(" -> ".join([*c, c[0]]) for c in cycles)


@pytest.mark.parametrize("module", sorted(m for m in MODULES if m.startswith("reconciler.core")))
def test_core_imports_nothing_else_of_ours(module: str) -> None:
    bad = sorted(t for t in GRAPH[module] if not t.startswith("reconciler.core") and t != "reconciler")
    assert bad == [], f"{module} imports {bad}"


@pytest.mark.parametrize("module", sorted(m for m in MODULES if m.startswith("providers.")))
def test_providers_import_only_core_and_their_own_family(module: str) -> None:
    family = ".".join(module.split(".")[:2])
    bad = sorted(
        t for t in GRAPH[module]
        if not t.startswith("reconciler.core") and not (t + ".").startswith(family + ".")
    )
    assert bad == [], f"{module} imports {bad}"


def test_the_engine_never_imports_a_provider() -> None:
    bad = sorted(
        f"{m} -> {t}" for m, targets in GRAPH.items() if m.startswith("reconciler")
        for t in targets if t.startswith("providers")
    )
    assert bad == [], f"the engine reaches providers only through the registry: {bad}"


def test_reconciler_has_a_handful_of_packages_at_its_top() -> None:
    top = sorted(p.name for p in (ROOT / "reconciler").iterdir() if p.suffix == ".py" or p.is_dir())
    modules = [n for n in top if n.endswith(".py") and n not in ("__init__.py", "__main__.py")]
    assert modules == [], f"modules at the top of reconciler/ belong in a package: {modules}"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_every_module_is_small_and_says_what_it_is_for(module: str) -> None:
    path = MODULES[module]
    text = path.read_text(encoding="utf-8")
    if path.name == "__init__.py" and not text.strip():
        return  # a bare namespace marker
    assert ast.get_docstring(ast.parse(text)), f"{path.relative_to(ROOT)} has no opening docstring"
    lines = text.count("\n")
    assert lines <= MAX_LINES, f"{path.relative_to(ROOT)} has {lines} lines; split it (at most {MAX_LINES})"
