"""config.loader: load a folder (or file) of YAML into a validated, resolved DesiredState.

The pipeline's first three steps — load, validate, resolve — run here and collect every
diagnostic before giving up, so one run shows all that is wrong: syntax errors in one file
do not hide schema errors in another. When those pass, every server's scripts are rendered
(secrets as placeholders, never read) and its boot scripts measured against its provider's
user-data limit, so a script that cannot render is reported here, at its line. Files are
read in sorted order of their path below the folder (hidden files and folders skipped), and
every diagnostic names the file the way the user named the folder (``examples/clusters`` →
``examples/clusters/shop.yaml:7``).

Only regular files are read. A ``*.yaml`` entry that is a FIFO, socket or device, or a
symbolic link leading outside the folder, to such a file, or nowhere, is an error (never a
hang, never silently skipped); a link to a regular file inside the folder is followed.
Linked folders are not descended into. A folder that cannot be listed is an error too.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reconciler.config.documents import build_cluster, build_inputs, build_provider, build_template
from reconciler.config.money import money_problems
from reconciler.config.operations import build_alert_sink, build_backup_policy, build_budget, build_price_list
from reconciler.config.policy import build_policy
from reconciler.config.resolve import Catalog, Resolution, resolve, sorted_servers
from reconciler.config.schema import check_envelope, kind_validator, validate
from reconciler.config.scripts import render_problems
from reconciler.config.yamlsafe import Document, control_character, file_kind, read_file
from reconciler.core.errors import Diagnostic, UserError
from reconciler.core.keys import ServerKey, cluster_of, parse_member
from reconciler.core.model import DesiredState, ResolvedInput

if TYPE_CHECKING:  # the console's modules load only for a folder holding a Console document
    from reconciler.core.console_model import ConsoleSpec

_DEPLOYMENT = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
_YAML_SUFFIXES = (".yaml", ".yml")
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")


@dataclass(frozen=True)
class _Loaded:
    """What loading a folder gives: the desired state, how it was resolved, the members, the Console."""

    state: DesiredState
    resolution: Resolution
    members: tuple[str, ...]  # every cluster/member declared by a valid Cluster
    console: ConsoleSpec | None = None  # the Console document, if any


def _files(path: Path) -> tuple[list[tuple[Path, str, str]], list[Diagnostic]]:
    """(real path, path as shown, path relative to the folder) of every YAML file to read, and
    the diagnostics of entries that are not read (see ``_entry_problem``)."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        info = None
    except OSError as exc:
        raise UserError(
            Diagnostic(
                str(path), None, f"cannot be read ({exc.strerror}); check that it exists and is readable"
            )
        ) from None
    if info is None:
        raise UserError(
            Diagnostic(
                str(path), None, "does not exist; give the folder (or file) that holds the desired-state YAML"
            )
        )
    if stat.S_ISREG(info.st_mode):
        return [(path, str(path), path.name)], []
    if not stat.S_ISDIR(info.st_mode):
        raise UserError(
            Diagnostic(
                str(path),
                None,
                f"is {file_kind(info.st_mode)}, not a file or folder; give the folder (or file) that holds "
                "the desired-state YAML",
            )
        )
    root = os.path.realpath(path)
    found: list[tuple[Path, str, str]] = []
    problems: list[Diagnostic] = []

    def unreadable(exc: OSError) -> None:
        where = Path(exc.filename).relative_to(path).as_posix() if exc.filename else "."
        problems.append(
            Diagnostic(
                _printable(str(path / where)),
                None,
                f"cannot list this folder ({exc.strerror}); make it readable or remove it",
            )
        )

    for folder, dirs, names in os.walk(path, onerror=unreadable):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))  # linked folders are not descended
        for name in names:
            if name.endswith(_YAML_SUFFIXES) and not name.startswith("."):
                full = Path(folder) / name
                rel = full.relative_to(path).as_posix()
                problem = _entry_problem(full, rel, root)
                if problem is not None:
                    problems.append(Diagnostic(_printable(str(path / rel)), None, problem))
                    continue
                found.append((full, str(path / rel), rel))
    found.sort(key=lambda item: item[2])
    if not found and not problems:
        raise UserError(
            Diagnostic(
                str(path), None, "holds no .yaml or .yml files; point at the folder with your desired state"
            )
        )
    return found, problems


def _printable(text: str) -> str:
    """A file name with its control characters escaped (``bad\\x1b.yaml``), safe to print."""
    return _CONTROL.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)


