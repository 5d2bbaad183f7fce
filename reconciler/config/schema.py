"""config.schema: validate each document against its kind's JSON Schema, with messages people can act on.

The schemas in ``reconciler/schemas`` are the single description of the YAML format: editors
use them through yaml-language-server and the loader validates with them (Draft 2020-12).
jsonschema's own messages ("Additional properties are not allowed ('replcas' was
unexpected)") are rewritten here into one diagnostic per problem, at the line of the
offending key, saying what is wrong and how to fix it ("unknown field 'replcas' in
spec.members.web; did you mean 'count'?"). Two non-standard keywords, also understood by
VS Code's JSON service, carry hand-written messages: ``patternErrorMessage`` and
``errorMessage`` (used for ``anyOf``/``oneOf``/``not``).

``pattern`` is matched as JSON Schema defines it (ECMA-262), not as Python's ``re`` would:
there ``$`` also matches before a final newline, so ``^[a-z]+$`` would accept ``"web\n"``.
Here ``$`` (outside a character class) means the very end of the text.
"""

from __future__ import annotations

import copy
import difflib
import functools
import json
import re
from collections.abc import Iterable, Mapping
from importlib import resources
from typing import Any

from jsonschema import Draft202012Validator, validators
from jsonschema.exceptions import ValidationError

from reconciler.config.yamlsafe import Document, YamlPath, dotted
from reconciler.core.errors import Diagnostic

KIND_SCHEMAS: dict[str, str] = {
    "Provider": "provider.json",
    "ServerTemplate": "server-template.json",
    "Cluster": "cluster.json",
    "Inputs": "inputs.json",
    "BackupPolicy": "backup-policy.json",
    "PriceList": "price-list.json",
    "AlertSink": "alert-sink.json",
    "Budget": "budget.json",
    "Policy": "policy.json",
    "Console": "console.json",
}
KINDS: tuple[str, ...] = tuple(sorted(KIND_SCHEMAS))
API_VERSION = "reconciler/v1"


