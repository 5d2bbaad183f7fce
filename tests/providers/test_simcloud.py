"""simcloud beyond the conformance suite: shared state, fault injection, admin, metrics, scale."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from providers.simcloud.admin import (
    admin_delete,
    admin_edit,
    admin_fail,
    admin_inject_faults,
    admin_list,
    admin_stop,
)
from providers.simcloud.provider import KILL_AFTER_ENV, SimCloud
from providers.simcloud.spec import LEDGER_FILE
from providers.simcloud.storage import connect
from reconciler.core.clock import Clock
from reconciler.core.errors import PermanentError, TransientError, UserError
from reconciler.core.model import (
    CreateRequest,
    ProviderConfig,
    ServerStatus,
    Size,
    SnapshotRequest,
    UpdateRequest,
    idempotency_token,
    server_name,
)
from reconciler.core.provider import Provider, ProviderContext, create_provider, provider_class
from reconciler.store import DEFAULT_FILE, open_store

REPO = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)
SMALL = Size(cpus=2, memory_mb=2048, disk_gb=20)
OWNER = "shop-prod"


def make_sim(state_dir: Path, name: str = "sim", clock: Clock | None = None, **spec: Any) -> SimCloud:
    context = ProviderContext(state_dir=state_dir, clock=clock or Clock(fixed=NOW))
    provider = create_provider(ProviderConfig(name=name, type="simcloud", spec=spec), context)
    assert isinstance(provider, SimCloud)
    return provider


def request(key: str, *, owner: str = OWNER, generation: int = 0, user_data: str = "") -> CreateRequest:
    cluster, member, _ = key.split("/")
    return CreateRequest(
        owner=owner,
        key=key,
        name=server_name(key, generation),
        token=idempotency_token(owner, key, "abc", generation),
        generation=generation,
        spec_hash="abc",
        image="ubuntu-24.04",
        size=SMALL,
        flavor=None,
        user_data=user_data,
        cluster=cluster,
        member=member,
    )


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[SimCloud]:
    provider = make_sim(tmp_path)
    yield provider
    provider.close()


def _run_python(code: str, state_dir: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("RECONCILER_")}
    environment.update({"PYTHONPATH": str(REPO), "STATE_DIR": str(state_dir), **env})
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )


_CREATE_FIVE = """
    import os
    from pathlib import Path
    from tests.providers.test_simcloud import make_sim, request
    sim = make_sim(Path(os.environ["STATE_DIR"]))
    for i in range(5):
        sim.create(request(f"shop/web/{i}"))
    print("finished")
