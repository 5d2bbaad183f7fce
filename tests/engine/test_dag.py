"""The generic DAG walker (reconciler.core.dag), on real threads: order, limits, skips, crashes, scale."""

from __future__ import annotations

import itertools
import random
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import pytest

from reconciler.core.dag import CycleError, walk


@dataclass(frozen=True)
class Result:
    node: str
    ok: bool
    why: str = ""


@dataclass
class Recorder:
    """Runs nodes for ``walk`` and records what happened, from whichever thread.

    ``fail``: nodes whose run returns a failed result; ``raise_in``: nodes whose run raises.
    """

    graph: Mapping[str, Sequence[str]]
    group_of: Callable[[str], str] = lambda _node: "g"
    fail: frozenset[str] = frozenset()
    raise_in: frozenset[str] = frozenset()
    delay: Callable[[str], float] = lambda _node: 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)
    clock: itertools.count[int] = field(default_factory=itertools.count)
    started: dict[str, int] = field(default_factory=dict)
    ended: dict[str, int] = field(default_factory=dict)
    active: dict[str, int] = field(default_factory=dict)
    most: dict[str, int] = field(default_factory=dict)
    active_total: int = 0
    most_total: int = 0
    skips: list[tuple[str, str]] = field(default_factory=list)
    done: list[tuple[str, Result]] = field(default_factory=list)
    callback_threads: set[int] = field(default_factory=set)

    def run(self, node: str) -> Result:
        group = self.group_of(node)
        with self.lock:
            self.started[node] = next(self.clock)
            self.active[group] = self.active.get(group, 0) + 1
            self.most[group] = max(self.most.get(group, 0), self.active[group])
            self.active_total += 1
            self.most_total = max(self.most_total, self.active_total)
        try:
            wait = self.delay(node)
            if wait:
                time.sleep(wait)
            if node in self.raise_in:
                raise RuntimeError(f"bug in {node}")
            return Result(node, node not in self.fail)
        finally:
            with self.lock:
                self.active[group] -= 1
                self.active_total -= 1
                self.ended[node] = next(self.clock)

    def skip(self, node: str, upstream: str) -> Result:
        self.callback_threads.add(threading.get_ident())
        self.skips.append((node, upstream))
        return Result(node, False, f"skipped because {upstream} did not succeed")

    def on_done(self, node: str, result: Result) -> None:
        self.callback_threads.add(threading.get_ident())
        self.done.append((node, result))

    def walk(
        self,
        nodes: Iterable[str] | None = None,
        *,
        limits: Mapping[str, int] | None = None,
        max_workers: int = 4,
        crashed: Callable[[str, Exception], Result] | None = None,
    ) -> list[Result]:
        return walk(
            list(self.graph) if nodes is None else nodes,
            deps=lambda node: self.graph.get(node, ()),
            run=self.run,
            succeeded=lambda result: result.ok,
            skip=self.skip,
            group=self.group_of,
            limits={"g": 4} if limits is None else limits,
            max_workers=max_workers,
            on_done=self.on_done,
            crashed=crashed,
            thread_name_prefix="dagtest",
        )

    def assert_ran_after_deps(self) -> None:
        for node, upstream in self.graph.items():
            if node in self.started:
                for dep in upstream:
                    if dep in self.graph:
                        assert self.ended[dep] < self.started[node], (dep, node)


def walker_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("dagtest")]


def random_dag(count: int, seed: int) -> dict[str, list[str]]:
    rng = random.Random(seed)
    graph: dict[str, list[str]] = {}
    for i in range(count):
        earlier = rng.sample(range(i), min(i, rng.randint(0, 4)))
        graph[f"n{i}"] = [f"n{j}" for j in earlier]
    names = list(graph)
    rng.shuffle(names)  # the walk must not rely on the given order being topological
    return {name: graph[name] for name in names}


