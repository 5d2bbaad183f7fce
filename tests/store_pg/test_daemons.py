"""Three daemons, one branch, one cloud, one PostgreSQL store: one applies, a survivor takes over.

Each daemon (``reconciler run`` as a subprocess) has its own state folder (its own git
clone) and shares the store and the simcloud world: ``state_file`` names a file in the state
folder, and each folder's is a link to the one world. The test checks that only the lease
holder applies (each server is created once; the runs that changed the cloud never overlap
in the ledger), that SIGKILLing the holder moves the work to a survivor (same host here, so
the dead holder is recognised at once), and that a clean SIGTERM leaves an intact hash chain.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from providers.simcloud.admin import admin_list
from reconciler.core.records import Outcome
from reconciler.store.postgres import PostgresStore
from tests.store_pg.pg import REPO

if importlib.util.find_spec("reconciler.daemon.loop") is None:  # pragma: no cover - lands separately
    pytest.skip("the daemon (reconciler run) is not part of this tree", allow_module_level=True)

from tests.daemon.conftest import PROVIDERS, TEMPLATES, GitRepo, cluster, wait_until  # noqa: E402


def _start(tmp_path: Path, n: int, repo: GitRepo, store_url: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECONCILER_")}
    env.update({"RECONCILER_STATE_DIR": str(tmp_path / f"replica-{n}"), "PYTHONPATH": str(REPO)})
    log = (tmp_path / f"replica-{n}.log").open("w")
    return subprocess.Popen(
        [
            sys.executable, "-m", "reconciler", "--store", store_url, "run", "--source", repo.url,
            "--path", "clusters", "--interval", "0.5", "--git-poll", "0.3", "--lease-ttl", "3",
            "--listen", "off",
        ],
        cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True,
    )


def test_three_daemons_one_applies_and_a_survivor_takes_over(tmp_path: Path, pg_url: str) -> None:
    cloud = tmp_path / "cloud"
    cloud.mkdir()
    for n in range(3):
        (tmp_path / f"replica-{n}").mkdir()
        (tmp_path / f"replica-{n}" / "sim.db").symlink_to(cloud / "sim.db")
    providers = PROVIDERS.replace("type: simcloud", "type: simcloud\n  state_file: sim.db", 1)
    repo_path = tmp_path / "infra"
    repo_path.mkdir()
    repo = GitRepo(repo_path)
    repo.git("init", "-q", "-b", "main")
    repo.commit({"providers.yaml": providers, "templates.yaml": TEMPLATES, "shop.yaml": cluster(2)}, "shop")

    def keys() -> Counter[str]:
        return Counter(str(s["key"]) for s in admin_list(cloud, state_file="sim.db"))

    def holder() -> str:
        with PostgresStore(pg_url) as store:
            lease = store.current_lease("provider/sim")
        return lease.holder if lease is not None else ""

    PostgresStore(pg_url).close()
    daemons = {n: _start(tmp_path, n, repo, pg_url) for n in range(3)}
    try:
        wait_until(lambda: keys() == Counter({"shop/db/0": 1, "shop/web/0": 1, "shop/web/1": 1}),
                   timeout=60, what="the daemons to converge")
        first = holder()
        pid = int(first.rpartition(":")[2])
        victim = next(n for n, proc in daemons.items() if proc.pid == pid)
        daemons[victim].send_signal(signal.SIGKILL)
        daemons[victim].wait(timeout=10)
        repo.commit({"shop.yaml": cluster(3)}, "three web")
        wait_until(lambda: keys().get("shop/web/2") == 1, timeout=60, what="a survivor to apply the commit")
        second = holder()
        assert second and second != first
        for n, proc in daemons.items():
            if n != victim:
                proc.send_signal(signal.SIGTERM)
        for n, proc in daemons.items():
            if n != victim:
                assert proc.wait(timeout=30) == 0, (tmp_path / f"replica-{n}.log").read_text()
    finally:
        for proc in daemons.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)
    assert all(n == 1 for n in keys().values()), keys()
    with PostgresStore(pg_url) as store:
        verification = store.verify()
        assert verification.ok, verification.problem
        entries = list(store.audit_log())
        lease = store.current_lease("provider/sim")
    assert lease is not None and lease.epoch >= 2
    creates = Counter(e.record.key for e in entries if e.record.outcome is Outcome.INTENT
                      and e.record.action.value == "create")
    assert creates == Counter({"shop/db/0": 1, "shop/web/0": 1, "shop/web/1": 1, "shop/web/2": 1}), creates
    # The runs that touched the cloud never overlap: each one's intents and outcomes form a
    # contiguous stretch of the ledger, untouched by any other run's.
    touching = [e for e in entries if e.record.outcome is Outcome.INTENT or e.record.intent_seq is not None]
    spans: dict[str, tuple[int, int]] = {}
    for entry in touching:
        low, high = spans.get(entry.record.run_id, (entry.seq, entry.seq))
        spans[entry.record.run_id] = (min(low, entry.seq), max(high, entry.seq))
    ordered = sorted(spans.values())
    assert all(a[1] < b[0] for a, b in zip(ordered, ordered[1:], strict=False)), spans