def _entry_problem(full: Path, rel: str, root: str) -> str | None:
    """Why a ``*.yaml`` entry of the folder is not read, or None when it is a file to read.

    Only regular files are read. A symbolic link is followed when it leads to a regular file
    inside the folder (the folder as resolved); one that leads outside, to a FIFO, socket,
    device or folder, or nowhere (dangling, or a loop) is an error, never silently skipped.
    ``yamlsafe.read_file`` checks the opened file again, so a swap after this check is caught.
    """
    control = _CONTROL.search(rel)
    if control is not None:
        return (
            f"the file name contains the control character {control_character(control.group())}; "
            "rename the file"
        )
    try:
        own = os.lstat(full)
    except OSError as exc:
        return f"cannot read the file ({exc.strerror}); check that it exists and is readable"
    if stat.S_ISREG(own.st_mode):
        return None
    if not stat.S_ISLNK(own.st_mode):
        return (
            f"is {file_kind(own.st_mode)}, not a regular file; only regular files are read: remove it, "
            "or rename it so that it does not end in .yaml or .yml"
        )
    try:
        target = os.stat(full)
    except OSError:
        return (
            "is a symbolic link that leads nowhere (its target does not exist, or the links form a "
            "loop); fix or remove the link"
        )
    real = os.path.realpath(full)
    if os.path.commonpath([root, real]) != root:
        return (
            "is a symbolic link to a file outside the folder; links are followed only to files inside "
            "the folder: copy the file in, or point the link at a file inside the folder"
        )
    kind = file_kind(target.st_mode)
    if kind is not None:
        return (
            f"is a symbolic link to {kind}, not to a regular file; only regular files are read: remove "
            "the link, or point it at a YAML file"
        )
    return None


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
    "Policy": build_policy,
    "Console": lambda doc: _console_module().build_console(doc),
}


def _console_module() -> Any:
    """``config.console``, imported only for a folder that holds a Console document."""
    from reconciler.config import console

    return console


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
    elif kind == "Policy":
        catalog.guards[spec.policy.name] = spec
    elif kind == "Console":
        catalog.consoles[spec.name] = spec
    else:
        catalog.price_lists[spec.name] = spec


def _catalog(path: Path) -> tuple[Catalog, list[Diagnostic]]:
    from reconciler.core.provider import known_types

    catalog = Catalog()
    diagnostics: list[Diagnostic] = []
    first: dict[tuple[str, str], Document] = {}
    files, problems = _files(path)
    diagnostics += problems
    catalog.complete &= not problems  # a file not read may define what others refer to
    for real, shown, rel in files:
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
            problems = validate(doc, doc.data, kind_validator(kind, tuple(sorted(known_types()))))
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
    diagnostics += money_problems(catalog, resolution.servers)
    console, problems = (
        _console_module().single_console(list(catalog.consoles.values())) if catalog.consoles else (None, [])
    )
    diagnostics += problems
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
        policies=tuple(catalog.guards[name].policy for name in sorted(catalog.guards)),
    )
    members = tuple(sorted(m.ident for c in catalog.clusters.values() for m in c.members.values()))
    return _Loaded(state, resolution, members, console)


def load_desired_state(
    path: Path, *, deployment: str | None = None, counts: Mapping[str, int] | None = None
) -> DesiredState:
    """Load, validate and resolve a folder (every *.yaml/*.yml below it) or a single YAML file.

    Raises ``UserError`` carrying every diagnostic found. ``deployment`` (the owner mark put on
    every resource) defaults to the folder's name, sanitised to lowercase letters, digits and '-'.
    ``counts`` are autoscaled members' server counts (``cluster/member`` → n), see ``resolve``.
    """
    return _load(Path(path), deployment, counts).state


def load_with_console(
    path: Path, *, deployment: str | None = None, counts: Mapping[str, int] | None = None
) -> tuple[DesiredState, ConsoleSpec | None]:
    """``load_desired_state``, and the folder's Console document (who may use the web console)."""
    loaded = _load(Path(path), deployment, counts)
    return loaded.state, loaded.console


def explain_inputs(path: Path, target: str) -> list[ResolvedInput]:
    """Each input of ``cluster/member``: its final value and the precedence level it came from."""
    loaded = _load(Path(path), None)
    text = target.strip("/")
    key = ServerKey.try_parse(text)
    ident = key.member if key is not None else text
    if ident not in loaded.members:
        cluster = cluster_of(ident)
        same = [parse_member(m)[1] for m in loaded.members if cluster_of(m) == cluster]
        if ident.count("/") != 1:
            hint = "write it as cluster/member, e.g. shop/web"
        elif same:
            hint = f"cluster {cluster!r} has members: {', '.join(same)}"
        else:
            clusters = sorted({cluster_of(m) for m in loaded.members})
            hint = f"clusters are: {', '.join(clusters)}" if clusters else "no cluster has members"
        raise UserError(Diagnostic(str(path), None, f"no member {target!r}; {hint}"))
    return list(loaded.resolution.member_inputs[ident])
