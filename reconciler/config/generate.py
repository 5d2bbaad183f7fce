"""config.generate: YAML that takes over servers which already run (``reconciler generate``).

From the unowned servers of one provider it writes desired state that validates as written:

* one ``ServerTemplate`` per distinct image, size, flavor and user tags (the tags are part of
  what a template says, so servers that differ in them get templates of their own: an
  adoption followed by a plan then changes nothing);
* one ``Cluster`` whose members group the servers by name: ``web-a``, ``web-b`` and ``web01``
  belong to member ``web`` (a trailing ``-x``, ``-7`` or ``07`` is the server's place in its
  group), ordered by name; a group whose servers have several shapes becomes ``web``,
  ``web-2``…;
* each member's ``adopt:`` entries, binding its ordinals to the servers' resource ids.

Inputs and scripts cannot be read back from a running server: they are left as commented
TODOs. Every scalar is written as a JSON string, which YAML reads back as the same text.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from reconciler.core.model import ObservedServer, ProviderConfig, Size

_NAME = re.compile(r"^[a-z][a-z0-9-]{0,62}$")
_TAG_KEY = re.compile(r"^(?!reconciler:)[A-Za-z0-9_.:/=+@ -]{1,127}$")
_PLACE = re.compile(r"(?:-[a-z]|-?[0-9]+)$")  # web-a, db-1, web01: the server's place in its group
_STEM_MAX = 40


@dataclass(frozen=True)
class Shape:
    """What one template says: image, size, flavor and the user tags."""

    image: str
    size: Size
    flavor: str | None
    tags: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Member:
    name: str
    template: str
    servers: tuple[ObservedServer, ...]


@dataclass(frozen=True)
class Generated:
    """The YAML, and what it holds."""

    text: str
    servers: int
    templates: int
    members: int


def clean_name(text: str, fallback: str = "server") -> str:
    """A document or member name from free text: lowercase, ``[a-z0-9-]``, starting with a letter."""
    name = re.sub(r"[^a-z0-9-]+", "-", text.lower())
    name = re.sub(r"-{2,}", "-", name).strip("-")[:_STEM_MAX].rstrip("-")
    if name and not name[0].isalpha():
        name = f"s-{name}"[:_STEM_MAX].rstrip("-")
    return name if name and _NAME.match(name) else fallback


def stem(server: ObservedServer) -> str:
    """The group a server's name puts it in: ``web-a`` → ``web``, ``db-1`` → ``db``."""
    if not server.name or server.name == server.resource_id:
        return "server"
    name = clean_name(server.name)
    shorter = _PLACE.sub("", name).rstrip("-")
    return shorter if shorter and _NAME.match(shorter) else name


def shape_of(server: ObservedServer) -> Shape:
    return Shape(server.image, server.size, server.flavor, tuple(sorted(server.tags)))


def _unique(wanted: str, taken: set[str]) -> str:
    name, n = wanted, 2
    while name in taken:
        suffix = f"-{n}"
        name, n = wanted[: 63 - len(suffix)] + suffix, n + 1
    taken.add(name)
    return name


def group(
    servers: Iterable[ObservedServer], cluster: str, taken_templates: Iterable[str] = ()
) -> tuple[dict[Shape, str], list[Member]]:
    """Templates by shape (named ``<cluster>-<first member>``) and the members, sorted by name."""
    ordered = sorted(servers, key=lambda s: (stem(s), s.name, s.resource_id))
    templates: dict[Shape, str] = {}
    template_names = set(taken_templates)
    groups: dict[tuple[str, Shape], list[ObservedServer]] = {}
    for server in ordered:
        groups.setdefault((stem(server), shape_of(server)), []).append(server)
    members: list[Member] = []
    member_names: set[str] = set()
    for (name, shape), found in groups.items():
        member = _unique(name, member_names)
        if shape not in templates:
            templates[shape] = _unique(clean_name(f"{cluster}-{member}"), template_names)
        members.append(Member(member, templates[shape], tuple(found)))
    return templates, sorted(members, key=lambda m: m.name)


def _q(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


def _comment(text: str) -> str:
    """Text safe inside a YAML comment: one line, printable."""
    return "".join(c if c.isprintable() else "?" for c in text)


def _template(name: str, shape: Shape, provider_type: str) -> list[str]:
    size = shape.size
    lines = [
        "apiVersion: reconciler/v1",
        "kind: ServerTemplate",
        "metadata:",
        f"  name: {name}",
        "spec:",
        "  image:",
        f"    {provider_type}: {_q(shape.image or 'unknown')}" + (
            "  # TODO: the provider does not report the image; name what new servers boot"
            if not shape.image else ""
        ),
        "  size:",
        f"    cpus: {max(1, size.cpus)}",
        f"    memory_mb: {max(64, size.memory_mb)}",
        f"    disk_gb: {max(1, size.disk_gb)}" + (
            "  # TODO: the provider does not report the disk; check it" if size.disk_gb < 1 else ""
        ),
    ]
    if shape.flavor:
        lines += ["  flavor:", f"    {provider_type}: {_q(shape.flavor)}"]
    usable = [(k, v) for k, v in shape.tags if _TAG_KEY.match(k) and len(v) <= 255 and v.isprintable()]
    if usable:
        lines.append("  tags:")
        lines += [f"    {_q(k)}: {_q(v)}" for k, v in usable]
    for key, value in shape.tags:
        if (key, value) not in usable:
            lines.append(f"  # tag {_comment(repr(key))} cannot be written in a template; a plan removes it")
    return [
        *lines,
        "  # TODO inputs and scripts: a running server's cannot be read back. Add them before the",
        "  # first apply: they do not run on adopted servers, but changing them later replaces every",
        "  # server made from this template.",
        "  # inputs:",
        "  #   server_name: {type: string, required: true}",
        "  # scripts:",
        "  #   boot: |",
        "  #     #!/bin/sh",
    ]


def _cluster(cluster: str, provider: str, members: Sequence[Member]) -> list[str]:
    lines = [
        "apiVersion: reconciler/v1",
        "kind: Cluster",
        "metadata:",
        f"  name: {cluster}",
        "spec:",
        f"  provider: {provider}",
        "  members:",
    ]
    for member in members:
        lines += [
            f"    {member.name}:",
            f"      template: {member.template}",
            f"      count: {len(member.servers)}",
            "      adopt:",
        ]
        for ordinal, server in enumerate(member.servers):
            named = server.name and server.name != server.resource_id
            label = f"  # {_comment(server.name)}" if named else ""
            lines.append(f"        {ordinal}: {_q(server.resource_id)}{label}")
    return lines


def generate_yaml(
    servers: Sequence[ObservedServer],
    *,
    provider: ProviderConfig,
    cluster: str,
    command: str,
    taken_templates: Iterable[str] = (),
) -> Generated:
    """The YAML adopting ``servers`` (unowned, of ``provider``) as cluster ``cluster``."""
    templates, members = group(servers, cluster, taken_templates)
    head = [
        f"# Written by `{_comment(command)}`: {len(servers)} server(s) that provider",
        f"# {provider.name} runs and no deployment owns, as the templates and the cluster that adopt",
        "# them. Review it (inputs and scripts are TODOs); then `reconciler plan` shows one adopt",
        "# per server.",
    ]
    documents = [_template(name, shape, provider.type) for shape, name in templates.items()]
    documents.append(_cluster(cluster, provider.name, members))
    body = "\n---\n".join("\n".join(doc) for doc in documents)
    return Generated("\n".join(head) + "\n" + body + "\n", len(servers), len(templates), len(members))
