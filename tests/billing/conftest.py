"""Fixtures for the billing tests: a small desired state on simcloud, and ways to run the CLI.

``cli`` (from the e2e tests) runs ``python -m reconciler`` in a subprocess; ``InProcess``
calls ``reconciler.cli.main.main`` in this process with ``--state-dir`` and ``--now``, which is
the same code path without paying the interpreter's start-up on every call.
"""

from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass
from pathlib import Path

import pytest

from reconciler.cli.main import main
from tests.e2e.conftest import Cli, Result, cli, state_dir  # noqa: F401 - fixtures re-exported

__all__ = ["Cli", "InProcess", "Result", "write_state"]


@dataclass
class InProcess:
    """``reconciler`` commands run in this process against one state directory."""

    state: Path

    def __call__(self, *args: str, now: str) -> Result:
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(["--state-dir", str(self.state), "--now", now, *args])
        return Result(code, out.getvalue(), err.getvalue())

PROVIDER = """\
apiVersion: reconciler/v1
kind: Provider
metadata:
  name: sim
spec:
  type: simcloud
  max_parallel: 1
  price_list: prices
"""

PRICES = """\
apiVersion: reconciler/v1
kind: PriceList
metadata:
  name: prices
spec:
  currency: USD
  billing: {billing}
  granularity: {granularity}
  flavors:
    sim.small: "0.10"
    sim.large: "0.40"
  units:
    vcpu_hour: "0.02"
    ram_gb_hour: "0.005"
    disk_gb_month: "0.72"
    network_in_gb: "0.01"
    network_out_gb: "0.09"
"""

TEMPLATE = """\
apiVersion: reconciler/v1
kind: ServerTemplate
metadata:
  name: web
spec:
  image:
    simcloud: debian-12
  size:
    cpus: {cpus}
    memory_mb: {memory}
    disk_gb: 10
  flavor:
    simcloud: {flavor}
"""

CLUSTER = """\
apiVersion: reconciler/v1
kind: Cluster
metadata:
  name: shop
spec:
  provider: sim
  members:
    web:
      template: web
      count: {count}
"""


def write_state(
    folder: Path,
    *,
    count: int = 2,
    large: bool = False,
    granularity: str = "second",
    billing: str = "instance-hours",
    budgets: str = "",
    cluster: bool = True,
) -> Path:
    """Write (or rewrite) a desired-state folder: one cluster of ``count`` web servers, small or large."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "provider.yaml").write_text(PROVIDER)
    (folder / "prices.yaml").write_text(PRICES.format(granularity=granularity, billing=billing))
    if cluster:
        cpus, memory, flavor = (4, 4096, "sim.large") if large else (1, 1024, "sim.small")
        (folder / "template.yaml").write_text(TEMPLATE.format(cpus=cpus, memory=memory, flavor=flavor))
        (folder / "cluster.yaml").write_text(CLUSTER.format(count=count))
    if budgets:
        (folder / "budgets.yaml").write_text(budgets)
    elif (folder / "budgets.yaml").exists():
        (folder / "budgets.yaml").unlink()
    return folder


@pytest.fixture
def infra(tmp_path: Path) -> Path:
    return write_state(tmp_path / "infra")
