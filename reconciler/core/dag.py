"""dag: a generic walker that runs the nodes of a dependency graph on worker threads.

``walk`` knows nothing of plans, providers or stores: nodes are hashable ids, and the
caller says what each waits for, what running one means, whether a result lets the
dependents go on, and how to describe a node skipped because an upstream did not succeed.
Apply uses it to carry out a plan's changes (``reconciler.run.executor``); anything else
shaped like "run these in dependency order, so many at a time per group" can too.

The walk, in short:

* a node starts once every node it depends on has finished *and succeeded*; it runs in a
  worker thread, at most ``limits[g]`` at once in its group ``g`` and at most
  ``max_workers`` at once in all;
* when a node's result did not succeed, each dependent not yet settled is skipped at once
  (``skip`` names the failed node), and so on down the graph: a node skipped names the
  skipped node above it. Branches that do not depend on the failure go on;
* ``on_done`` hears of every node, run or skipped, in the coordinating thread, in the
  order they settle;
* the results come back in the order the nodes were given.

Everything is linear in nodes + edges: dependency counters and per-group ready queues,
never a scan of all nodes per step. The graph is checked before anything runs: a cycle
is a ``CycleError`` (a ``ValueError``) naming one, and a node whose group has no limit is
a ``ValueError``.
"""

from __future__ import annotations

import queue
import threading
from collections import deque
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from typing import TypeVar, cast

__all__ = ["CycleError", "walk"]

N = TypeVar("N", bound=Hashable)
G = TypeVar("G", bound=Hashable)
R = TypeVar("R")


class CycleError(ValueError):
    """The nodes depend on each other in a circle; ``cycle`` lists one, first node repeated last.

    Read ``cycle`` as "each must finish before the next": ``[a, b, a]`` means b waits for
    a and a waits for b.
    """

    def __init__(self, cycle: Sequence[Hashable]) -> None:
        self.cycle = tuple(cycle)
        super().__init__("dependency cycle: " + " -> ".join(str(node) for node in self.cycle))