@functools.cache
def _load(kind: str) -> dict[str, Any]:
    """The kind's schema file, parsed (``tests/config/test_schemas.py`` checks each is a valid
    Draft 2020-12 schema, so loading does not pay for that check on every run)."""
    text = resources.files("reconciler").joinpath("schemas", KIND_SCHEMAS[kind]).read_text(encoding="utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


def kind_schema(kind: str, *, provider_types: Iterable[str] | None = None) -> dict[str, Any]:
    """The JSON Schema of one kind (a copy). For Provider, ``provider_types`` replaces the type enum."""
    schema = copy.deepcopy(_load(kind))
    if kind == "Provider" and provider_types is not None:
        schema["properties"]["spec"]["properties"]["type"]["enum"] = sorted(provider_types)
    return schema


def suggest(word: str, choices: Iterable[str]) -> str:
    """`` (did you mean 'x'?)``-style hint, or '' when nothing is close."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f"did you mean {close[0]!r}?" if close else ""


def shown(text: Any) -> str:
    """``repr`` of a value, shortened when long (a 3,000-digit price must not fill the screen)."""
    if isinstance(text, str) and len(text) > 60:
        return f"{text[:40]!r}… ({len(text)} characters)"
    return repr(text)


def describe(value: Any) -> str:
    """A value and its YAML type, for 'got …' messages."""
    if value is None:
        return "an empty value"
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, int):
        return f"the integer {value}"
    if isinstance(value, float):
        return f"the number {value}"
    if isinstance(value, str):
        return f"the string {shown(value)}"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__  # pragma: no cover - YAML gives nothing else


_TYPE_WORDS = {
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "a boolean (true or false)",
    "object": "a mapping",
    "array": "a list",
    "null": "empty",
}


def _type_words(expected: Any) -> str:
    names = [expected] if isinstance(expected, str) else list(expected)
    words = [_TYPE_WORDS.get(n, n) for n in names]
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " or " + words[-1]


def _first_clause(description: str) -> str:
    """The first sentence of a description, to follow a field name in a message."""
    text = re.split(r"\.\s+(?=[A-Z])", description.strip(), maxsplit=1)[0].rstrip(".")
    return text if text[1:2].isupper() else text[:1].lower() + text[1:]


class _Translator:
    """Turns jsonschema errors into (path, line-kind, message) triples."""

    def __init__(self, doc: Document, prefix: YamlPath) -> None:
        self.doc = doc
        self.prefix = prefix
        self.out: list[Diagnostic] = []

    def add(self, path: YamlPath, message: str) -> None:
        self.out.append(Diagnostic(self.doc.file, self.doc.line_of(path), message))

    def error(self, error: ValidationError) -> None:
        path: YamlPath = (*self.prefix, *error.absolute_path)
        where = dotted(path)
        schema: Mapping[str, Any] = error.schema if isinstance(error.schema, Mapping) else {}
        kind, value, instance = error.validator, error.validator_value, error.instance
        if "propertyNames" in error.absolute_schema_path and kind in ("pattern", "not", "type"):
            path = (*path, str(instance))
            custom = schema.get("patternErrorMessage" if kind == "pattern" else "errorMessage")
            message = custom or "is not allowed as a key"
            self.add(path, f"{where} key {shown(instance)} {message}")
            return
        if kind in ("anyOf", "oneOf"):
            self.alternatives(error, path, where, schema)
        elif kind == "additionalProperties" and isinstance(instance, dict):
            allowed = sorted(schema.get("properties", {}))
            for key in instance:
                if key in allowed:
                    continue
                hint = suggest(key, allowed) or (
                    f"allowed fields: {', '.join(allowed)}" if allowed else "no fields are allowed here"
                )
                self.add((*path, key), f"unknown field {key!r} in {where}; {hint}")
        elif kind == "required" and isinstance(instance, dict):
            for prop in value:
                if prop in instance:
                    continue
                described = schema.get("properties", {}).get(prop, {}).get("description")
                what = f" ({_first_clause(described)})" if described else ""
                self.add(path, f"{where} is missing the required field {prop!r}{what}; add it")
        elif kind == "type":
            hint = self.quoted_hint(instance, value)
            self.add(path, f"{where} must be {_type_words(value)}, got {describe(instance)}{hint}")
        elif kind == "enum":
            choices = [str(v) for v in value]
            hint = suggest(str(instance), choices) if isinstance(instance, str) else ""
            self.add(
                path,
                f"{where} must be one of {', '.join(choices)}; got {describe(instance)}"
                + (f" ({hint})" if hint else ""),
            )
        elif kind == "const":
            self.add(path, f"{where} must be {value}, got {describe(instance)}; change it to {value}")
        elif kind == "pattern":
            custom = (
                schema.get("patternErrorMessage") or f"does not match the pattern {value}; fix its spelling"
            )
            self.add(path, f"{where} {shown(instance)} {custom}")
        elif kind == "not":
            custom = schema.get("errorMessage") or "is not allowed here"
            self.add(path, f"{where} {shown(instance)} {custom}")
        elif kind in _BOUNDS:
            self.add(path, f"{where} must be {_BOUNDS[kind]} {value}, got {describe(instance)}")
        elif kind in ("minLength", "minProperties", "minItems") and value == 1:
            self.add(path, f"{where} must not be empty; give it a value")
        elif kind == "minItems":
            self.add(path, f"{where} needs at least {value} items")
        elif kind == "maxLength":
            self.add(path, f"{where} is longer than {value} characters; shorten it")
        elif kind == "uniqueItems":
            self.add(path, f"{where} lists the same entry more than once; remove the repeats")
        else:
            self.add(path, f"{where} is not valid: {error.message}")

    @staticmethod
    def quoted_hint(instance: Any, expected: Any) -> str:
        if not isinstance(instance, str):
            return ""
        wanted = {expected} if isinstance(expected, str) else set(expected)
        try:
            if "integer" in wanted:
                int(instance)
                return "; remove the quotes"
            if "number" in wanted:
                float(instance)
                return "; remove the quotes"
        except ValueError:
            return ""
        if "boolean" in wanted and instance in ("true", "false"):
            return "; remove the quotes"
        return ""

    def alternatives(
        self, error: ValidationError, path: YamlPath, where: str, schema: Mapping[str, Any]
    ) -> None:
        """anyOf/oneOf: report the branch the value was evidently meant for, else the custom message."""
        branches: dict[Any, list[ValidationError]] = {}
        for sub in error.context or ():
            branches.setdefault(sub.relative_schema_path[0], []).append(sub)
        fitting = [
            errors
            for errors in branches.values()
            if not any(e.validator in ("type", "const") and not e.relative_path for e in errors)
        ]
        if len(fitting) == 1 and not (
            len(branches) > 1 and all(e.validator == "required" for e in fitting[0])
        ):
            for sub in fitting[0]:
                self.error(sub)
            return
        custom = schema.get("errorMessage") or "does not have a valid form"
        self.add(path, f"{where} {custom}")


_BOUNDS = {
    "minimum": "at least",
    "maximum": "at most",
    "exclusiveMinimum": "greater than",
    "exclusiveMaximum": "less than",
}


@functools.lru_cache(maxsize=512)
def ecma_pattern(pattern: str) -> re.Pattern[str]:
    """``pattern`` compiled so that ``$`` outside a character class means the end of the text only."""
    out: list[str] = []
    escaped = in_class = False
    for char in pattern:
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif in_class:
            in_class = char != "]"
        elif char == "[":
            in_class = True
        elif char == "$":
            out.append(r"\Z")
            continue
        out.append(char)
    return re.compile("".join(out))


def _pattern(
    validator: Any, pattern: str, instance: Any, schema: Mapping[str, Any]
) -> Iterable[ValidationError]:
    if validator.is_type(instance, "string") and not ecma_pattern(pattern).search(instance):
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


_Validator = validators.extend(Draft202012Validator, {"pattern": _pattern})


@functools.lru_cache(maxsize=32)
def kind_validator(kind: str, provider_types: tuple[str, ...] | None = None) -> Any:
    """A validator for one kind's documents, built once per run (see ``kind_schema``)."""
    return _Validator(kind_schema(kind, provider_types=provider_types))


def validate(
    doc: Document, value: Any, schema: Mapping[str, Any] | Any, prefix: YamlPath = ()
) -> list[Diagnostic]:
    """Every schema violation of ``value`` (found at ``prefix`` inside ``doc``), translated.
    ``schema``: a schema, or a validator from ``kind_validator``."""
    validator = schema if isinstance(schema, _Validator) else _Validator(schema)
    translator = _Translator(doc, prefix)
    for error in validator.iter_errors(value):
        translator.error(error)
    return translator.out


def check_envelope(doc: Document) -> tuple[str | None, list[Diagnostic]]:
    """The document's kind, or the diagnostics saying why it has none we know."""
    data = doc.data
    if not isinstance(data, dict):
        return None, [
            Diagnostic(
                doc.file,
                doc.line,
                f"document {doc.index} is {describe(data)}, not a mapping; "
                "each document needs apiVersion, kind, metadata and spec",
            )
        ]
    kind = data.get("kind")
    if kind is None:
        return None, [
            Diagnostic(
                doc.file, doc.line, f"document {doc.index} has no kind; add kind: one of {', '.join(KINDS)}"
            )
        ]
    if not isinstance(kind, str) or kind not in KIND_SCHEMAS:
        hint = suggest(str(kind), KINDS)
        hint = f"{hint} " if hint else ""
        return None, [
            Diagnostic(
                doc.file,
                doc.line_of(("kind",)),
                f"unknown kind {kind!r}; {hint}kinds are: {', '.join(KINDS)}",
            )
        ]
    return kind, []
