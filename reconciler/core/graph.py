"""core.graph: the plan's changes as a DAG, so apply can walk them in a safe order.

Nodes are change ids (the ``Change`` rides along as the ``change`` node attribute); an edge
``u → v`` means ``u`` must finish before ``v`` starts. The ordering rules:

* **build order** — a create, update or replace of X comes after any create, update or
  replace of a server X ``depends_on`` (desired keys);
* **teardown order, reversed** — deleting Y comes after the delete or replace of every X
  that depended on Y. Y is usually no longer desired, so the dependency is read at member
  level from ``desired`` (X's member depends on Y's member); a key no longer desired borrows
  the dependencies of the desired servers of its member, when there are any;
* **adopt first** — a change that follows an adopt of the same key (the update or replace
  that makes the adopted server what its template says) comes after the adopt, and changes
  that wait for that key wait for the last of them;
* **create before destroy** — a delete of a key that also gets a create/update/replace
  (a server moving provider, a duplicate) comes after that change. A *replacement* is
  create-before-destroy inside one node: the executor creates the new server, then
  deletes the old one; the graph has nothing to add.

A cycle is a ``UserError`` that names it. ``order_changes`` fills ``Change.depends_on``
and returns a deterministic topological order; ``to_dot`` and ``to_text`` draw it for
``reconciler graph``.
"""

from __future__ import annotations

import dataclasses
import heapq
import json
from collections import defaultdict
from collections.abc import Sequence
from typing import TYPE_CHECKING

from reconciler.core.changes import Change
from reconciler.core.errors import Diagnostic, UserError
from reconciler.core.keys import member_of, natural_key
from reconciler.core.model import Action, DesiredServer

if TYPE_CHECKING:
    import networkx as nx

_BUILD = (Action.CREATE, Action.UPDATE, Action.REPLACE, Action.ADOPT)
_TEARDOWN = (Action.DELETE, Action.REPLACE)


class _Dag:
    """The action DAG in plain dicts: ``succ[u]`` and ``pred[v]`` keep edges in the order they
    were added, ``edges`` that order itself (networkx, slow to import, is handed the very same
    graph only to name a cycle, or by ``build_graph``)."""

    def __init__(self) -> None:
        self.change_of: dict[str, Change] = {}
        self.succ: dict[str, dict[str, None]] = {}
        self.pred: dict[str, dict[str, None]] = {}
        self.edges: list[tuple[str, str]] = []

    def add_node(self, node: str, change: Change) -> None:
        self.change_of[node] = change
        self.succ[node] = {}
        self.pred[node] = {}

    def add_edge(self, u: str, v: str) -> None:
        if v not in self.succ[u]:
            self.succ[u][v] = None
            self.pred[v][u] = None
            self.edges.append((u, v))

    def networkx(self) -> nx.DiGraph:
        import networkx as nx

        graph = nx.DiGraph()
        for node, change in self.change_of.items():
            graph.add_node(node, change=change)
        graph.add_edges_from(self.edges)
        return graph


def _dag(changes: Sequence[Change], desired: Sequence[DesiredServer]) -> _Dag:
    graph = _Dag()
    for change in sorted(changes, key=lambda c: c.id):
        if change.id in graph.change_of:
            raise ValueError(f"two changes share the id {change.id}")
        graph.add_node(change.id, change)

    want_by_key = {server.key: server for server in desired}
    member_deps: dict[str, set[str]] = defaultdict(set)
    for server in desired:
        for dep in server.depends_on:
            if member_of(dep) != member_of(server.key):
                member_deps[member_of(server.key)].add(member_of(dep))

    builds: dict[str, Change] = {}
    adopts: dict[str, Change] = {}
    deletes_by_key: dict[str, list[Change]] = defaultdict(list)
    deletes_by_member: dict[str, list[Change]] = defaultdict(list)
    for change in changes:
        if change.action is Action.ADOPT:
            adopts[change.key] = change
            builds.setdefault(change.key, change)
        elif change.action in _BUILD:
            builds[change.key] = change
        elif change.action is Action.DELETE:
            deletes_by_key[change.key].append(change)
            deletes_by_member[member_of(change.key)].append(change)

    for change in changes:
        want = want_by_key.get(change.key) or change.after
        key_deps = want.depends_on if want is not None else ()
        adopt = adopts.get(change.key)
        if adopt is not None and change.action is not Action.ADOPT and change.action in _BUILD:
            graph.add_edge(adopt.id, change.id)
        if change.action in _BUILD:
            for dep in key_deps:
                upstream = builds.get(dep)
                if upstream is not None:
                    graph.add_edge(upstream.id, change.id)
        if change.action in _TEARDOWN:
            targets = [d for dep in key_deps for d in deletes_by_key.get(dep, ())]
            for member in member_deps.get(member_of(change.key), ()):
                targets.extend(deletes_by_member.get(member, ()))
            for target in targets:
                if target.key != change.key:
                    graph.add_edge(change.id, target.id)

    for key, doomed in deletes_by_key.items():
        survivor = builds.get(key)
        if survivor is not None:
            for target in doomed:
                graph.add_edge(survivor.id, target.id)
    return graph