"""


# --- shared state -----------------------------------------------------------------------
def test_instances_and_processes_share_one_world(sim: SimCloud, tmp_path: Path) -> None:
    other = make_sim(tmp_path)
    created = sim.create(request("shop/web/0"))
    assert [s.resource_id for s in other.observe(OWNER)] == [created.resource_id]

    result = _run_python(_CREATE_FIVE, tmp_path)
    assert result.returncode == 0, result.stderr
    keys = sorted(s.key for s in sim.observe(OWNER))
    assert keys == [f"shop/web/{i}" for i in range(5)]  # web/0 was found by token, not made twice
    other.close()


def test_provider_documents_sharing_a_file_see_only_their_own(tmp_path: Path) -> None:
    east, west = make_sim(tmp_path, "east"), make_sim(tmp_path, "west")
    mine = east.create(request("shop/web/0"))
    west.create(request("shop/web/1"))
    assert [s.resource_id for s in east.observe(OWNER)] == [mine.resource_id]
    assert west.lookup(OWNER, mine.token) is None
    assert {row["provider"] for row in admin_list(tmp_path)} == {"east", "west"}


def test_state_file_names_a_file_in_the_state_dir(tmp_path: Path) -> None:
    custom = make_sim(tmp_path, state_file="alt-world_2.db")
    custom.create(request("shop/web/0"))
    assert (tmp_path / "alt-world_2.db").exists()
    assert make_sim(tmp_path).observe(OWNER) == []
    assert [r["key"] for r in admin_list(tmp_path, state_file="alt-world_2.db")] == ["shop/web/0"]


def test_a_linked_state_file_shares_one_world_between_state_dirs(tmp_path: Path) -> None:
    """How reconcilers with state directories of their own share a cloud: a link the operator makes."""
    (tmp_path / "cloud").mkdir()
    for replica in ("one", "two"):
        (tmp_path / replica).mkdir()
        (tmp_path / replica / "sim.db").symlink_to(Path("..") / "cloud" / "sim.db")
    made = make_sim(tmp_path / "one", state_file="sim.db").create(request("shop/web/0"))
    assert [s.resource_id for s in make_sim(tmp_path / "two", state_file="sim.db").observe(OWNER)] == [
        made.resource_id
    ]
    assert (tmp_path / "cloud" / "sim.db").is_file()


# Names that would put the world elsewhere than a file of its own in the state directory. The
# schema refuses them at validate (tests/config/bad_cases_spec.py); the provider and the admin
# functions refuse them again for a config that never met the schema (say, read from a plan file).
NOT_A_NAME = "is not a plain file name in the state directory"
THE_LEDGER = "is the reconciler's own ledger file"


@pytest.mark.parametrize(
    ("state_file", "problem"),
    [
        ("/srv/elsewhere/escaped.db", NOT_A_NAME),
        ("../escaped.db", NOT_A_NAME),
        ("../../escaped.db", NOT_A_NAME),
        ("worlds/alt.db", NOT_A_NAME),
        ("worlds\\alt.db", NOT_A_NAME),
        ("..", NOT_A_NAME),
        (".", NOT_A_NAME),
        (".hidden.db", NOT_A_NAME),
        ("", NOT_A_NAME),
        ("sim\x00.db", NOT_A_NAME),
        ("sim.db\n", NOT_A_NAME),
        ("sim.sqlite", NOT_A_NAME),
        ("state.db", THE_LEDGER),
        ("State.db", THE_LEDGER),
        ("x" * 300 + ".db", "is longer than 255 characters"),
    ],
)
def test_a_state_file_that_is_not_a_plain_name_is_refused(
    tmp_path: Path, state_file: str, problem: str
) -> None:
    state_dir = tmp_path / "state"
    with pytest.raises(UserError) as caught:
        make_sim(state_dir, state_file=state_file)
    assert caught.value.diagnostics[0].message.startswith(
        f"simcloud provider sim: spec.state_file {state_file!r} {problem}"
    )
    refused = f"simcloud spec.state_file {state_file!r} {problem}"
    for attempt in (
        lambda: admin_list(state_dir, state_file=state_file),
        lambda: admin_inject_faults(state_dir, kind="transient", count=1, state_file=state_file),
        lambda: admin_fail(state_dir, "shop/web/0", state_file=state_file),
    ):
        with pytest.raises(UserError) as caught:
            attempt()
        assert caught.value.diagnostics[0].message.startswith(refused)
    assert list(tmp_path.rglob("*")) == [], "a file was written"


def test_a_state_file_that_is_not_a_string_is_refused(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="spec.state_file 7 is not a plain file name"):
        make_sim(tmp_path, state_file=7)


def test_the_refused_ledger_name_is_the_stores(tmp_path: Path) -> None:
    assert LEDGER_FILE == DEFAULT_FILE
    store = open_store(tmp_path)
    store.close()
    assert [p.name for p in tmp_path.iterdir() if p.suffix == ".db"] == [LEDGER_FILE]


def test_parallel_creates_from_many_threads(sim: SimCloud) -> None:
    errors: list[BaseException] = []

    def work(start: int) -> None:
        try:
            for i in range(start, 40, 8):
                sim.create(request(f"shop/web/{i}"))
                sim.create(request("shop/db/0"))  # every thread races to make the same server
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    seen = sim.observe(OWNER)
    assert len(seen) == 41 and len({s.resource_id for s in seen}) == 41
    assert sum(1 for s in seen if s.key == "shop/db/0") == 1


@pytest.mark.parametrize("threads", [4, 8, 16])
def test_many_first_connections_to_a_new_file_all_succeed(tmp_path: Path, threads: int) -> None:
    """Switching a new file to WAL fails at once ("database is locked", no busy wait) while another
    connection holds a lock: ``connect`` waits that out, so a crowd opening one new file all succeed."""

    def open_one(path: Path, start: threading.Barrier, errors: list[BaseException]) -> None:
        try:
            start.wait()
            connect(path).close()
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    for round_ in range(10):
        path = tmp_path / f"round{round_}" / "simcloud.db"
        errors: list[BaseException] = []
        start = threading.Barrier(threads)
        crowd = [threading.Thread(target=open_one, args=(path, start, errors)) for _ in range(threads)]
        for thread in crowd:
            thread.start()
        for thread in crowd:
            thread.join()
        assert errors == []
        with sqlite3.connect(path) as conn:
            assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_parallel_first_calls_of_many_providers_on_one_new_file(tmp_path: Path) -> None:
    """Each provider object opens its own connections: eight of them racing on a new file."""
    sims = [make_sim(tmp_path, name=f"sim{n}") for n in range(8)]
    errors: list[BaseException] = []

    def work(sim: SimCloud) -> None:
        try:
            sim.create(request("shop/web/0"))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    crowd = [threading.Thread(target=work, args=(sim,)) for sim in sims]
    for thread in crowd:
        thread.start()
    for thread in crowd:
        thread.join()
    try:
        assert errors == []
        assert all(len(sim.observe(OWNER)) == 1 for sim in sims)
    finally:
        for sim in sims:
            sim.close()


# --- the spec -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"colour": "blue"}, "unknown spec field(s) colour"),
        ({"page_size": "ten"}, "spec.page_size must be an integer"),
        ({"error_rate": 1.5}, "error_rate between 0 and 1"),
        ({"page_size": 0}, "page_size must be ≥ 1"),
        ({"page_size": 100_001}, "at most: page_size 100000"),
        ({"latency_ms": 60_001}, "latency_ms 60000"),
        ({"latency_ms": -1}, "latency_ms ≥ 0"),
        ({"capacity": 10_000_001}, "capacity 10000000"),
    ],
)
def test_bad_spec_is_a_user_error(tmp_path: Path, spec: dict[str, Any], message: str) -> None:
    with pytest.raises(UserError, match=message.replace("(", r"\(").replace(")", r"\)")):
        make_sim(tmp_path, **spec)


def test_latency_is_spent_on_every_call(tmp_path: Path) -> None:
    slow = make_sim(tmp_path, latency_ms=30)
    started = time.perf_counter()
    slow.observe(OWNER)
    slow.lookup(OWNER, "no-such-token")
    assert time.perf_counter() - started >= 0.06


# --- faults -------------------------------------------------------------------------------
def _failure_pattern(provider: SimCloud, calls: int) -> list[bool]:
    pattern = []
    for _ in range(calls):
        try:
            provider.lookup(OWNER, "token")
            pattern.append(False)
        except TransientError:
            pattern.append(True)
    return pattern


def test_error_rate_is_deterministic_by_seed(tmp_path: Path) -> None:
    first = _failure_pattern(make_sim(tmp_path / "a", error_rate=0.4, seed=7), 200)
    again = _failure_pattern(make_sim(tmp_path / "b", error_rate=0.4, seed=7), 200)
    other = _failure_pattern(make_sim(tmp_path / "c", error_rate=0.4, seed=8), 200)
    assert first == again
    assert first != other
    assert 0.25 < sum(first) / len(first) < 0.55
    assert not any(_failure_pattern(make_sim(tmp_path / "d", seed=7), 50))


def test_injected_faults_match_provider_and_operation(sim: SimCloud, tmp_path: Path) -> None:
    admin_inject_faults(tmp_path, provider="elsewhere", kind="permanent", count=5)
    admin_inject_faults(tmp_path, provider="sim", operation="create", kind="transient", count=2)
    assert sim.observe(OWNER) == []  # neither fault matches a listing call of "sim"
    for _ in range(2):
        with pytest.raises(TransientError, match="injected transient fault"):
            sim.create(request("shop/web/0"))
    sim.create(request("shop/web/0"))

    admin_inject_faults(tmp_path, operation="list_servers", kind="permanent", count=1)
    with pytest.raises(PermanentError, match="list_servers: injected permanent fault"):
        sim.observe(OWNER)
    assert len(sim.observe(OWNER)) == 1
    with pytest.raises(UserError, match="fault kind"):
        admin_inject_faults(tmp_path, kind="flaky", count=1)


def test_capacity_is_a_permanent_error(tmp_path: Path) -> None:
    small = make_sim(tmp_path, capacity=2)
    first = small.create(request("shop/web/0"))
    small.create(request("shop/web/1"))
    with pytest.raises(PermanentError, match="capacity exceeded"):
        small.create(request("shop/web/2"))
    assert small.create(request("shop/web/0")).resource_id == first.resource_id  # idempotent, not new
    small.delete(first)
    small.create(request("shop/web/2"))


def test_kill_after_dies_by_sigkill_after_nth_committed_mutation(tmp_path: Path) -> None:
    result = _run_python(_CREATE_FIVE, tmp_path, **{KILL_AFTER_ENV: "2"})
    assert result.returncode == -signal.SIGKILL, result.stderr
    assert "finished" not in result.stdout
    assert sorted(row["key"] for row in admin_list(tmp_path)) == ["shop/web/0", "shop/web/1"]


# --- updates ------------------------------------------------------------------------------
def test_resize_needs_a_restart_while_running(sim: SimCloud) -> None:
    server = sim.create(request("shop/web/0"))
    bigger = Size(cpus=4, memory_mb=8192, disk_gb=20)
    with pytest.raises(PermanentError, match="restart"):
        sim.update(server, UpdateRequest(size=bigger, flavor=None, tags=(), allow_restart=False))
    sim.update(server, UpdateRequest(size=SMALL, flavor=None, tags=(("a", "b"),), allow_restart=False))

    stopped = sim.stop(server)
    resized = sim.update(stopped, UpdateRequest(size=bigger, flavor=None, tags=(), allow_restart=False))
    assert (resized.size, resized.status) == (bigger, ServerStatus.STOPPED)
    running = sim.update(sim.start(resized), UpdateRequest(size=SMALL, flavor="m1", tags=()))
    assert (running.size, running.flavor, running.status) == (SMALL, "m1", ServerStatus.RUNNING)

    with pytest.raises(PermanentError, match="disk"):
        sim.update(server, UpdateRequest(size=Size(2, 2048, 40), flavor=None, tags=()))


def test_user_data_is_stored_but_never_reported(sim: SimCloud) -> None:
    server = sim.create(request("shop/web/0", user_data="password=hunter2"))
    with sqlite3.connect(sim.path) as conn:
        assert conn.execute("SELECT user_data FROM servers").fetchone() == ("password=hunter2",)
    assert "hunter2" not in repr(sim.observe(OWNER)) + repr(server) + repr(admin_list(sim.path.parent))


# --- admin ----------------------------------------------------------------------------------
def test_admin_operations_act_behind_the_reconcilers_back(sim: SimCloud, tmp_path: Path) -> None:
    for i in range(3):
        sim.create(request(f"shop/web/{i}"))
    clock = Clock(fixed=NOW)
    listed = admin_list(tmp_path)
    assert [r["key"] for r in listed] == ["shop/web/0", "shop/web/1", "shop/web/2"]
    assert set(listed[0]) == {
        "key", "name", "provider", "status", "cpus", "memory_mb", "disk_gb", "flavor", "image",
        "resource_id", "created_at",
    }  # fmt: skip
    assert admin_fail(tmp_path, "shop/web/0", clock=clock)["status"] == "error"
    assert admin_stop(tmp_path, "shop/web/1", clock=clock)["status"] == "stopped"
    assert admin_edit(tmp_path, "shop/web/2", cpus=8, clock=clock)["cpus"] == 8
    seen = {s.key: s for s in sim.observe(OWNER)}
    assert seen["shop/web/0"].status is ServerStatus.ERROR
    assert seen["shop/web/1"].status is ServerStatus.STOPPED
    assert seen["shop/web/2"].size == Size(8, 2048, 20)

    admin_delete(tmp_path, "shop/web/2")
    assert sorted(s.key for s in sim.observe(OWNER)) == ["shop/web/0", "shop/web/1"]
    assert sim.start(seen["shop/web/0"]).status is ServerStatus.RUNNING  # failover by restart


def test_admin_acts_on_the_newest_generation(sim: SimCloud, tmp_path: Path) -> None:
    sim.create(request("shop/web/0"))
    newest = sim.create(request("shop/web/0", generation=1))
    assert admin_fail(tmp_path, "shop/web/0", clock=Clock(fixed=NOW))["resource_id"] == newest.resource_id


def test_admin_unknown_key_is_a_user_error(sim: SimCloud, tmp_path: Path) -> None:
    sim.create(request("shop/web/0"))
    expected = "no simcloud server has key shop/web/9; see `reconciler simcloud list`"
    for action in (admin_fail, admin_stop, admin_delete, admin_edit):
        with pytest.raises(UserError) as caught:
            action(tmp_path, "shop/web/9")
        assert caught.value.diagnostics[0].message == expected
    assert admin_list(tmp_path / "nowhere") == []
    with pytest.raises(UserError, match="shop/web/0"):
        admin_fail(tmp_path / "nowhere", "shop/web/0")


def test_the_admin_operations_are_offered_through_the_registry(sim: SimCloud, tmp_path: Path) -> None:
    """What ``reconciler simcloud`` uses: the type's FaultInjector, found without importing simcloud."""
    injector = provider_class("simcloud").fault_injector
    assert injector is not None and Provider.fault_injector is None
    for i in range(2):
        sim.create(request(f"shop/web/{i}"))
    assert injector.list_servers(tmp_path) == admin_list(tmp_path)
    assert injector.fail(tmp_path, "shop/web/0")["status"] == "error"
    assert injector.stop(tmp_path, "shop/web/1")["status"] == "stopped"
    edited = injector.edit(tmp_path, "shop/web/1", cpus=4, memory_mb=None)
    assert (edited["cpus"], edited["memory_mb"]) == (4, SMALL.memory_mb)
    assert injector.delete(tmp_path, "shop/web/0")["key"] == "shop/web/0"
    left = [(s.key, s.status, s.size.cpus) for s in sim.observe(OWNER)]
    assert left == [("shop/web/1", ServerStatus.STOPPED, 4)]
    assert injector.list_servers(tmp_path / "nowhere") == []
    with pytest.raises(UserError, match="no simcloud server has key shop/web/9"):
        injector.fail(tmp_path, "shop/web/9")


