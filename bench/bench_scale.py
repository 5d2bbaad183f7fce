"""bench_scale: plan and apply 10,000 servers across 100 clusters on simcloud, and print the figures.

Four phases, each in its own process so peak memory is per phase:
  1. plan from empty   2. apply   3. no-change plan   4. one daemon cycle, converged
For each: wall time, CPU time, peak RSS, provider API calls (listing calls shown apart).
A converged daemon cycle lists each cloud once: N/1000 listing calls on simcloud's pages.

    python bench/bench_scale.py                 # 100 clusters x 100 servers
    python bench/bench_scale.py --clusters 10 --per-cluster 50
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HEADER = """\
apiVersion: reconciler/v1
kind: Provider
metadata: {{name: sim}}
spec:
  type: simcloud
  max_parallel: {parallel}
  price_list: bench
---
apiVersion: reconciler/v1
kind: PriceList
metadata: {{name: bench}}
spec:
  currency: USD
  billing: instance-hours
  units: {{vcpu_hour: "0.02", ram_gb_hour: "0.005", disk_gb_month: "0.10"}}
---
apiVersion: reconciler/v1
kind: ServerTemplate
metadata: {{name: node}}
spec:
  image: {{simcloud: debian-12}}
  size: {{cpus: 2, memory_mb: 2048, disk_gb: 20}}
  scripts:
    boot: |
      #!/bin/sh
      echo hello
"""

CLUSTER = """\
---
apiVersion: reconciler/v1
kind: Cluster
metadata: {{name: c{index:03d}}}
spec:
  provider: sim
  members:
    node:
      template: node
      count: {count}
"""


def write_desired_state(folder: Path, clusters: int, per_cluster: int, parallel: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    text = HEADER.format(parallel=parallel)
    text += "".join(CLUSTER.format(index=i, count=per_cluster) for i in range(clusters))
    (folder / "bench.yaml").write_text(text)


def run_phase(phase: str, desired: Path, state: Path) -> dict[str, object]:
    """Run inside a child process: one phase, timed, with the provider call counts."""
    from reconciler.core.clock import Clock
    from reconciler.core.retry import RetryPolicy
    from reconciler.run.apply import apply_plan
    from reconciler.run.audit import new_run
    from reconciler.run.planning import plan_path
    from reconciler.run.workspace import Workspace

    ws = Workspace(state_dir=state, clock=Clock(), retry=RetryPolicy(base_delay=0.01))
    started, cpu = time.perf_counter(), time.process_time()
    if phase == "cycle":
        changes, failed = _daemon_cycle(desired, ws)
    else:
        plan = plan_path(desired, ws)
        changes = len(plan.changes)
        failed = 0
    if phase == "apply":
        run = new_run("bench", None)
        report = apply_plan(plan, ws, run, allow_mass_delete=True)
        failed = len(report.results) - sum(1 for r in report.results if r.status.value == "succeeded")
    ws.close()
    elapsed = time.perf_counter() - started
    return {
        "phase": phase,
        "seconds": round(elapsed, 3),
        "cpu_seconds": round(time.process_time() - cpu, 3),
        "changes": changes,
        "failed": failed,
        "calls": dict(ws.calls),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


PHASES = (("plan", "plan (empty)"), ("apply", "apply"), ("plan", "plan (no-op)"), ("cycle", "daemon cycle"))


def _daemon_cycle(desired: Path, ws: object) -> tuple[int, int]:
    """One daemon cycle over the applied state: (changes planned, changes failed)."""
    from reconciler.config import resolve_secret
    from reconciler.daemon.alerts import Alerter
    from reconciler.daemon.backoff import KeyBackoff
    from reconciler.daemon.context import CycleContext, DaemonOptions
    from reconciler.daemon.cycle import reconcile, release_leases
    from reconciler.daemon.http import DaemonMetrics
    from reconciler.run.audit import new_run
    from reconciler.run.workspace import Workspace

    assert isinstance(ws, Workspace)
    alerter = Alerter(resolve_secret=resolve_secret)
    ctx = CycleContext(
        ws=ws,
        options=DaemonOptions(source="bench"),
        backoff=KeyBackoff(),
        metrics=DaemonMetrics(),
        alerter=alerter,
        identity="bench-daemon@localhost:1",
        cancel=lambda: False,
        heartbeat=lambda: None,
    )
    try:
        report = reconcile(ctx, desired, new_run("bench-daemon", None))
        release_leases(ctx)
    finally:
        alerter.close(1.0)
    if report.outcome.value != "converged":
        raise SystemExit(f"the daemon cycle did not converge: {report.outcome.value} {report.message}")
    return report.changes, report.failed


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clusters", type=int, default=100)
    parser.add_argument("--per-cluster", type=int, default=100)
    parser.add_argument("--parallel", type=int, default=10)
    parser.add_argument("--phase", help=argparse.SUPPRESS)
    parser.add_argument("--dir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase:
        print(json.dumps(run_phase(args.phase, args.dir / "desired", args.dir / "state")))
        return 0
    with tempfile.TemporaryDirectory(prefix="reconciler-bench-") as tmp:
        root = Path(tmp)
        write_desired_state(root / "desired", args.clusters, args.per_cluster, args.parallel)
        total = args.clusters * args.per_cluster
        print(f"bench_scale: {total} servers in {args.clusters} clusters on simcloud (latency 0)")
        columns = f"{'seconds':>9}{'cpu s':>8}{'changes':>9}{'failed':>8}{'peak MB':>9}"
        print(f"{'phase':<16}{columns}  provider calls")
        for phase, label in PHASES:
            out = subprocess.run(
                [sys.executable, __file__, "--phase", phase, "--dir", str(root)],
                capture_output=True,
                text=True,
            )
            if out.returncode != 0:
                print(out.stderr, file=sys.stderr)
                return 1
            figures = json.loads(out.stdout.strip().splitlines()[-1])
            calls = figures["calls"]
            listing = sum(n for op, n in calls.items() if op.startswith("list"))
            print(
                f"{label:<16}{figures['seconds']:>9.2f}{figures['cpu_seconds']:>8.2f}"
                f"{figures['changes']:>9}{figures['failed']:>8}"
                f"{figures['peak_rss_mb']:>9}  {sum(calls.values())} total, {listing} listing"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
