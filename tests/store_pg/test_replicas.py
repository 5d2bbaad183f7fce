"""Several reconcilers, one cloud, one PostgreSQL store: one applies at a time, no double apply.

The real ``reconciler apply --store postgresql://…`` in subprocesses, each pretending to be
another host (``RECONCILER_HOSTNAME``), against one simcloud state folder:

* three applies that reach the lease at the same moment (the test holds the lease table
  until all three wait on it): exactly one applies, the other two exit 1 naming the holder;
* a holder SIGKILLed mid-apply on host A: host B is refused while A's lease lives, takes
  over once it lapsed (a few seconds with ``RECONCILER_LEASE_TTL``), settles A's open
  intent and converges;
* a holder paused (SIGSTOP) past its lease: B takes over and converges; when A wakes up
  its next ledger write is refused (fencing), it stops and exits 1, and nothing it did
  lands after B's takeover.
"""

from __future__ import annotations

import signal
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import psycopg

from reconciler.core.records import Outcome
from reconciler.store.postgres import PostgresStore
from tests.store_pg import pg
from tests.store_pg.replicas import EXPECTED_KEYS, Cluster, desired_state, run_ids, seq_span

LEASE_REFUSED = "another reconciler"
STALE = "the plan is stale"


def _wait_for(predicate: object, timeout: float, what: str) -> None:
    assert callable(predicate)
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def _lease_lapsed(url: str) -> bool:
    with PostgresStore(url) as store:
        lease = store.current_lease("provider/sim")
    return lease is not None and lease.expires_at <= datetime.now(UTC)


def test_racing_applies_one_applies_the_others_refuse(tmp_path: Path, pg_url: str) -> None:
    """Three applies reach the lease at the same moment: one wins, two are refused."""
    workdir = desired_state(tmp_path, latency_ms=20)
    cluster = Cluster(tmp_path, pg_url)
    PostgresStore(pg_url).close()  # the schema, so that the lease table can be locked
    with psycopg.connect(pg_url) as gate:
        # Hold the lease table: each apply plans, then blocks taking its lease, until all
        # three wait there; then they race for it at once.
        gate.execute("LOCK TABLE lease IN EXCLUSIVE MODE")
        procs = [cluster.start("apply", str(workdir), "--yes", host=f"host-{n}") for n in range(3)]
        _wait_for(lambda: _waiting_on_locks(pg_url) == 3, timeout=60, what="three applies at the lease")
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        results.append((proc.returncode, out, err))
    applied = [r for r in results if r[0] == 0]
    refused = [r for r in results if r[0] == 1 and LEASE_REFUSED in r[2]]
    assert len(applied) == 1 and len(refused) == 2, results
    assert "Apply complete: 6 succeeded" in applied[0][1]
    for _, _, err in refused:
        assert "is applying to provider 'sim'" in err and "@host-" in err, err
    entries = cluster.entries()
    assert len(run_ids(entries)) == 1  # only the lease holder wrote to the ledger
    creates = Counter(e.record.key for e in entries if e.record.outcome is Outcome.INTENT)
    assert set(creates) == EXPECTED_KEYS and all(n == 1 for n in creates.values())
    cluster.assert_converged(workdir)


def _waiting_on_locks(url: str) -> int:
    rows = pg.query(
        url,
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
        "AND wait_event_type = 'Lock' AND query LIKE '%lease%'",
    )
    return int(str(rows[0][0]))