def test_every_node_runs_after_all_its_dependencies_and_results_keep_the_given_order() -> None:
    graph = random_dag(300, seed=7)
    rng = random.Random(3)
    pauses = {node: rng.choice([0.0, 0.0, 0.0005, 0.001]) for node in graph}
    groups = {node: f"g{rng.randrange(3)}" for node in graph}
    rec = Recorder(graph, group_of=groups.__getitem__, delay=pauses.__getitem__)

    results = rec.walk(limits={"g0": 2, "g1": 3, "g2": 1}, max_workers=5)

    assert [r.node for r in results] == list(graph)
    assert all(r.ok for r in results)
    assert set(rec.started) == set(graph)
    rec.assert_ran_after_deps()
    assert walker_threads() == []


def test_each_group_runs_exactly_as_many_at_once_as_its_limit() -> None:
    limits = {"one": 1, "two": 2, "four": 4}
    graph: dict[str, list[str]] = {f"{group}-{i}": [] for group in limits for i in range(12)}
    rec = Recorder(graph, group_of=lambda node: node.split("-")[0], delay=lambda _node: 0.01)

    rec.walk(limits=limits, max_workers=sum(limits.values()))

    assert rec.most == limits
    assert rec.most_total <= sum(limits.values())


def test_max_workers_caps_the_runs_over_all_groups() -> None:
    graph: dict[str, list[str]] = {f"{group}-{i}": [] for group in ("a", "b") for i in range(10)}
    rec = Recorder(graph, group_of=lambda node: node.split("-")[0], delay=lambda _node: 0.01)

    rec.walk(limits={"a": 4, "b": 4}, max_workers=3)

    assert rec.most_total == 3
    assert all(most <= 3 for most in rec.most.values())
    assert len(rec.started) == 20


def test_a_failure_skips_the_whole_chain_below_it_each_naming_the_node_above() -> None:
    chain = {f"c{i}": ([f"c{i - 1}"] if i else []) for i in range(1000)}
    rec = Recorder(chain, fail=frozenset({"c0"}))

    results = rec.walk()

    assert list(rec.started) == ["c0"]
    assert rec.skips == [(f"c{i}", f"c{i - 1}") for i in range(1, 1000)]
    expected = [f"skipped because c{i - 1} did not succeed" for i in range(1, 1000)]
    assert [r.why for r in results[1:]] == expected
    assert [node for node, _ in rec.done] == list(chain)


def test_diamond_with_a_failed_side_skips_the_bottom_naming_that_side_and_runs_the_other() -> None:
    diamond = {"a": [], "b": ["a"], "c": ["a"], "d": ["b", "c"], "x": [], "y": ["x"]}
    rec = Recorder(diamond, fail=frozenset({"b"}), delay=lambda node: 0.05 if node == "c" else 0.0)

    results = dict(zip(diamond, rec.walk(), strict=True))

    assert rec.skips == [("d", "b")]  # skipped as soon as b failed, while c still ran
    assert results["d"].why == "skipped because b did not succeed"
    assert results["c"].ok and results["y"].ok
    assert set(rec.started) == {"a", "b", "c", "x", "y"}


def test_diamond_with_a_failed_top_skips_every_node_below_once() -> None:
    diamond = {"a": [], "b": ["a"], "c": ["a"], "d": ["b", "c"], "x": [], "y": ["x"]}
    rec = Recorder(diamond, fail=frozenset({"a"}))

    results = dict(zip(diamond, rec.walk(), strict=True))

    named = dict(rec.skips)
    assert len(rec.skips) == 3 and named["b"] == "a" and named["c"] == "a"
    assert named["d"] in {"b", "c"}  # the skipped node above it
    assert results["d"].why == f"skipped because {named['d']} did not succeed"
    assert set(rec.started) == {"a", "x", "y"}  # the unrelated branch still ran
    assert results["y"].ok


