"""Helpers for the multi-replica tests: reconcilers as real subprocesses sharing one store.

Every replica runs ``python -m reconciler --store URL …`` against one simcloud state
folder (the shared "cloud") and one PostgreSQL store; ``RECONCILER_HOSTNAME`` makes each
look like another host, ``RECONCILER_LEASE_TTL`` shortens leases to seconds.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from providers.simcloud.admin import admin_list
from reconciler.core.clock import Clock
from reconciler.core.records import AuditEntry, Outcome
from reconciler.run.planning import plan_path
from reconciler.run.workspace import Workspace
from reconciler.store.postgres import PostgresStore
from tests.store_pg.pg import REPO

EXAMPLE = REPO / "examples" / "clusters"
NOW = "2026-11-02T10:00:00Z"
EXPECTED_KEYS = {"shop/db/0", "shop/app/0", "shop/app/1", "shop/web/0", "shop/web/1", "shop/web/2"}


@dataclass
class Result:
    code: int
    out: str
    err: str


def desired_state(
    tmp_path: Path, *, latency_ms: int = 0, max_parallel: int = 10, protect_db: bool = True
) -> Path:
    """A copy of the example clusters; a slower, more serial cloud when asked."""
    target = tmp_path / "clusters"  # the folder's name is the deployment's
    shutil.copytree(EXAMPLE, target)
    if not protect_db:  # let a later apply delete a duplicate database server
        shop = target / "shop.yaml"
        text = shop.read_text()
        assert "      protect: true\n" in text
        shop.write_text(text.replace("      protect: true\n", "", 1))
    providers = target / "providers.yaml"
    text = providers.read_text().replace("max_parallel: 10", f"max_parallel: {max_parallel}")
    if latency_ms:
        text = text.replace("type: simcloud", f"type: simcloud\n  latency_ms: {latency_ms}", 1)
    providers.write_text(text)
    return target


@dataclass
class Cluster:
    """One shared cloud (simcloud state folder) and one shared store, for many replicas."""

    tmp_path: Path
    store_url: str
    state_dir: Path = field(init=False)

    def __post_init__(self) -> None:
        self.state_dir = self.tmp_path / "cloud"

    def env(self, host: str, **extra: str) -> dict[str, str]:
        environment = {k: v for k, v in os.environ.items() if not k.startswith("RECONCILER_")}
        environment.update(
            {
                "RECONCILER_STATE_DIR": str(self.state_dir),
                "PYTHONPATH": str(REPO),
                "RECONCILER_NOW": NOW,
                "RECONCILER_HOSTNAME": host,
            }
        )
        environment.update(extra)
        return environment

    def argv(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "reconciler", "--store", self.store_url, *args]

    def start(self, *args: str, host: str, **extra: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            self.argv(*args), cwd=self.tmp_path, env=self.env(host, **extra), text=True,
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )

    def run(self, *args: str, host: str = "checker", timeout: float = 120, **extra: str) -> Result:
        proc = subprocess.run(
            self.argv(*args), cwd=self.tmp_path, env=self.env(host, **extra), text=True,
            stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout,
        )
        return Result(proc.returncode, proc.stdout, proc.stderr)

    # --- what the cloud and the ledgers say ------------------------------------------------
    def servers(self) -> list[dict[str, Any]]:
        return list(admin_list(self.state_dir))

    def entries(self) -> list[AuditEntry]:
        with PostgresStore(self.store_url) as store:
            return list(store.audit_log())

    def assert_converged(self, workdir: Path) -> None:
        """No change left, one server per key, an intact chain, every intent settled."""
        workspace = Workspace(state_dir=self.state_dir, clock=Clock.from_env(NOW), store_url=self.store_url)
        try:
            plan = plan_path(workdir, workspace)
        finally:
            workspace.close()
        assert not plan.changes, [f"{c.action} {c.key}: {c.reason}" for c in plan.changes]
        keys = Counter(str(s["key"]) for s in self.servers())
        assert set(keys) == EXPECTED_KEYS
        assert all(n == 1 for n in keys.values()), f"duplicate servers: {keys}"
        with PostgresStore(self.store_url) as store:
            verification = store.verify()
            assert verification.ok, verification.problem
            entries = list(store.audit_log())
            open_ids = {(i.provider, i.resource_id) for i in store.open_intervals("clusters")}
        intents = {e.seq for e in entries if e.record.outcome is Outcome.INTENT}
        settled = {e.record.intent_seq for e in entries if e.record.intent_seq is not None}
        assert intents <= settled, f"unresolved intents: {sorted(intents - settled)}"
        assert open_ids == {("sim", str(s["resource_id"])) for s in self.servers()}


def run_ids(entries: list[AuditEntry]) -> list[str]:
    """Run ids in the order they first appear in the ledger."""
    seen: dict[str, None] = {}
    for entry in entries:
        seen.setdefault(entry.record.run_id, None)
    return list(seen)


def seq_span(entries: list[AuditEntry], run_id: str) -> tuple[int, int]:
    seqs = [e.seq for e in entries if e.record.run_id == run_id]
    return min(seqs), max(seqs)