def build_graph(changes: Sequence[Change], desired: Sequence[DesiredServer]) -> nx.DiGraph:
    """The action DAG as a networkx graph; raises ``UserError`` naming the cycle when there is one."""
    graph = _dag(changes, desired).networkx()
    _refuse_cycles(graph, {server.key: server for server in desired})
    return graph


def _refuse_cycles(graph: nx.DiGraph, want_by_key: dict[str, DesiredServer]) -> None:
    import networkx as nx

    if nx.is_directed_acyclic_graph(graph):
        return
    nodes = [str(u) for u, _ in nx.find_cycle(graph)]
    start = nodes.index(min(nodes))
    nodes = nodes[start:] + nodes[:start]
    message = "dependency cycle: " + " -> ".join([*nodes, nodes[0]]) + "; remove one of these depends_on"
    first: Change = graph.nodes[nodes[0]]["change"]
    want = want_by_key.get(first.key)
    if want is not None and want.location is not None:
        raise UserError(Diagnostic(file=want.location.file, line=want.location.line, message=message))
    raise UserError(message)


def order_changes(changes: Sequence[Change], desired: Sequence[DesiredServer]) -> tuple[Change, ...]:
    """The changes with ``depends_on`` filled, in a deterministic topological order.

    Among changes that are ready at the same time, the one with the smallest key in natural
    order comes first (``web/2`` before ``web/10``; then the smallest id), so a plan reads in
    key order wherever dependencies allow.
    (Kahn's algorithm over the graph's adjacency, with a heap of ready changes: the same
    order as networkx's ``lexicographical_topological_sort``, without its overhead. Changes
    left over mean a cycle, named as ``build_graph`` names it.)
    """
    graph = _dag(changes, desired)
    change_of, pred, succ = graph.change_of, graph.pred, graph.succ
    waiting = {node: len(pred[node]) for node in change_of}
    ready = [(natural_key(c.key), c.id) for node, c in change_of.items() if not waiting[node]]
    heapq.heapify(ready)
    ordered: list[Change] = []
    while ready:
        _, node = heapq.heappop(ready)
        change = change_of[node]
        deps = tuple(sorted(pred[node])) if pred[node] else ()
        ordered.append(change if change.depends_on == deps else dataclasses.replace(change, depends_on=deps))
        for after in succ[node]:
            waiting[after] -= 1
            if not waiting[after]:
                heapq.heappush(ready, (natural_key(change_of[after].key), after))
    if len(ordered) < len(change_of):
        _refuse_cycles(graph.networkx(), {server.key: server for server in desired})
    return tuple(ordered)


def levels(changes: Sequence[Change]) -> dict[str, int]:
    """Each change's level: 1 for those depending on nothing, else 1 + its deepest predecessor."""
    import networkx as nx

    graph = nx.DiGraph()
    ids = {c.id for c in changes}
    for change in changes:
        graph.add_node(change.id)
        for dep in change.depends_on:
            if dep in ids:
                graph.add_edge(dep, change.id)
    depth: dict[str, int] = {}
    for node in nx.lexicographical_topological_sort(graph):
        depth[node] = 1 + max((depth[p] for p in graph.predecessors(node)), default=0)
    return depth


_DOT_COLORS = {
    Action.CREATE: "darkgreen",
    Action.UPDATE: "goldenrod",
    Action.REPLACE: "magenta",
    Action.DELETE: "red",
    Action.ADOPT: "blue",
    Action.NOOP: "gray",
}


def to_dot(changes: Sequence[Change]) -> str:
    """Graphviz DOT source for the changes and their ``depends_on`` edges."""
    ids = {c.id for c in changes}
    lines = ["digraph plan {", "  rankdir=LR;", '  node [shape=box, fontname="monospace"];']
    for change in changes:
        label = f"{change.action.symbol} {change.action.value} {change.key}"
        if change.id != f"{change.action.value}:{change.key}":
            label += f" ({change.id.partition('#')[2]})"
        lines.append(f"  {json.dumps(change.id)} [label={json.dumps(label)}, "
                     f"color={_DOT_COLORS[change.action]}];")
    for change in changes:
        for dep in change.depends_on:
            if dep in ids:
                lines.append(f"  {json.dumps(dep)} -> {json.dumps(change.id)};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def to_text(changes: Sequence[Change]) -> str:
    """The changes by level: everything on one level can run at once, after the levels above.

    ``1. + create shop/db/0``, then ``2. + create shop/web/0  (after create:shop/db/0)``.
    """
    if not changes:
        return "No changes.\n"
    depth = levels(changes)
    position = {c.id: i for i, c in enumerate(changes)}
    lines = []
    for change in sorted(changes, key=lambda c: (depth[c.id], position[c.id])):
        line = f"{depth[change.id]}. {change.action.symbol} {change.action.value} {change.key}"
        if "#" in change.id:
            line += f" ({change.id.partition('#')[2]})"
        if change.action is Action.REPLACE:
            line += " [create before destroy]"
        if change.depends_on:
            line += f"  (after {', '.join(change.depends_on)})"
        lines.append(line)
    return "\n".join(lines) + "\n"
