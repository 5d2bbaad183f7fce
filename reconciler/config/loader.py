"""config.loader: load a folder (or file) of YAML into a validated, resolved DesiredState.

The pipeline's first three steps — load, validate, resolve — run here and collect every
diagnostic before giving up, so one run shows all that is wrong: syntax errors in one file
do not hide schema errors in another. When those pass, every server's scripts are rendered
(secrets as placeholders, never read) and its boot scripts measured against its provider's
user-data limit, so a script that cannot render is reported here, at its line. Files are
read in sorted order of their path below the folder (hidden files and folders skipped), and
every diagnostic names the file the way the user named the folder (``examples/clusters`` →
``examples/clusters/shop.yaml:7``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reconciler.config.documents import (
    build_alert_sink,
    build_backup_policy,
    build_budget,
    build_cluster,
    build_inputs,
    build_price_list,
    build_provider,
    build_template,
)
from reconciler.config.resolve import Catalog, Resolution, resolve, sorted_servers
from reconciler.config.schema import check_envelope, kind_schema, validate
from reconciler.config.scripts import render_problems
from reconciler.config.yamlsafe import Document, read_file
from reconciler.core.errors import Diagnostic, UserError
from reconciler.core.model import DesiredState, ResolvedInput

_DEPLOYMENT = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
_YAML_SUFFIXES = (".yaml", ".yml")


@dataclass(frozen=True)
class _Loaded:
    state: DesiredState
    resolution: Resolution
    members: tuple[str, ...]  # every cluster/member declared by a valid Cluster


def _files(path: Path) -> list[tuple[Path, str, str]]:
    """(real path, path as shown, path relative to the folder) of every YAML file to read."""
    if not path.exists():
        raise UserError(
            Diagnostic(
                str(path), None, "does not exist; give the folder (or file) that holds the desired-state YAML"
            )
        )
    if path.is_file():
        return [(path, str(path), path.name)]
    found: list[tuple[Path, str, str]] = []
    for folder, dirs, names in os.walk(path):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in names:
            if name.endswith(_YAML_SUFFIXES) and not name.startswith("."):
                full = Path(folder) / name
                rel = full.relative_to(path).as_posix()
                found.append((full, str(path / rel), rel))
    found.sort(key=lambda item: item[2])
    if not found:
        raise UserError(
            Diagnostic(
                str(path), None, "holds no .yaml or .yml files; point at the folder with your desired state"
            )
        )
    return found


def deployment_name(path: Path) -> str:
    """The owner mark for a folder: its name, lowercased, with anything but [a-z0-9-] turned into '-'."""
    folder = path.resolve()
    if folder.is_file():
        folder = folder.parent
    name = re.sub(r"[^a-z0-9-]+", "-", folder.name.lower())
    name = re.sub(r"-{2,}", "-", name).strip("-")
    name = name[:63].rstrip("-")
    return name or "default"


_BUILDERS: dict[str, Callable[[Document], tuple[Any, list[Diagnostic]]]] = {
    "Provider": build_provider,
    "ServerTemplate": build_template,
    "Cluster": build_cluster,
    "Inputs": build_inputs,
    "BackupPolicy": build_backup_policy,
    "PriceList": build_price_list,
    "Budget": build_budget,
    "AlertSink": build_alert_sink,
}


def _declared_name(doc: Document) -> str | None:
    data = doc.data
    if not isinstance(data, dict) or not isinstance(data.get("metadata"), dict):
        return None
    name = data["metadata"].get("name")
    return name if isinstance(name, str) else None


def _add(catalog: Catalog, kind: str, spec: Any) -> None:
    if kind == "Provider":
        catalog.providers[spec.config.name] = spec
    elif kind == "ServerTemplate":
        catalog.templates[spec.name] = spec
    elif kind == "Cluster":
        catalog.clusters[spec.name] = spec
    elif kind == "Inputs":
        catalog.inputs.append(spec)
    elif kind == "BackupPolicy":
        catalog.policies[spec.name] = spec
    elif kind == "Budget":
        catalog.budgets[spec.budget.name] = spec
    elif kind == "AlertSink":
        catalog.alert_sinks[spec.name] = spec
    else:
        catalog.price_lists[spec.name] = spec


def _catalog(path: Path) -> tuple[Catalog, list[Diagnostic]]:
    from reconciler.core.provider import known_types

    catalog = Catalog()
    diagnostics: list[Diagnostic] = []
    first: dict[tuple[str, str], Document] = {}
    for real, shown, rel in _files(path):
        result = read_file(real, shown, rel)
        diagnostics += result.diagnostics
        catalog.complete &= result.complete
        for doc in result.documents:
            kind, problems = check_envelope(doc)
            diagnostics += [] if doc.broken else problems
            name = _declared_name(doc)
            if kind is None:
                continue
            if name is not None:
                earlier = first.get((kind, name))
                if earlier is not None:
                    where = (
                        f"line {earlier.line}"
                        if earlier.file == doc.file
                        else f"{earlier.rel}:{earlier.line}"
                    )
                    diagnostics.append(
                        Diagnostic(
                            doc.file,
                            doc.line_of(("metadata", "name")),
                            f"duplicate {kind} {name!r} (first defined at {where}); "
                            "rename or remove one of them",
                        )
                    )
                    continue
                first[(kind, name)] = doc
                catalog.declared.setdefault(kind, set()).add(name)
            if doc.broken:
                continue
            problems = validate(doc, doc.data, kind_schema(kind, provider_types=known_types()))
            if not problems:
                spec, problems = _BUILDERS[kind](doc)
                if spec is not None:
                    _add(catalog, kind, spec)
            diagnostics += problems
    return catalog, diagnostics


def _ordered(diagnostics: list[Diagnostic]) -> list[Diagnostic]:
    unique = list(dict.fromkeys(diagnostics))
    return sorted(unique, key=lambda d: (d.file, d.line or 0))


def _load(path: Path, deployment: str | None, counts: Mapping[str, int] | None = None) -> _Loaded:
    if deployment is not None and not _DEPLOYMENT.match(deployment):
        raise UserError(
            Diagnostic(
                "--deployment",
                None,
                f"{deployment!r} is not a valid deployment name; use lowercase letters, digits and '-'",
            )
        )
    catalog, diagnostics = _catalog(path)
    resolution = resolve(catalog, counts)
    diagnostics += resolution.diagnostics
    if not diagnostics:
        diagnostics += render_problems(resolution.servers)
    if diagnostics:
        raise UserError(_ordered(diagnostics))
    state = DesiredState(
        deployment=deployment or deployment_name(path),
        source_path=str(path),
        providers=tuple(sorted((p.config for p in catalog.providers.values()), key=lambda c: c.name)),
        servers=sorted_servers(resolution.servers),
        price_lists=dict(sorted(catalog.price_lists.items())),
        backup_policies=dict(sorted(catalog.policies.items())),
        budgets={name: spec.budget for name, spec in sorted(catalog.budgets.items())},
        autoscale={
            m.ident: m.autoscale
            for c in sorted(catalog.clusters.values(), key=lambda c: c.name)
            for m in sorted(c.members.values(), key=lambda m: m.name)
            if m.autoscale is not None
        },
        alert_sinks=tuple(catalog.alert_sinks[name] for name in sorted(catalog.alert_sinks)),
    )
    members = tuple(sorted(m.ident for c in catalog.clusters.values() for m in c.members.values()))
    return _Loaded(state, resolution, members)


def load_desired_state(
    path: Path, *, deployment: str | None = None, counts: Mapping[str, int] | None = None
) -> DesiredState:
    """Load, validate and resolve a folder (every *.yaml/*.yml below it) or a single YAML file.

    Raises ``UserError`` carrying every diagnostic found. ``deployment`` (the owner mark put on
    every resource) defaults to the folder's name, sanitised to lowercase letters, digits and '-'.
    ``counts`` are autoscaled members' server counts (``cluster/member`` → n), see ``resolve``.
    """
    return _load(Path(path), deployment, counts).state


def explain_inputs(path: Path, target: str) -> list[ResolvedInput]:
    """Each input of ``cluster/member``: its final value and the precedence level it came from."""
    loaded = _load(Path(path), None)
    parts = target.strip("/").split("/")
    if len(parts) == 3 and parts[2].isdigit():
        parts = parts[:2]
    ident = "/".join(parts)
    if len(parts) != 2 or ident not in loaded.members:
        cluster = parts[0]
        same = [m.split("/")[1] for m in loaded.members if m.split("/")[0] == cluster]
        if len(parts) != 2:
            hint = "write it as cluster/member, e.g. shop/web"
        elif same:
            hint = f"cluster {cluster!r} has members: {', '.join(same)}"
        else:
            clusters = sorted({m.split("/")[0] for m in loaded.members})
            hint = f"clusters are: {', '.join(clusters)}" if clusters else "no cluster has members"
        raise UserError(Diagnostic(str(path), None, f"no member {target!r}; {hint}"))
    return list(loaded.resolution.member_inputs[ident])