def test_on_done_hears_of_every_node_once_upstream_first_in_the_coordinating_thread() -> None:
    graph = random_dag(200, seed=11)
    failing = frozenset(list(graph)[::17])
    rec = Recorder(graph, fail=failing)

    results = rec.walk(max_workers=3)

    done_nodes = [node for node, _ in rec.done]
    assert sorted(done_nodes) == sorted(graph)
    position = {node: i for i, node in enumerate(done_nodes)}
    for node in rec.started:  # a node that ran was heard of after every node it waited for
        for dep in graph[node]:
            assert position[dep] < position[node], (dep, node)
    for node, upstream in rec.skips:  # a skipped node after the one it names (others may still run)
        assert position[upstream] < position[node], (upstream, node)
    assert dict(rec.done) == dict(zip(graph, results, strict=True))
    assert rec.callback_threads == {threading.get_ident()}
    assert rec.skips  # some nodes were skipped, each once
    assert len({node for node, _ in rec.skips}) == len(rec.skips)


def test_a_cycle_is_refused_before_anything_runs_and_named() -> None:
    graph = {"free": [], "a": ["c"], "b": ["a"], "c": ["b"], "after": ["a"]}
    rec = Recorder(graph)

    with pytest.raises(CycleError) as caught:
        rec.walk()

    assert caught.value.cycle in {("a", "b", "c", "a"), ("b", "c", "a", "b"), ("c", "a", "b", "c")}
    assert str(caught.value).startswith("dependency cycle: ")
    assert isinstance(caught.value, ValueError)
    assert rec.started == {} and walker_threads() == []


def test_a_node_depending_on_itself_is_a_cycle() -> None:
    with pytest.raises(CycleError, match="dependency cycle: solo -> solo"):
        Recorder({"solo": ["solo"]}).walk()


def test_bad_arguments_are_refused_before_anything_runs() -> None:
    rec = Recorder({"a": [], "b": ["a"]}, group_of=lambda node: "known" if node == "a" else "nowhere")
    with pytest.raises(ValueError, match="'b' is in group 'nowhere', which has no limit"):
        rec.walk(limits={"known": 1})
    with pytest.raises(ValueError, match="given twice"):
        rec.walk(["a", "a"], limits={"known": 1, "nowhere": 1})
    with pytest.raises(ValueError, match="at least 1"):
        rec.walk(limits={"known": 0, "nowhere": 1})
    with pytest.raises(ValueError, match="max_workers"):
        rec.walk(limits={"known": 1, "nowhere": 1}, max_workers=0)
    assert rec.started == {}


def test_dependencies_outside_the_walk_and_repeats_are_ignored() -> None:
    rec = Recorder({"a": ["elsewhere"], "b": ["a", "a", "elsewhere"]})

    results = rec.walk()

    assert [r.ok for r in results] == [True, True]
    assert rec.ended["a"] < rec.started["b"]


def test_nothing_to_walk_returns_nothing() -> None:
    assert Recorder({}).walk() == []


def test_a_crash_in_run_becomes_the_crashed_result_and_the_walk_completes() -> None:
    graph = {"a": [], "boom": ["a"], "below": ["boom"], "other": ["a"]}
    rec = Recorder(graph, raise_in=frozenset({"boom"}))
    seen: list[tuple[str, str]] = []

    def crashed(node: str, exc: Exception) -> Result:
        seen.append((node, repr(exc)))
        return Result(node, False, f"internal error: {exc!r}")

    results = dict(zip(graph, rec.walk(crashed=crashed), strict=True))

    assert seen == [("boom", "RuntimeError('bug in boom')")]
    assert results["boom"].why == "internal error: RuntimeError('bug in boom')"
    assert rec.skips == [("below", "boom")]
    assert results["other"].ok
    assert walker_threads() == []


