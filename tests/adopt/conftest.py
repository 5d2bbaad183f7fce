"""Fixtures for the adoption tests: a desired-state folder on simcloud and a workspace over it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from reconciler.core.clock import Clock
from reconciler.run.workspace import Workspace

HEAD = """\
apiVersion: reconciler/v1
kind: Provider
metadata: {name: sim}
spec: {type: simcloud}
---
apiVersion: reconciler/v1
kind: PriceList
metadata: {name: standard}
spec:
  currency: USD
  units: {vcpu_hour: "0.01", ram_gb_hour: "0.005"}
---
apiVersion: reconciler/v1
kind: ServerTemplate
metadata: {name: web}
spec:
  image: {simcloud: debian-12}
  size: {cpus: 1, memory_mb: 1024, disk_gb: 10}
  tags: {role: web}
---
apiVersion: reconciler/v1
kind: ServerTemplate
metadata: {name: db}
spec:
  image: {simcloud: debian-12-postgres}
  size: {cpus: 2, memory_mb: 4096, disk_gb: 40}
"""

Write = Callable[[str], Path]


@pytest.fixture
def folder(tmp_path: Path) -> Write:
    """Write ``HEAD`` plus the given Cluster YAML as the desired state; returns its folder."""

    def write(cluster: str) -> Path:
        path = tmp_path / "shop"
        path.mkdir(exist_ok=True)
        (path / "base.yaml").write_text(HEAD, encoding="utf-8")
        (path / "cluster.yaml").write_text(cluster, encoding="utf-8")
        return path

    return write


@pytest.fixture
def ws(tmp_path: Path) -> Iterator[Workspace]:
    workspace = Workspace(state_dir=tmp_path / "state", clock=Clock())
    yield workspace
    workspace.close()
