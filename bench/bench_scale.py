"""bench_scale: every row of the speed targets, measured as a user meets them, on simcloud.

Each row is one whole process (interpreter start and imports included), timed from outside:
wall time, CPU time (user + system) and peak memory of that process, and the provider API calls
it made (listing calls shown apart). The plans and applies run the ``reconciler`` command line
itself (its output to /dev/null). The daemon runs three converged ``reconcile`` cycles in one
process, as ``reconciler run`` would: its row is the whole process (imports and setup too),
then the last cycle alone, timed inside it: what a running daemon spends on each cycle.
The package's bytecode is compiled first, as ``pip install`` does.

  startup           ``reconciler --help``, ``reconciler validate examples/clusters`` and
                    ``examples/clusters-aws`` (no boto3: a type's spec needs no SDK), best of 10
  plan (empty)      N servers, 100 a cluster, one file a cluster, simcloud at latency 0
  apply             the same N, from empty
  plan (no-op)      the same N, converged: one listing per simcloud page (1,000 servers)
  daemon cycle      the same N, converged: one listing per provider per cycle, its CPU
  apply, latency    600 servers in 3 dependency levels (200 a level), 200 ms a call,
                    max_parallel 10: against the ideal Σ over levels ⌈n / parallelism⌉ × latency
                    plus one listing before and one after

    python bench/bench_scale.py                      # N = 10,000 (a few minutes on 2 cores)
    python bench/bench_scale.py --scale 1k,10k       # the N rows at each size, and per 1,000 servers
    python bench/bench_scale.py --scale 100k --skip-latency   # 100,000: bench only, long
"""

from __future__ import annotations

import argparse
import compileall
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]

HEADER = """\
apiVersion: reconciler/v1
kind: Provider
metadata: {{name: sim}}
spec:
  type: simcloud
  max_parallel: {parallel}
  price_list: bench
  latency_ms: {latency_ms}
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
apiVersion: reconciler/v1
kind: Cluster
metadata: {{name: c{index:04d}}}
spec:
  provider: sim
  members:
    node:
      template: node
      count: {count}
"""

LEVELS = """\
apiVersion: reconciler/v1
kind: Cluster
metadata: {{name: tiers}}
spec:
  provider: sim
  members:
    db:
      template: node
      count: {count}
    app:
      template: node
      count: {count}
      depends_on: [db]
    web:
      template: node
      count: {count}
      depends_on: [app]
"""

PER_CLUSTER = 100
LATENCY = dict(servers=600, levels=3, latency_ms=200, parallel=10)