def test_without_crashed_a_crash_aborts_the_walk_after_the_running_nodes_end() -> None:
    graph = {"slow": [], "boom": [], "after-slow": ["slow"], "after-boom": ["boom"]}
    rec = Recorder(
        graph,
        group_of=lambda node: "slow" if "slow" in node else "boom",
        raise_in=frozenset({"boom"}),
        delay=lambda node: 0.1 if node == "slow" else 0.0,
    )

    with pytest.raises(RuntimeError, match="bug in boom"):
        rec.walk(limits={"slow": 1, "boom": 1})

    assert "slow" in rec.ended  # waited for, not left running
    assert "after-slow" not in rec.started and "after-boom" not in rec.started
    assert walker_threads() == []


def test_an_exception_from_a_callback_of_the_coordinator_ends_the_walk_and_its_threads() -> None:
    graph: dict[str, list[str]] = {f"n{i}": [] for i in range(20)}
    rec = Recorder(graph, delay=lambda _node: 0.01)

    def on_done(node: str, result: Result) -> None:
        raise LookupError(f"progress display broke at {node}")

    with pytest.raises(LookupError, match="progress display broke"):
        walk(
            list(graph),
            deps=lambda node: graph[node],
            run=rec.run,
            succeeded=lambda result: result.ok,
            skip=rec.skip,
            group=lambda _node: "g",
            limits={"g": 2},
            max_workers=2,
            on_done=on_done,
            thread_name_prefix="dagtest",
        )

    assert 1 <= len(rec.started) <= 3  # what ran before the first result, and nothing after
    assert rec.ended.keys() == rec.started.keys()
    assert walker_threads() == []


def test_a_base_exception_in_run_is_not_taken_for_a_crash() -> None:
    graph = {"exit": [], "later": ["exit"]}

    def run(node: str) -> Result:
        raise SystemExit(3)

    def crashed(node: str, exc: Exception) -> Result:
        raise AssertionError("SystemExit is not a bug of run")

    with pytest.raises(SystemExit):
        walk(
            list(graph),
            deps=lambda node: graph[node],
            run=run,
            succeeded=lambda result: result.ok,
            skip=lambda node, upstream: Result(node, False),
            group=lambda _node: "g",
            limits={"g": 1},
            max_workers=1,
            crashed=crashed,
            thread_name_prefix="dagtest",
        )
    assert walker_threads() == []


def layered(layers: int, width: int, fan_in: int, seed: int) -> list[list[int]]:
    """deps[i] for ``layers * width`` nodes: each node past the first layer waits for ``fan_in``
    distinct nodes of the layer above."""
    rng = random.Random(seed)
    deps: list[list[int]] = [[] for _ in range(width)]
    for layer in range(1, layers):
        above = range((layer - 1) * width, layer * width)
        deps.extend(rng.sample(above, fan_in) for _ in range(width))
    return deps


def test_a_hundred_thousand_nodes_walk_in_a_few_seconds_in_dependency_order() -> None:
    deps = layered(layers=100, width=1000, fan_in=2, seed=5)  # 100,000 nodes, 198,000 edges
    count = len(deps)
    ticks = itertools.count()
    started = [-1] * count
    ended = [-1] * count

    def run(node: int) -> bool:
        started[node] = next(ticks)  # itertools.count is atomic under the GIL
        ended[node] = next(ticks)
        return True

    began = time.perf_counter()
    results = walk(
        range(count),
        deps=deps.__getitem__,
        run=run,
        succeeded=bool,
        skip=lambda node, upstream: False,
        group=lambda node: node % 4,
        limits={0: 2, 1: 2, 2: 2, 3: 2},
        max_workers=8,
        thread_name_prefix="dagtest",
    )
    elapsed = time.perf_counter() - began

    assert len(results) == count and all(results)
    assert min(started) >= 0
    assert all(ended[dep] < started[node] for node in range(count) for dep in deps[node])
    assert elapsed < 8.0, f"100,000 nodes took {elapsed:.2f} s"
    assert walker_threads() == []
