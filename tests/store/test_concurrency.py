"""Concurrent appends — from threads sharing one store and from separate processes — keep one valid chain."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections import Counter
from pathlib import Path

import reconciler
from reconciler.store.base import Store

from .conftest import Backend
from .helpers import T0, record

_WRITER = """
import sys
from datetime import UTC, datetime
from pathlib import Path
from reconciler.store import open_store
from reconciler.core.records import AuditAction, AuditRecord, Outcome

url, tag, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
at = datetime(2026, 11, 1, tzinfo=UTC)
store = open_store(Path("unused"), url)
print("ready", flush=True)
sys.stdin.readline()  # start together
for i in range(count):
    store.append(AuditRecord(deployment="prod", run_id=tag, actor=tag, action=AuditAction.CREATE,
                             outcome=Outcome.INFO, detail=f"{tag}-{i}"), at=at)
store.close()
"""


def _assert_one_chain(store: Store, expected: Counter[str]) -> None:
    entries = list(store.audit_log())
    seqs = [e.seq for e in entries]
    assert seqs == list(range(1, len(entries) + 1))  # no duplicate, no gap
    assert Counter(e.record.run_id for e in entries) == expected
    details = [e.record.detail for e in entries]
    assert len(set(details)) == len(details)
    result = store.verify()
    assert result.ok, result.problem
    assert result.entries == sum(expected.values())


def test_threads_share_one_store(store: Store) -> None:
    threads, per_thread = 8, 40
    barrier = threading.Barrier(threads)

    def work(n: int) -> None:
        barrier.wait()
        for i in range(per_thread):
            store.append(record(run_id=f"t{n}", detail=f"t{n}-{i}"), at=T0)

    workers = [threading.Thread(target=work, args=(n,)) for n in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    _assert_one_chain(store, Counter({f"t{n}": per_thread for n in range(threads)}))


def test_two_processes_and_this_one(backend: Backend) -> None:
    backend.open().close()  # create the schema first, as the CLI would
    root = str(Path(reconciler.__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([root, os.environ.get("PYTHONPATH", "")])}
    per_process = 60
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _WRITER, backend.url, f"p{n}", str(per_process)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env,
        )
        for n in range(2)
    ]
    try:
        for proc in procs:
            assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        local = backend.open()
        try:
            for proc in procs:
                assert proc.stdin is not None
                proc.stdin.write("go\n")
                proc.stdin.flush()
            for i in range(per_process):
                local.append(record(run_id="main", detail=f"main-{i}"), at=T0)
            for proc in procs:
                assert proc.wait(timeout=120) == 0
            _assert_one_chain(local, Counter({"p0": per_process, "p1": per_process, "main": per_process}))
        finally:
            local.close()
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