def write_fleet(folder: Path, servers: int, parallel: int) -> int:
    """One file a cluster of ``PER_CLUSTER`` servers (the last one smaller); the number of clusters."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "common.yaml").write_text(HEADER.format(parallel=parallel, latency_ms=0))
    clusters = math.ceil(servers / PER_CLUSTER)
    for index in range(clusters):
        count = min(PER_CLUSTER, servers - index * PER_CLUSTER)
        (folder / f"c{index:04d}.yaml").write_text(CLUSTER.format(index=index, count=count))
    return clusters


def write_levels(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    header = HEADER.format(parallel=LATENCY["parallel"], latency_ms=LATENCY["latency_ms"])
    (folder / "common.yaml").write_text(header)
    per_level = LATENCY["servers"] // LATENCY["levels"]
    (folder / "tiers.yaml").write_text(LEVELS.format(count=per_level))


# --- inside a child process -------------------------------------------------------------------
def child(argv: list[str]) -> int:
    """``cli ARGS…``: the reconciler command line, counting calls; ``cycle DESIRED STATE``: one
    converged daemon cycle. Prints the call tally as the last line of stderr."""
    from collections import Counter

    calls: Counter[str] = Counter()
    cycles: list[dict[str, float]] = []
    if argv[0] == "cycle":
        code = _daemon_cycle(Path(argv[1]), Path(argv[2]), calls, cycles)
    else:
        from reconciler.cli import common

        made: list[Any] = []
        workspace = common.workspace

        def counted(args: argparse.Namespace) -> object:
            ws = workspace(args)
            made.append(ws)
            return ws

        common.workspace = counted  # type: ignore[assignment]
        from reconciler.cli.main import main

        with open(os.devnull, "w") as sink:
            stdout, sys.stdout = sys.stdout, sink
            try:
                code = main(argv[1:])
            finally:
                sys.stdout = stdout
        for ws in made:
            calls.update(ws.calls)
    print(json.dumps({"code": code, "calls": dict(calls), "cycles": cycles}), file=sys.stderr)
    return 0


CYCLES = 3


def _daemon_cycle(desired: Path, state: Path, calls: Any, cycles: list[dict[str, float]]) -> int:
    from reconciler.config import resolve_secret
    from reconciler.core.clock import Clock
    from reconciler.daemon.alerts import Alerter
    from reconciler.daemon.backoff import KeyBackoff
    from reconciler.daemon.context import CycleContext, DaemonOptions
    from reconciler.daemon.cycle import reconcile, release_leases
    from reconciler.daemon.http import DaemonMetrics
    from reconciler.run.audit import new_run
    from reconciler.run.workspace import Workspace

    ws = Workspace(state_dir=state, clock=Clock())
    alerter = Alerter(resolve_secret=resolve_secret)
    ctx = CycleContext(
        ws=ws, options=DaemonOptions(source="bench"), backoff=KeyBackoff(), metrics=DaemonMetrics(),
        alerter=alerter, identity="bench-daemon@localhost:1", cancel=lambda: False, heartbeat=lambda: None,
    )
    try:
        for cycle in range(CYCLES):  # a running daemon: the later cycles find every module imported
            before = dict(ws.calls)
            cpu, wall = time.process_time(), time.perf_counter()
            report = reconcile(ctx, desired, new_run("bench-daemon", None))
            cycles.append({"cpu": time.process_time() - cpu, "wall": time.perf_counter() - wall})
            if report.outcome.value != "converged" or report.changes:
                print(f"daemon cycle {cycle + 1} did not converge: {report.outcome.value} {report.message}",
                      file=sys.stderr)
                return 1
        release_leases(ctx)
    finally:
        alerter.close(1.0)
        ws.close()
    calls.update({op: n - before.get(op, 0) for op, n in ws.calls.items()})  # the last cycle's
    return 0


# --- in the parent: one row a whole process ----------------------------------------------------
@dataclass
class Row:
    wall: float
    cpu: float
    peak_mb: float
    calls: dict[str, int]
    cycles: tuple[dict[str, float], ...] = ()  # a daemon child's cycles, measured inside it

    @property
    def total(self) -> int:
        return sum(self.calls.values())

    @property
    def listing(self) -> int:
        return sum(n for op, n in self.calls.items() if op.startswith("list"))


def run(argv: list[str], *, counted: bool = True, cwd: Path = ROOT) -> Row:
    """One process, timed from outside: wall, CPU and peak memory of that very process (wait4)."""
    command = [sys.executable, __file__, "--child", *argv] if counted else [sys.executable, "-m", *argv]
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECONCILER_")}
    env["PYTHONPATH"] = str(ROOT)
    started = time.perf_counter()
    proc = subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert proc.stderr is not None
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    text = err.decode(errors="replace")
    calls: dict[str, int] = {}
    cycles: tuple[dict[str, float], ...] = ()
    if counted:
        last = text.strip().splitlines()[-1] if text.strip() else "{}"
        try:
            report = json.loads(last)
        except ValueError:
            report = {"code": proc.returncode}
        if proc.returncode != 0 or report.get("code") not in (0, None):
            raise SystemExit(f"{' '.join(argv)} failed:\n{text}")
        calls = report.get("calls", {})
        cycles = tuple(report.get("cycles", ()))
    elif proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed:\n{text}")
    cpu = usage.ru_utime + usage.ru_stime
    return Row(wall, cpu, usage.ru_maxrss / 1024, calls, cycles)


def best(argv: list[str], repeat: int, *, counted: bool = True) -> Row:
    rows = [run(argv, counted=counted) for _ in range(repeat)]
    return min(rows, key=lambda r: r.wall)


COLUMNS = f"{'phase':<30}{'servers':>8}{'wall s':>9}{'cpu s':>8}{'calls':>7}{'listing':>8}{'peak MB':>9}"


def line(label: str, servers: int | str, row: Row, note: str = "") -> None:
    print(
        f"{label:<30}{servers!s:>8}{row.wall:>9.3f}{row.cpu:>8.3f}{row.total:>7}{row.listing:>8}"
        f"{row.peak_mb:>9.1f}" + (f"  {note}" if note else ""),
        flush=True,
    )


def precompile() -> None:
    """Bytecode for the package, as ``pip install`` writes it: a user's interpreter loads it, where
    an editable checkout under ``PYTHONDONTWRITEBYTECODE`` would compile every module each start."""
    for package in ("reconciler", "providers"):
        compileall.compile_dir(ROOT / package, quiet=1)


def startup_rows() -> None:
    line("reconciler --help", "-", best(["reconciler", "--help"], 10, counted=False))
    with tempfile.TemporaryDirectory(prefix="reconciler-bench-") as tmp:
        for folder, servers in (("examples/clusters", 6), ("examples/clusters-aws", 6)):
            argv = ["reconciler", "--state-dir", tmp, "validate", folder]
            line(f"validate {folder.removeprefix('examples/')}", servers, best(argv, 10, counted=False))


def fleet_rows(servers: int, parallel: int, per_1k: bool) -> None:
    with tempfile.TemporaryDirectory(prefix="reconciler-bench-") as tmp:
        desired, state = Path(tmp) / "desired", Path(tmp) / "state"
        write_fleet(desired, servers, parallel)
        common = ["--state-dir", str(state)]
        phases = (
            ("plan (empty)", ["cli", *common, "plan", str(desired)]),
            ("apply (latency 0)", ["cli", *common, "apply", str(desired), "--yes"]),
            ("plan (no-op)", ["cli", *common, "plan", str(desired), "--detailed-exitcode"]),
            ("daemon cycle (converged)", ["cycle", str(desired), str(state)]),
        )
        for label, argv in phases:
            row = run(argv)
            note = ""
            if row.cycles:  # the whole process, then its last cycle: what a running daemon spends
                line(f"daemon, {len(row.cycles)} cycles (process)", servers, row)
                last = row.cycles[-1]
                note = "the last cycle; CPU s of each: " + ", ".join(f"{c['cpu']:.2f}" for c in row.cycles)
                row = Row(last["wall"], last["cpu"], row.peak_mb, row.calls)
            if per_1k:
                note += ("; " if note else "") + f"{row.wall / servers * 1000:.3f} s per 1k"
            line(label, servers, row, note)


def latency_row() -> None:
    with tempfile.TemporaryDirectory(prefix="reconciler-bench-") as tmp:
        desired, state = Path(tmp) / "desired", Path(tmp) / "state"
        write_levels(desired)
        row = run(["cli", "--state-dir", str(state), "apply", str(desired), "--yes"])
        seconds = LATENCY["latency_ms"] / 1000
        per_level = LATENCY["servers"] // LATENCY["levels"]
        ideal = LATENCY["levels"] * math.ceil(per_level / LATENCY["parallel"]) * seconds
        listings = 2 * seconds  # one listing before, one after
        note = (
            f"ideal {ideal:.2f} s + {listings:.2f} s listing = {ideal + listings:.2f} s; "
            f"ratio {row.wall / (ideal + listings):.2f}"
        )
        line(f"apply, {LATENCY['latency_ms']} ms a call", LATENCY["servers"], row, note)


def parse_scale(text: str) -> list[int]:
    sizes = []
    for part in text.split(","):
        part = part.strip().lower()
        factor = 1000 if part.endswith("k") else 1
        sizes.append(int(float(part.rstrip("k")) * factor))
    return sizes


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--scale", type=parse_scale, help="sizes to run the N rows at, e.g. 1k,10k,100k")
    parser.add_argument("--servers", type=int, default=10_000, help="N without --scale (default 10,000)")
    parser.add_argument("--parallel", type=int, default=10, help="max_parallel of the N rows (default 10)")
    parser.add_argument("--skip-startup", action="store_true", help="leave out the startup rows")
    parser.add_argument("--skip-latency", action="store_true", help="leave out the apply-with-latency row")
    parser.add_argument("--child", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args.child)
    sizes = args.scale or [args.servers]
    print(f"bench_scale: simcloud, {os.cpu_count()} cores; each row one whole process", flush=True)
    print(COLUMNS, flush=True)
    precompile()  # before every row: --skip-startup too
    if not args.skip_startup:
        startup_rows()
    for servers in sizes:
        fleet_rows(servers, args.parallel, per_1k=args.scale is not None)
    if not args.skip_latency:
        latency_row()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