def walk(
    nodes: Iterable[N],
    *,
    deps: Callable[[N], Iterable[N]],
    run: Callable[[N], R],
    succeeded: Callable[[R], bool],
    skip: Callable[[N, N], R],
    group: Callable[[N], G],
    limits: Mapping[G, int],
    max_workers: int,
    on_done: Callable[[N, R], None] | None = None,
    crashed: Callable[[N, Exception], R] | None = None,
    thread_name_prefix: str = "dag",
) -> list[R]:
    """Run every node after the nodes it depends on; return the results in ``nodes``' order.

    ``nodes``: distinct hashable ids (a repeated id is a ``ValueError``).

    ``deps(node)``: the ids ``node`` waits for. Ids that are not among ``nodes`` are
    ignored, and so are repeats. Called once per node, before anything runs.

    ``run(node)``: does the work, in a worker thread, and returns the node's result. It
    should turn its own errors into results; see ``crashed`` for an exception escaping it.

    ``succeeded(result)``: whether the dependents of a node that ran may start. Called in
    the coordinating thread, once per node that ran.

    ``skip(node, upstream)``: the result of ``node``, which will not run because
    ``upstream`` — one of the nodes it depends on directly — did not succeed or was itself
    skipped. Called in the coordinating thread, once per skipped node, as soon as the first
    such upstream settles (another upstream of the node may still be running then). The
    dependents of a skipped node are always skipped in turn, whatever ``succeeded`` would
    say of the result ``skip`` made.

    ``group(node)`` and ``limits``: at most ``limits[group(node)]`` nodes of a group run at
    once; every node's group must be in ``limits`` and every limit must be at least 1.
    ``max_workers`` (at least 1) caps the runs at once over all groups, and so the worker
    threads. Among ready nodes of one group, the one that became ready first starts first;
    groups take turns for free workers.

    ``on_done(node, result)``: called in the coordinating thread for every node, run or
    skipped, once, in the order they settle; for a node that ran, before any dependent of
    it starts or is skipped.

    ``crashed(node, exc)``: the result of a node whose ``run`` raised ``exc`` (an
    ``Exception``; a bug, since ``run`` is expected to return errors as results). Called in
    the worker thread inside the exception handler, so ``sys.exc_info()`` and
    ``logging``'s ``exception()`` see the error. The result then goes through
    ``succeeded`` like any other. Without ``crashed``, such an exception aborts the walk.

    Aborting: when ``run`` raises with no ``crashed`` to catch it, when ``crashed`` raises,
    when ``run`` raises a ``BaseException`` that is not an ``Exception`` (``SystemExit``,
    say), or when a callback of the coordinating thread (``succeeded``, ``skip``,
    ``on_done``) raises, no further node starts, the nodes already running are waited for
    (their results are dropped, ``on_done`` does not hear of them), and the exception is
    raised from ``walk``. Either way, ``walk`` returns or raises only once all its worker
    threads have ended.

    Raises ``CycleError`` (a ``ValueError``) for a dependency cycle, and ``ValueError`` for a
    repeated node, a node whose group has no limit, a limit below 1 or ``max_workers`` below
    1 — all before anything runs.
    """
    order = list(nodes)
    count = len(order)
    index: dict[N, int] = {}
    for position, node in enumerate(order):
        if node in index:
            raise ValueError(f"node {node!r} is given twice")
        index[node] = position
    if max_workers < 1:
        raise ValueError(f"max_workers must be at least 1, not {max_workers}")
    for name, limit in limits.items():
        if limit < 1:
            raise ValueError(f"the limit of group {name!r} must be at least 1, not {limit}")
    groups = [group(node) for node in order]
    for node, name in zip(order, groups, strict=True):
        if name not in limits:
            raise ValueError(f"node {node!r} is in group {name!r}, which has no limit")

    # waiting[i]: how many of i's upstream nodes have not yet succeeded;
    # dependents[j]: the nodes that wait for j, in the given order.
    waiting = [0] * count
    dependents: list[list[int]] = [[] for _ in range(count)]
    for position, node in enumerate(order):
        upstream = {index[dep] for dep in deps(node) if dep in index}
        waiting[position] = len(upstream)
        for up in upstream:
            dependents[up].append(position)
    _refuse_cycles(order, waiting, dependents)

    results: list[R | None] = [None] * count
    settled = bytearray(count)
    ready: dict[G, deque[int]] = {name: deque() for name in limits}
    running: dict[G, int] = dict.fromkeys(limits, 0)
    turns: deque[G] = deque()  # groups with a ready node and a free slot, each at most once
    in_turns: set[G] = set()
    todo: queue.SimpleQueue[int | None] = queue.SimpleQueue()
    finished: queue.SimpleQueue[tuple[int, object, BaseException | None]] = queue.SimpleQueue()
    stopping = threading.Event()
    threads: list[threading.Thread] = []
    in_flight = 0

    def work() -> None:
        while True:
            position = todo.get()
            if position is None:
                return
            if stopping.is_set():  # the walk was abandoned: start nothing more
                continue
            node = order[position]
            try:
                try:
                    value: object = run(node)
                except Exception as exc:
                    if crashed is None:
                        raise
                    value = crashed(node, exc)
            except BaseException as exc:  # handed to the coordinating thread, which raises it
                finished.put((position, None, exc))
            else:
                finished.put((position, value, None))

    def make_ready(position: int) -> None:
        name = groups[position]
        ready[name].append(position)
        if name not in in_turns and running[name] < limits[name]:
            turns.append(name)
            in_turns.add(name)

    def dispatch() -> None:
        nonlocal in_flight
        while in_flight < max_workers and turns:
            name = turns.popleft()
            line = ready[name]
            todo.put(line.popleft())
            running[name] += 1
            in_flight += 1
            if in_flight > len(threads):  # every thread is busy: one more, up to max_workers
                thread = threading.Thread(
                    target=work, name=f"{thread_name_prefix}_{len(threads)}", daemon=True
                )
                threads.append(thread)
                thread.start()
            if line and running[name] < limits[name]:
                turns.append(name)
            else:
                in_turns.discard(name)

    def settle(position: int, result: R) -> None:
        """Record a node's result; start or skip whatever was waiting on it, transitively."""
        results[position] = result
        settled[position] = 1
        stack = [(position, result, True)]
        while stack:
            done, outcome, ran = stack.pop()
            if on_done is not None:
                on_done(order[done], outcome)
            go_on = ran and succeeded(outcome)
            for after in dependents[done]:
                if settled[after]:
                    continue
                if go_on:
                    waiting[after] -= 1
                    if not waiting[after]:
                        make_ready(after)
                    continue
                skipped = skip(order[after], order[done])
                results[after] = skipped
                settled[after] = 1
                stack.append((after, skipped, False))

    try:
        for position in range(count):
            if not waiting[position]:
                make_ready(position)
        dispatch()
        while in_flight:
            position, value, error = finished.get()
            in_flight -= 1
            name = groups[position]
            running[name] -= 1
            if ready[name] and name not in in_turns:
                turns.append(name)
                in_turns.add(name)
            if error is not None:
                raise error
            settle(position, cast(R, value))
            dispatch()
    finally:
        stopping.set()
        for _ in threads:
            todo.put(None)
        for thread in threads:
            thread.join()
    return cast(list[R], results)


def _refuse_cycles(
    order: Sequence[Hashable], waiting: Sequence[int], dependents: Sequence[list[int]]
) -> None:
    """Raise ``CycleError`` naming one cycle, when the graph has any (Kahn's algorithm)."""
    remaining = list(waiting)
    stack = [position for position, count in enumerate(remaining) if not count]
    reached = 0
    while stack:
        position = stack.pop()
        reached += 1
        for after in dependents[position]:
            remaining[after] -= 1
            if not remaining[after]:
                stack.append(after)
    if reached == len(order):
        return
    # Every node left waits for at least one other node left: follow those back until one repeats.
    upstream: dict[int, int] = {}
    for position, count in enumerate(remaining):
        if count:
            for after in dependents[position]:
                if remaining[after]:
                    upstream.setdefault(after, position)
    start = next(iter(upstream))
    seen: dict[int, int] = {}
    path: list[int] = []
    node = start
    while node not in seen:
        seen[node] = len(path)
        path.append(node)
        node = upstream[node]
    loop = path[seen[node] :]  # each waits for the next
    loop.reverse()  # each must finish before the next
    raise CycleError([order[position] for position in [*loop, loop[0]]])