# --- snapshots and metrics ------------------------------------------------------------------
def test_snapshot_is_idempotent_by_name_and_sized_deterministically(sim: SimCloud) -> None:
    server = sim.create(request("shop/db/0"))
    first = sim.snapshot(server, SnapshotRequest(name="nightly-1", policy="nightly"))
    again = sim.snapshot(server, SnapshotRequest(name="nightly-1", policy="nightly"))
    assert again == first
    assert 0.2 * SMALL.disk_gb <= first.size_gb <= 0.8 * SMALL.disk_gb
    assert first.created_at == NOW
    with sqlite3.connect(sim.path) as conn:
        (tags,) = conn.execute("SELECT tags FROM snapshots").fetchone()
    assert '"reconciler:policy": "nightly"' in tags
    assert '"reconciler:taken-at": "2026-11-02T10:00:00Z"' in tags


def test_metrics_are_cumulative_monotonic_and_deterministic(tmp_path: Path) -> None:
    clock = Clock(fixed=NOW)
    sim = make_sim(tmp_path, clock=clock)
    server = sim.create(request("shop/web/0"))
    samples = []
    for hours, action in ((1, None), (2, "stop"), (3, "start"), (4, "resize"), (5, None)):
        clock.fixed = NOW + timedelta(hours=hours)
        if action == "stop":
            sim.stop(server)
        elif action == "start":
            sim.start(server)
        elif action == "resize":
            sim.update(server, UpdateRequest(size=Size(1, 1024, 20), flavor=None, tags=()))
        [sample] = sim.metrics([server])
        samples.append(sample)
    cpu = [s.cpu_seconds for s in samples]
    rx = [s.net_rx_bytes for s in samples]
    assert cpu == sorted(cpu) and rx == sorted(rx) and cpu[0] > 0
    assert cpu[1] == cpu[2]  # stopped from hour 2 to hour 3: no CPU burnt, no traffic
    assert rx[1] == rx[2]
    assert 0 < cpu[0] <= 3600 * SMALL.cpus
    assert [s.at for s in samples] == [NOW + timedelta(hours=h) for h in range(1, 6)]

    twin = make_sim(tmp_path / "twin", clock=Clock(fixed=NOW + timedelta(hours=1)))
    twin_server = twin.create(request("shop/web/0"))
    twin.context.clock.fixed = NOW + timedelta(hours=2)
    [twin_sample] = twin.metrics([twin_server])
    assert (twin_sample.cpu_seconds, twin_sample.net_tx_bytes) == (
        samples[0].cpu_seconds,
        samples[0].net_tx_bytes,
    )
    assert sim.calls["get_metrics"] == 5


# --- scale ----------------------------------------------------------------------------------
def test_ten_thousand_servers_observe_in_ten_calls(sim: SimCloud) -> None:
    sim.bulk_create(request(f"big/node/{i}") for i in range(10_000))
    sim.calls.clear()
    started = time.perf_counter()
    seen = sim.observe(OWNER)
    elapsed = time.perf_counter() - started
    assert len(seen) == 10_000
    assert sim.calls == {"list_servers": 10}
    assert elapsed < 2.0, f"observing 10,000 servers took {elapsed:.2f}s"
