"""config.resolve: check references between documents, merge inputs, expand clusters into servers.

Input precedence, lowest to highest: template default < Inputs global < Inputs for the
cluster < the member's own inputs. Every value is type-checked against the template's
declaration at the line where it was written, and the winning one keeps its origin
(``Inputs global (inputs.yaml:7)``) for ``inputs explain`` and for locating missing secrets.

Each member expands into ``count`` servers keyed ``cluster/member/ordinal``; ``depends_on``
(a member, a cluster, or cluster/member) becomes the concrete keys each server waits for,
and a dependency cycle is reported with the members on it. Members whose servers would get
the same names (``a`` + ``b-c`` and ``a-b`` + ``c``: both ``a-b-c-0``) are refused where the
second is written, naming where the first is. A reference to a document
that exists but failed validation is not reported again (it has its own diagnostics), and
when some file could not be read to its end no reference is reported as dangling at all.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from reconciler.config.documents import (
    ClusterSpec,
    InputsSpec,
    MemberSpec,
    ProviderSpec,
    Ref,
    TemplateSpec,
    Value,
    value_problem,
)
from reconciler.config.operations import BudgetSpec
from reconciler.config.policy import PolicySpec
from reconciler.config.schema import suggest
from reconciler.config.yamlsafe import Document
from reconciler.core.errors import Diagnostic
from reconciler.core.keys import SEPARATOR, ServerKey, format_member, parse_member
from reconciler.core.model import (
    AlertSink,
    BackupPolicy,
    DesiredServer,
    PriceList,
    ResolvedInput,
    SecretRef,
    SourceLocation,
    compute_spec_hash,
    name_stem,
    server_name,
)

if TYPE_CHECKING:  # loaded only for a folder holding a Console document (``config.loader``)
    from reconciler.core.console_model import ConsoleSpec


@dataclass
class Catalog:
    """Every valid document by kind, and every name declared (valid or not) for reference checks."""

    providers: dict[str, ProviderSpec] = field(default_factory=dict)
    templates: dict[str, TemplateSpec] = field(default_factory=dict)
    clusters: dict[str, ClusterSpec] = field(default_factory=dict)
    inputs: list[InputsSpec] = field(default_factory=list)
    policies: dict[str, BackupPolicy] = field(default_factory=dict)
    price_lists: dict[str, PriceList] = field(default_factory=dict)
    budgets: dict[str, BudgetSpec] = field(default_factory=dict)
    alert_sinks: dict[str, AlertSink] = field(default_factory=dict)
    guards: dict[str, PolicySpec] = field(default_factory=dict)  # Policy (``policies``: BackupPolicy)
    consoles: dict[str, ConsoleSpec] = field(default_factory=dict)  # at most one is valid
    declared: dict[str, set[str]] = field(default_factory=dict)
    complete: bool = True  # every file was read to its end


@dataclass
class Resolution:
    """The desired servers, the inputs each member resolved to, and every problem found on the way."""

    servers: list[DesiredServer] = field(default_factory=list)
    member_inputs: dict[str, tuple[ResolvedInput, ...]] = field(default_factory=dict)
    diagnostics: list[Diagnostic] = field(default_factory=list)


def _sibling(first: DesiredServer, key: str, ordinal: int) -> DesiredServer:
    """``dataclasses.replace(first, key=…, name=…, ordinal=…)`` for one more server of a member,
    without replace's cost of building every field again through ``__init__`` (a tenth of a
    second per 10,000 servers). ``DesiredServer`` is a plain frozen dataclass, no
    ``__post_init__`` and no slots (``tests/config/test_resolve.py`` holds it to that)."""
    server = object.__new__(DesiredServer)
    server.__dict__.update(first.__dict__, key=key, name=server_name(key, 0), ordinal=ordinal)
    return server


class _Resolver:
    def __init__(self, catalog: Catalog, counts: Mapping[str, int] | None = None) -> None:
        self.catalog = catalog
        self.counts = counts or {}
        self.out = Resolution()
        # member → the members it depends on, each with the document and line saying so; kept in
        # plain dicts (networkx, slow to import, is asked only to describe a cycle: ``check_cycles``)
        self.graph: dict[str, dict[str, tuple[Document, int]]] = {}
        self.edge_order: list[tuple[str, str]] = []
        self.adopted: dict[tuple[str, str], tuple[str, Document, int]] = {}  # (provider, id) → first key

    def error(self, doc: Document, line: int | None, message: str) -> None:
        self.out.diagnostics.append(Diagnostic(doc.file, line, message))

    def exists(self, kind: str, valid: Mapping[str, object], ref: Ref, doc: Document, subject: str) -> bool:
        """True when ``ref`` names a valid document; reports it when it names nothing at all."""
        if ref.name in valid:
            return True
        if ref.name not in self.catalog.declared.get(kind, set()) and self.catalog.complete:
            hint = suggest(ref.name, self.catalog.declared.get(kind, set()))
            self.error(
                doc,
                ref.line,
                f"{subject} names {kind} {ref.name!r}, which is not defined; "
                + (hint if hint else f"define a {kind} named {ref.name!r} or fix the name"),
            )
        return False

    # --- inputs ---------------------------------------------------------------------------
    def scoped_values(self) -> dict[str, dict[str, tuple[Value, InputsSpec]]]:
        scopes: dict[str, dict[str, tuple[Value, InputsSpec]]] = {}
        for spec in self.catalog.inputs:
            scope = spec.scope.name
            if scope != "global" and scope not in self.catalog.clusters:
                if scope not in self.catalog.declared.get("Cluster", set()) and self.catalog.complete:
                    hint = suggest(scope, self.catalog.declared.get("Cluster", set()))
                    self.error(
                        spec.doc,
                        spec.scope.line,
                        f"Inputs {spec.name!r} has scope {scope!r}, which is neither 'global' nor a "
                        "Cluster; " + (hint if hint else "use global or the name of a Cluster"),
                    )
                continue
            values = scopes.setdefault(scope, {})
            for name, value in spec.values.items():
                if name in values:
                    first, first_spec = values[name]
                    where = _elsewhere(first_spec.doc, first.location.line, spec.doc)
                    self.error(
                        spec.doc,
                        value.location.line,
                        f"input {name!r} is already set for scope {scope} ({where}); "
                        "set it in one place only",
                    )
                    continue
                values[name] = (value, spec)
        return scopes

    def check_unused(self, scopes: Mapping[str, Mapping[str, tuple[Value, InputsSpec]]]) -> None:
        """An Inputs value no template can take is almost always a typo."""
        if self.catalog.declared.get("ServerTemplate", set()) != set(self.catalog.templates):
            return  # a broken template may declare it
        every = {n for t in self.catalog.templates.values() for n in t.inputs}
        for scope, values in scopes.items():
            if scope == "global":
                known, what = every, "any template"
            else:
                cluster = self.catalog.clusters[scope]
                names = {m.template.name for m in cluster.members.values()}
                if not names <= set(self.catalog.templates):
                    continue
                known = {n for t in names for n in self.catalog.templates[t].inputs}
                what = f"any template cluster {scope!r} uses"
            for name, (value, spec) in values.items():
                if name not in known:
                    hint = suggest(name, known)
                    self.error(
                        spec.doc,
                        value.location.line,
                        f"input {name!r} is not declared by {what}; "
                        + (hint if hint else "declare it under a template's spec.inputs or remove it"),
                    )

    def member_inputs(
        self,
        member: MemberSpec,
        template: TemplateSpec,
        scopes: Mapping[str, Mapping[str, tuple[Value, InputsSpec]]],
    ) -> tuple[tuple[ResolvedInput, ...], tuple[ResolvedInput, ...]]:
        """(inputs as resolved, the same with location-independent values for the spec hash)."""
        for name, value in member.inputs.items():
            if name not in template.inputs:
                hint = suggest(name, template.inputs)
                self.error(
                    member.doc,
                    value.location.line,
                    f"input {name!r} is not declared by template {template.name!r}; "
                    + (f"{hint} " if hint else "")
                    + "declare it under spec.inputs or remove it",
                )
        resolved: list[ResolvedInput] = []
        hashed: list[ResolvedInput] = []
        for name in sorted(template.inputs):
            decl = template.inputs[name]
            levels: list[tuple[Value, str]] = []
            if decl.default is not None:
                levels.append((decl.default, f"template {template.name} default"))
            for scope, label in (("global", "Inputs global"), (member.cluster, f"Inputs {member.cluster}")):
                if name in scopes.get(scope, {}):
                    levels.append((scopes[scope][name][0], label))
            if name in member.inputs:
                levels.append((member.inputs[name], f"member {member.ident}"))
            for value, _ in levels:
                problem = value_problem(decl, value.value)
                if problem:
                    self.error_at(value, f"input {name!r} of template {template.name!r} must {problem}")
            if not levels:
                if decl.required:
                    self.error(
                        member.doc,
                        member.location.line,
                        f"member {member.ident} needs a value for input {name!r} (required by template "
                        f"{template.name!r}); set it under the member's inputs or in an Inputs document",
                    )
                resolved.append(ResolvedInput(name, None, "not set", decl.sensitive))
                hashed.append(resolved[-1])
                continue
            value, label = levels[-1]
            source = f"{label} ({value.location})"
            sensitive = decl.sensitive or isinstance(value.value, SecretRef)
            resolved.append(ResolvedInput(name, value.value, source, sensitive))
            hashed.append(ResolvedInput(name, value.hashed, source, sensitive))
        return tuple(resolved), tuple(hashed)

    def error_at(self, value: Value, message: str) -> None:
        self.out.diagnostics.append(Diagnostic(value.location.file, value.location.line, message))

    # --- dependencies ---------------------------------------------------------------------
    def targets(self, cluster: ClusterSpec, member: MemberSpec, ref: Ref) -> list[str]:
        """The members (``cluster/member``) one depends_on entry of a member stands for."""
        clusters, declared = self.catalog.clusters, self.catalog.declared.get("Cluster", set())
        subject = f"member {member.ident} depends on {ref.name!r}"
        if "/" not in ref.name:
            if ref.name in cluster.members:
                return [format_member(cluster.name, ref.name)]
            if ref.name in clusters:
                return [m.ident for m in clusters[ref.name].members.values()]
            if ref.name not in declared and self.catalog.complete:
                hint = suggest(ref.name, [*cluster.members, *declared])
                self.error(
                    member.doc,
                    ref.line,
                    f"{subject}, which is neither a member of cluster {cluster.name!r} "
                    "nor a cluster; " + (hint if hint else "fix the name or remove it"),
                )
            return []
        other, name = parse_member(ref.name)
        if other not in clusters:
            if other not in declared and self.catalog.complete:
                hint = suggest(other, declared)
                self.error(
                    member.doc,
                    ref.line,
                    f"{subject}, but there is no cluster {other!r}; "
                    + (hint if hint else "fix the name or remove it"),
                )
            return []
        if name not in clusters[other].members:
            hint = suggest(name, clusters[other].members)
            self.error(
                member.doc,
                ref.line,
                f"{subject}, but cluster {other!r} has no member {name!r}; "
                + (hint if hint else "fix the name or remove it"),
            )
            return []
        return [ref.name]

    def build_graph(self) -> None:
        clusters = self.catalog.clusters
        for cluster in clusters.values():
            for member in cluster.members.values():
                self.graph.setdefault(member.ident, {})
        for cluster in clusters.values():
            whole: list[tuple[str, Document, int]] = []
            for ref in cluster.depends_on:
                if ref.name in clusters:
                    whole += [(m.ident, cluster.doc, ref.line) for m in clusters[ref.name].members.values()]
                elif ref.name not in self.catalog.declared.get("Cluster", set()) and self.catalog.complete:
                    hint = suggest(ref.name, self.catalog.declared.get("Cluster", set()))
                    self.error(
                        cluster.doc,
                        ref.line,
                        f"cluster {cluster.name!r} depends on {ref.name!r}, which is "
                        "not a Cluster; " + (hint if hint else "fix the name or remove it"),
                    )
            for member in cluster.members.values():
                edges = [
                    (t, member.doc, ref.line)
                    for ref in member.depends_on
                    for t in self.targets(cluster, member, ref)
                ] + whole
                for target, doc, line in edges:
                    out = self.graph[member.ident]
                    if target not in out:
                        out[target] = (doc, line)
                        self.graph.setdefault(target, {})
                        self.edge_order.append((member.ident, target))

    def has_cycle(self) -> bool:
        """Whether any member depends on itself, directly or through others (an iterative
        depth-first search, linear in members and edges)."""
        done: set[str] = set()
        for root in self.graph:
            if root in done:
                continue
            on_path = {root}
            stack = [(root, iter(self.graph[root]))]
            while stack:
                node, successors = stack[-1]
                for nxt in successors:
                    if nxt in on_path:
                        return True
                    if nxt not in done:
                        on_path.add(nxt)
                        stack.append((nxt, iter(self.graph[nxt])))
                        break
                else:
                    stack.pop()
                    on_path.discard(node)
                    done.add(node)
        return False

    def check_cycles(self) -> None:
        if not self.has_cycle():
            return
        import networkx as nx  # only to name each cycle, as it always has

        graph = nx.DiGraph()
        graph.add_nodes_from(self.graph)  # the same graph, built in the same order as before
        for source, target in self.edge_order:
            doc, line = self.graph[source][target]
            graph.add_edge(source, target, doc=doc, line=line)
        for component in sorted(nx.strongly_connected_components(graph), key=min):
            first = min(component)
            if len(component) == 1 and not graph.has_edge(first, first):
                continue
            edges = nx.find_cycle(graph.subgraph(component), source=first)
            nodes = [u for u, _ in edges]
            start = nodes.index(min(nodes))
            nodes = nodes[start:] + nodes[:start]
            data = graph.edges[nodes[0], nodes[1 % len(nodes)]]
            path = " -> ".join([*nodes, nodes[0]])
            self.error(
                data["doc"], data["line"], f"dependency cycle: {path}; remove one of these depends_on entries"
            )

    def check_server_names(self) -> None:
        """Two members whose servers would get the same names (``a``/``b-c`` and ``a-b``/``c``
        both make ``a-b-c-0``): reported at the later one, naming where the first is."""
        members = sorted(
            (m for c in self.catalog.clusters.values() for m in c.members.values()),
            key=lambda m: (m.doc.file, m.location.line or 0, m.ident),
        )
        first: dict[str, MemberSpec] = {}
        for member in members:
            stem = name_stem(member.cluster, member.name)
            other = first.setdefault(stem, member)
            if other is member:
                continue
            self.error(
                member.doc,
                member.location.line,
                f"member {member.ident} gives its servers the same names as member {other.ident} "
                f"({_elsewhere(other.doc, other.location.line, member.doc)}): both name their first "
                f"server {stem}-0; rename one of the clusters or members",
            )

    def check_scope(self, kind: str, name: str, doc: Document, scope: Ref) -> None:
        clusters = self.catalog.declared.get("Cluster", set())
        if scope.name == "global" or scope.name in clusters or not self.catalog.complete:
            return
        hint = suggest(scope.name, {*clusters, "global"})
        self.error(
            doc,
            scope.line,
            f"{kind} {name!r} has scope {scope.name!r}, which is neither 'global' nor a Cluster; "
            + (hint if hint else "use global or the name of a Cluster"),
        )

    # --- expansion ------------------------------------------------------------------------
    def run(self) -> Resolution:
        catalog = self.catalog
        for provider in catalog.providers.values():
            if provider.price_list is not None:
                self.exists(
                    "PriceList",
                    catalog.price_lists,
                    provider.price_list,
                    provider.doc,
                    f"provider {provider.config.name!r}",
                )
        for budget in catalog.budgets.values():
            self.check_scope("Budget", budget.budget.name, budget.doc, budget.scope)
        for guard in catalog.guards.values():
            self.check_scope("Policy", guard.policy.name, guard.doc, guard.scope)
        scopes = self.scoped_values()
        self.check_unused(scopes)
        self.build_graph()
        self.check_cycles()
        self.check_server_names()
        missing_images: set[tuple[str, str]] = set()
        for cluster in sorted(catalog.clusters.values(), key=lambda c: c.name):
            cluster_ok = self.exists(
                "Provider", catalog.providers, cluster.provider, cluster.doc, f"cluster {cluster.name!r}"
            )
            for member in sorted(cluster.members.values(), key=lambda m: m.name):
                subject = f"member {member.ident}"
                template_ok = self.exists(
                    "ServerTemplate", catalog.templates, member.template, member.doc, subject
                )
                if member.backup_policy is not None:
                    self.exists("BackupPolicy", catalog.policies, member.backup_policy, member.doc, subject)
                provider_ref = member.provider or cluster.provider
                if member.provider is not None:
                    provider_ok = self.exists(
                        "Provider", catalog.providers, member.provider, member.doc, subject
                    )
                else:
                    provider_ok = cluster_ok
                if not template_ok:
                    continue
                template = catalog.templates[member.template.name]
                inputs, hashed = self.member_inputs(member, template, scopes)
                self.out.member_inputs[member.ident] = inputs
                if not provider_ok:
                    continue
                config = catalog.providers[provider_ref.name].config
                image = template.images.get(config.type)
                if image is None:
                    if (template.name, config.type) not in missing_images:
                        missing_images.add((template.name, config.type))
                        self.error(
                            template.doc,
                            template.doc.line_of(("spec", "image")),
                            f"template {template.name!r} has no image for provider type {config.type!r} "
                            f"(used by {member.ident}); add spec.image.{config.type}",
                        )
                    continue
                self.expand(member, template, config.name, config.type, image, inputs, hashed)
        return self.out

    def expand(
        self,
        member: MemberSpec,
        template: TemplateSpec,
        provider: str,
        provider_type: str,
        image: str,
        inputs: tuple[ResolvedInput, ...],
        hashed: tuple[ResolvedInput, ...],
    ) -> None:
        depends_on = tuple(
            sorted(
                (
                    str(ServerKey.of(dep, ordinal))
                    for dep in self.graph[member.ident]
                    if dep != member.ident
                    for ordinal in range(self._count(dep))
                ),
                key=ServerKey.parse,
            )
        )
        count = self.count_of(member)
        if count == 0:
            return
        key = str(ServerKey(member.cluster, member.name, 0))
        first = DesiredServer(
            key=key,
            name=server_name(key, 0),
            cluster=member.cluster,
            member=member.name,
            ordinal=0,
            provider=provider,
            provider_type=provider_type,
            template=template.name,
            image=image,
            size=template.size,
            flavor=template.flavors.get(provider_type),
            inputs=hashed,
            scripts=template.scripts,
            tags=template.tags,
            protect=member.protect,
            depends_on=depends_on,
            update_strategy=member.update_strategy,
            allow_restart=member.allow_restart,
            drift=member.drift,
            failover=member.failover,
            failover_grace_seconds=member.failover_grace_seconds,
            failover_max_per_hour=member.failover_max_per_hour,
            backup_policy=member.backup_policy.name if member.backup_policy else None,
            location=member.location,
            allow_replace_on_adopt=member.allow_replace_on_adopt,
        )
        # The spec hash covers only what every server of the member shares (template, image,
        # disk, scripts, inputs with secrets as references): computed once per member.
        first = dataclasses.replace(first, inputs=inputs, spec_hash=compute_spec_hash(first))
        for ordinal in range(count):
            key = str(ServerKey(member.cluster, member.name, ordinal))
            server = first if ordinal == 0 else _sibling(first, key, ordinal)
            entry = member.adopt.get(ordinal)
            if entry is not None:
                self.check_adopted(provider, key, entry, member.doc)
                where = SourceLocation(member.doc.file, entry.line)
                server = dataclasses.replace(server, adopt_id=entry.name, adopt_location=where)
            self.out.servers.append(server)

    def check_adopted(self, provider: str, key: str, entry: Ref, doc: Document) -> None:
        """One server is adopted under one key: a second entry naming it is refused, naming the first."""
        first = self.adopted.setdefault((provider, entry.name), (key, doc, entry.line))
        if first[0] != key:
            self.error(
                doc,
                entry.line,
                f"adopt: {entry.name} is already adopted as {first[0]} "
                f"({_elsewhere(first[1], first[2], doc)}); one server can be adopted under one key "
                "only — remove one of the entries",
            )

    def _count(self, ident: str) -> int:
        cluster, member = parse_member(ident)
        return self.count_of(self.catalog.clusters[cluster].members[member])

    def count_of(self, member: MemberSpec) -> int:
        """``count``; for an autoscaled member the count chosen by the daemon, kept in min..max."""
        scale = member.autoscale
        if scale is None or member.ident not in self.counts:
            return member.count
        return max(scale.min, min(scale.max, self.counts[member.ident]))


def _elsewhere(doc: Document, line: int | None, here: Document) -> str:
    """Point at another place: ``at line 5`` in the same file, else ``at inputs.yaml:5``."""
    return f"at line {line}" if doc.file == here.file else f"at {doc.rel}:{line}"


def resolve(catalog: Catalog, counts: Mapping[str, int] | None = None) -> Resolution:
    """Check references, merge inputs, expand members into servers; diagnostics instead of raising.

    ``counts`` holds the server count the daemon's autoscaler chose per ``cluster/member``;
    it applies only to members with ``autoscale`` and is kept within their min..max.
    """
    return _Resolver(catalog, counts).run()


def sorted_servers(servers: Iterable[DesiredServer]) -> tuple[DesiredServer, ...]:
    """In ``ServerKey`` order (cluster, member, ordinal as a number); the keys are checked already,
    so each sorts by a plain tuple (comparing ``ServerKey`` dataclasses builds two tuples a time)."""

    def order(server: DesiredServer) -> tuple[str, str, int]:
        cluster, name, ordinal = server.key.split(SEPARATOR)
        return cluster, name, int(ordinal)

    return tuple(sorted(servers, key=order))
