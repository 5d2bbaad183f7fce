"""config.documents: turn schema-valid documents into typed specs, checking what a schema cannot.

One builder per kind. Each gets a document that already passed its JSON Schema and returns
a typed spec plus the diagnostics of checks that need only that document: cron syntax and
a schedule that never fires, money with more digits than exact decimals keep, a webhook URL
with no host or an impossible port, retention that keeps nothing, an input default of the
wrong type, scripts that use an undeclared input or insert a value where quoting cannot
protect it, provider-type-specific settings (validated against
``reconciler.core.provider.type_facts(type).spec_schema``, which loads no SDK)…
References to other documents stay names (``Ref``) here; ``resolve`` checks them.
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from reconciler.config.schema import describe, suggest, validate
from reconciler.config.scripts import check_script
from reconciler.config.yamlsafe import Document, YamlPath, dotted
from reconciler.core.errors import Diagnostic, UserError
from reconciler.core.keys import format_member
from reconciler.core.model import (
    Autoscale,
    DriftMode,
    FailoverMode,
    InputScalar,
    InputType,
    InputValue,
    ProviderConfig,
    ScaleMetric,
    Script,
    ScriptPhase,
    SecretRef,
    Size,
    SourceLocation,
    UpdateStrategy,
)

Problems = list[Diagnostic]


@dataclass(frozen=True)
class Ref:
    """A reference to another document by name, and the line it was written on."""

    name: str
    line: int


@dataclass(frozen=True)
class Value:
    """An input value as written. ``hashed`` is what the spec hash sees: a relative ``file:``
    secret there is relative to the folder loaded, so moving the checkout replaces nothing."""

    value: InputValue
    hashed: InputValue
    location: SourceLocation


@dataclass(frozen=True)
class InputDecl:
    """One input a ServerTemplate declares: its type, default, whether it is required or sensitive, the
    values it allows."""

    name: str
    type: InputType
    default: Value | None
    required: bool
    sensitive: bool
    allowed: tuple[InputScalar, ...] | None
    location: SourceLocation


@dataclass(frozen=True)
class ProviderSpec:
    """A schema-valid Provider document: its configuration, the document, the PriceList it names."""

    config: ProviderConfig
    doc: Document
    price_list: Ref | None


@dataclass(frozen=True)
class TemplateSpec:
    """A schema-valid ServerTemplate: images and flavors by provider type, size, inputs, scripts, tags."""

    name: str
    doc: Document
    images: Mapping[str, str]
    flavors: Mapping[str, str]
    size: Size
    inputs: Mapping[str, InputDecl]
    scripts: tuple[Script, ...]
    tags: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class MemberSpec:
    """One member of a Cluster: the template it runs, how many servers, its inputs and dependencies."""

    cluster: str
    name: str
    doc: Document
    path: YamlPath
    template: Ref
    count: int
    inputs: Mapping[str, Value]
    depends_on: tuple[Ref, ...]
    protect: bool
    backup_policy: Ref | None
    provider: Ref | None
    update_strategy: UpdateStrategy
    allow_restart: bool
    drift: DriftMode
    failover: FailoverMode
    failover_grace_seconds: int = 300
    failover_max_per_hour: int = 3
    autoscale: Autoscale | None = None
    adopt: Mapping[int, Ref] = field(default_factory=dict)  # ordinal → the resource id to take over
    allow_replace_on_adopt: bool = False

    @property
    def ident(self) -> str:
        return format_member(self.cluster, self.name)

    @property
    def location(self) -> SourceLocation:
        return SourceLocation(self.doc.file, self.doc.line_of(self.path))


@dataclass(frozen=True)
class ClusterSpec:
    """A schema-valid Cluster: its provider, the clusters it depends on, its members by name."""

    name: str
    doc: Document
    provider: Ref
    depends_on: tuple[Ref, ...]
    members: Mapping[str, MemberSpec] = field(default_factory=dict)


@dataclass(frozen=True)
class InputsSpec:
    """A schema-valid Inputs document: input values for every cluster (global) or for one cluster."""

    name: str
    doc: Document
    scope: Ref
    values: Mapping[str, Value]


def ref(doc: Document, path: YamlPath, name: Any) -> Ref:
    return Ref(str(name), doc.line_of(path))


def input_value(doc: Document, raw: Any, path: YamlPath) -> Value:
    """A schema-valid input value: a scalar, or ``{secret: ...}`` turned into a SecretRef."""
    location = SourceLocation(doc.file, doc.line_of(path))
    if not isinstance(raw, dict):
        return Value(raw, raw, location)
    ref = SecretRef.parse(str(raw["secret"]))
    assert ref is not None, "the schema admits only parseable references"
    if ref.scheme == "file" and not os.path.isabs(ref.target):
        usable = os.path.normpath(os.path.join(os.path.dirname(doc.file), ref.target))
        canonical = posixpath.normpath(posixpath.join(posixpath.dirname(doc.rel), ref.target))
        return Value(SecretRef("file", usable), SecretRef("file", canonical), location)
    return Value(ref, ref, location)


_TYPE_WORDS = {
    InputType.STRING: "a string",
    InputType.INTEGER: "an integer",
    InputType.NUMBER: "a number",
    InputType.BOOLEAN: "a boolean (true or false)",
}


def value_problem(decl: InputDecl, value: InputValue) -> str | None:
    """What is wrong with giving ``value`` to the declared input (after 'must …'), or None."""
    if isinstance(value, SecretRef):
        if decl.type == InputType.STRING:
            return None
        return f"be {_TYPE_WORDS[decl.type]}; a secret reference can only be given for a string input"
    fits = {
        InputType.STRING: isinstance(value, str),
        InputType.INTEGER: isinstance(value, int) and not isinstance(value, bool),
        InputType.NUMBER: isinstance(value, int | float) and not isinstance(value, bool),
        InputType.BOOLEAN: isinstance(value, bool),
    }[decl.type]
    if not fits:
        hint = "; quote it" if decl.type == InputType.STRING and not isinstance(value, dict) else ""
        return f"be {_TYPE_WORDS[decl.type]}, got {describe(value)}{hint}"
    if decl.allowed is not None and value not in decl.allowed:
        choices = ", ".join(str(v) for v in decl.allowed)
        return f"be one of {choices}; got {describe(value)}"
    return None


def _known_provider_types() -> list[str]:
    from reconciler.core.provider import known_types

    return known_types()


def _check_type_keys(doc: Document, path: YamlPath, mapping: Mapping[str, Any], problems: Problems) -> None:
    types = _known_provider_types()
    for key in mapping:
        if key not in types:
            hint = suggest(key, types)
            problems.append(
                Diagnostic(
                    doc.file,
                    doc.line_of((*path, key)),
                    f"{dotted(path)} names unknown provider type {key!r}; "
                    + (hint if hint else f"types are: {', '.join(types)}"),
                )
            )


# --- Provider ---------------------------------------------------------------------------------
_COMMON_PROVIDER_KEYS = ("type", "max_parallel", "price_list")


def build_provider(doc: Document) -> tuple[ProviderSpec | None, Problems]:
    from reconciler.core.provider import type_facts

    name, spec = doc.data["metadata"]["name"], doc.data["spec"]
    type_name = str(spec["type"])
    try:
        facts = type_facts(type_name)
    except UserError as exc:
        message = exc.diagnostics[0].message
        return None, [Diagnostic(doc.file, doc.line_of(("spec", "type")), message)]
    extra = {k: v for k, v in spec.items() if k not in _COMMON_PROVIDER_KEYS}
    schema = dict(facts.spec_schema)
    if schema.get("type", "object") == "object" and "additionalProperties" not in schema:
        schema["additionalProperties"] = False  # unknown fields are errors everywhere
    props = dict(schema.get("properties", {}))
    for key in _COMMON_PROVIDER_KEYS:  # so 'did you mean' can offer them too
        props.setdefault(key, {})
    schema["properties"] = props
    problems = validate(doc, extra, schema, ("spec",))
    if problems:
        return None, problems
    price_list = ref(doc, ("spec", "price_list"), spec["price_list"]) if "price_list" in spec else None
    config = ProviderConfig(
        name=name,
        type=type_name,
        spec=extra,
        max_parallel=int(spec.get("max_parallel", 10)),
        price_list=price_list.name if price_list else None,
    )
    return ProviderSpec(config, doc, price_list), []


# --- ServerTemplate ---------------------------------------------------------------------------
def build_template(doc: Document) -> tuple[TemplateSpec | None, Problems]:
    name, spec = doc.data["metadata"]["name"], doc.data["spec"]
    problems: Problems = []
    _check_type_keys(doc, ("spec", "image"), spec["image"], problems)
    _check_type_keys(doc, ("spec", "flavor"), spec.get("flavor", {}), problems)
    inputs: dict[str, InputDecl] = {}
    for input_name, raw in spec.get("inputs", {}).items():
        decl, decl_problems = _input_decl(doc, input_name, raw)
        inputs[input_name] = decl
        problems += decl_problems
    scripts: list[Script] = []
    for phase in ScriptPhase:
        raw_scripts = spec.get("scripts", {}).get(phase.value)
        if raw_scripts is None:
            continue
        path: YamlPath = ("spec", "scripts", phase.value)
        entries = (
            [(phase.value, raw_scripts, path)]
            if isinstance(raw_scripts, str)
            else [
                (item["name"], item["source"], (*path, index, "source"))
                for index, item in enumerate(raw_scripts)
            ]
        )
        seen: set[str] = set()
        for script_name, source, source_path in entries:
            if script_name in seen:
                problems.append(
                    Diagnostic(
                        doc.file,
                        doc.line_of(source_path[:-1]),
                        f"two {phase.value} scripts are named {script_name!r}; rename one",
                    )
                )
            seen.add(script_name)
            first = doc.content_line(source_path)
            for problem in check_script(source, inputs):
                problems.append(
                    Diagnostic(
                        doc.file,
                        first + problem.line - 1,
                        f"{phase.value} script {script_name!r} {problem.message}",
                    )
                )
            scripts.append(Script(phase, script_name, source, SourceLocation(doc.file, first)))
    size = Size(int(spec["size"]["cpus"]), int(spec["size"]["memory_mb"]), int(spec["size"]["disk_gb"]))
    if problems:
        return None, problems
    return TemplateSpec(
        name=name,
        doc=doc,
        images=dict(spec["image"]),
        flavors=dict(spec.get("flavor", {})),
        size=size,
        inputs=inputs,
        scripts=tuple(scripts),
        tags=tuple(sorted(spec.get("tags", {}).items())),
    ), []


def _input_decl(doc: Document, name: str, raw: Mapping[str, Any]) -> tuple[InputDecl, Problems]:
    path: YamlPath = ("spec", "inputs", name)
    allowed = tuple(raw["allowed"]) if "allowed" in raw else None
    decl = InputDecl(
        name=name,
        type=InputType(raw["type"]),
        default=None,
        required=bool(raw.get("required", False)),
        sensitive=bool(raw.get("sensitive", False)),
        allowed=None,
        location=SourceLocation(doc.file, doc.line_of(path)),
    )
    problems: Problems = []
    for index, item in enumerate(allowed or ()):
        problem = value_problem(decl, item)
        if problem:
            problems.append(
                Diagnostic(
                    doc.file,
                    doc.line_of((*path, "allowed", index)),
                    f"allowed value of input {name!r} must {problem}",
                )
            )
    decl = InputDecl(decl.name, decl.type, None, decl.required, decl.sensitive, allowed, decl.location)
    if "default" in raw and not problems:
        default = input_value(doc, raw["default"], (*path, "default"))
        problem = value_problem(decl, default.value)
        if problem:
            problems.append(
                Diagnostic(doc.file, default.location.line, f"default of input {name!r} must {problem}")
            )
        decl = InputDecl(decl.name, decl.type, default, decl.required, decl.sensitive, allowed, decl.location)
    return decl, problems


# --- Cluster ----------------------------------------------------------------------------------
def build_cluster(doc: Document) -> tuple[ClusterSpec | None, Problems]:
    name, spec = doc.data["metadata"]["name"], doc.data["spec"]
    problems: Problems = []
    if name == "global":
        problems.append(
            Diagnostic(
                doc.file,
                doc.line_of(("metadata", "name")),
                "a Cluster cannot be named 'global' (Inputs use it for every cluster); choose another name",
            )
        )
    members: dict[str, MemberSpec] = {}
    for member_name, raw in spec["members"].items():
        path: YamlPath = ("spec", "members", member_name)
        count = raw.get("count")
        autoscale: Autoscale | None = None
        if "autoscale" in raw:
            scale = raw["autoscale"]
            count = scale["min"]
            autoscale = Autoscale(
                member=format_member(name, member_name),
                min=int(scale["min"]),
                max=int(scale["max"]),
                metric=ScaleMetric(scale["metric"]),
                target=float(scale["target"]),
                cooldown_seconds=int(scale.get("cooldown_seconds", 300)),
                location=SourceLocation(doc.file, doc.line_of((*path, "autoscale"))),
            )
            if scale["min"] > scale["max"]:
                problems.append(
                    Diagnostic(
                        doc.file,
                        doc.line_of((*path, "autoscale", "min")),
                        f"{dotted((*path, 'autoscale'))} has min {scale['min']} above max "
                        f"{scale['max']}; make min at most max",
                    )
                )
        adopt = {
            int(ordinal): ref(doc, (*path, "adopt", ordinal), resource_id)
            for ordinal, resource_id in raw.get("adopt", {}).items()
        }
        for ordinal, entry in sorted(adopt.items()):
            if ordinal >= int(count or 0):
                what = "autoscale.min" if "autoscale" in raw else "count"
                problems.append(
                    Diagnostic(
                        doc.file,
                        entry.line,
                        f"{dotted((*path, 'adopt'))} names ordinal {ordinal} but the member has "
                        f"{int(count or 0)} server(s) ({what}); raise {what} or remove the entry",
                    )
                )
        update, failover = raw.get("update", {}), raw.get("failover", {})
        members[member_name] = MemberSpec(
            cluster=name,
            name=member_name,
            doc=doc,
            path=path,
            template=ref(doc, (*path, "template"), raw["template"]),
            count=int(count or 0),
            inputs={k: input_value(doc, v, (*path, "inputs", k)) for k, v in raw.get("inputs", {}).items()},
            depends_on=tuple(
                ref(doc, (*path, "depends_on", i), d) for i, d in enumerate(raw.get("depends_on", []))
            ),
            protect=bool(raw.get("protect", False)),
            backup_policy=ref(doc, (*path, "backup_policy"), raw["backup_policy"])
            if "backup_policy" in raw
            else None,
            provider=ref(doc, (*path, "provider"), raw["provider"]) if "provider" in raw else None,
            update_strategy=UpdateStrategy(update.get("strategy", "in-place")),
            allow_restart=bool(update.get("allow_restart", True)),
            drift=DriftMode(raw.get("drift", "heal")),
            failover=FailoverMode(failover.get("mode", "replace")),
            failover_grace_seconds=int(failover.get("grace_seconds", 300)),
            failover_max_per_hour=int(failover.get("max_per_hour", 3)),
            autoscale=autoscale,
            adopt=adopt,
            allow_replace_on_adopt=bool(raw.get("allow_replace_on_adopt", False)),
        )
    if problems:
        return None, problems
    return ClusterSpec(
        name=name,
        doc=doc,
        provider=ref(doc, ("spec", "provider"), spec["provider"]),
        depends_on=tuple(
            ref(doc, ("spec", "depends_on", i), d) for i, d in enumerate(spec.get("depends_on", []))
        ),
        members=members,
    ), []


# --- Inputs -----------------------------------------------------------------------------------
def build_inputs(doc: Document) -> tuple[InputsSpec | None, Problems]:
    name, spec = doc.data["metadata"]["name"], doc.data["spec"]
    values = {k: input_value(doc, v, ("spec", "values", k)) for k, v in spec["values"].items()}
    return InputsSpec(
        name=name, doc=doc, scope=ref(doc, ("spec", "scope"), spec["scope"]), values=values
    ), []




