def test_killed_holder_on_another_host_is_taken_over_after_its_lease(tmp_path: Path, pg_url: str) -> None:
    workdir = desired_state(tmp_path)
    cluster = Cluster(tmp_path, pg_url)
    ttl = {"RECONCILER_LEASE_TTL": "3"}
    crashed = cluster.run(
        "apply", str(workdir), "--yes", host="host-a", RECONCILER_SIMCLOUD_KILL_AFTER="2", **ttl
    )
    assert crashed.code == -signal.SIGKILL, crashed.out + crashed.err
    assert len(cluster.servers()) == 2
    with PostgresStore(pg_url) as store:  # host-b cannot tell host-a died: its lease still holds
        probe = store.acquire_lease("provider/sim", "probe@host-b:1", ttl_seconds=3, now=datetime.now(UTC))
        assert probe is None
        held = store.current_lease("provider/sim")
        assert held is not None and "@host-a:" in held.holder and held.epoch == 1
    _wait_for(lambda: _lease_lapsed(pg_url), timeout=10, what="host-a's lease to lapse")
    took_over = cluster.run("apply", str(workdir), "--yes", host="host-b", **ttl)
    assert took_over.code == 0, took_over.out + took_over.err
    assert "Recovered: intent" in took_over.out  # the create host-a made but never recorded
    with PostgresStore(pg_url) as store:
        lease = store.current_lease("provider/sim")
    assert lease is not None and lease.epoch == 2 and "@host-b:" in lease.holder
    cluster.assert_converged(workdir)


def test_paused_holder_cannot_write_after_a_takeover(tmp_path: Path, pg_url: str) -> None:
    # host-a's cloud is slow (0.8 s per call), so that it is paused while waiting on a call
    # rather than inside one; host-b sees the same cloud without the delay. Both folders are
    # named "clusters": one deployment.
    slow = desired_state(tmp_path / "a", latency_ms=800, max_parallel=1, protect_db=False)
    workdir = desired_state(tmp_path / "b", protect_db=False)
    cluster = Cluster(tmp_path, pg_url)
    ttl = {"RECONCILER_LEASE_TTL": "2"}
    paused = cluster.start("apply", str(slow), "--yes", host="host-a", **ttl)
    try:
        PostgresStore(pg_url).close()
        with psycopg.connect(pg_url, autocommit=True) as watch:
            _wait_for(
                lambda: _count(watch, "SELECT count(*) FROM audit WHERE outcome = 'intent'") > 0,
                timeout=60, what="host-a to start applying",
            )
        paused.send_signal(signal.SIGSTOP)
        _wait_for(lambda: _lease_lapsed(pg_url), timeout=10, what="host-a's lease to lapse")
        took_over = cluster.run("apply", str(workdir), "--yes", host="host-b", **ttl)
        assert took_over.code == 0, took_over.out + took_over.err
        paused.send_signal(signal.SIGCONT)
        out, err = paused.communicate(timeout=60)
    finally:
        if paused.poll() is None:
            paused.send_signal(signal.SIGCONT)
            paused.kill()
    assert paused.returncode == 1, out + err
    assert "lease" in err and "epoch" in err, err
    entries = cluster.entries()
    run_a, run_b = run_ids(entries)[:2]
    assert seq_span(entries, run_a)[1] < seq_span(entries, run_b)[0], "host-a wrote after the takeover"
    # Fencing guards the ledgers, not the cloud: the one call host-a had in flight when it
    # was paused may still have reached the cloud after the takeover — at most one server,
    # for the key of host-a's last intent. The next apply removes that duplicate.
    last_intent = [e for e in entries if e.record.run_id == run_a and e.record.outcome is Outcome.INTENT][-1]
    keys = Counter(str(s["key"]) for s in cluster.servers())
    assert {k for k, n in keys.items() if n > 1} <= {last_intent.record.key}
    assert sum(keys.values()) <= 7
    if sum(keys.values()) == 7:
        final = cluster.run("apply", str(workdir), "--yes", host="host-b", **ttl)
        assert final.code == 0, final.out + final.err
    cluster.assert_converged(workdir)


def _count(conn: psycopg.Connection[tuple[object, ...]], sql: str) -> int:
    row = conn.execute(sql).fetchone()
    return int(str(row[0])) if row else 0


def test_store_url_errors_never_show_the_password(tmp_path: Path, pg_url: str) -> None:
    password = pg_url.split("://", 1)[1].split("@", 1)[0].partition(":")[2]
    assert password
    cluster = Cluster(tmp_path, f"postgresql://postgres:{password}@127.0.0.1:1/ledgers")
    result = cluster.run("audit", "verify")
    assert result.code == 1
    assert "cannot connect to the PostgreSQL store at 127.0.0.1:1/ledgers" in result.err
    assert password not in result.err + result.out
    assert "Traceback" not in result.err
