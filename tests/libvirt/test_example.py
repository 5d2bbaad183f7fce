"""examples/clusters-libvirt: valid as written, plannable against the test driver, errors located."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from reconciler.config import load_desired_state
from reconciler.core.errors import UserError

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "clusters-libvirt"


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    python_path = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "PYTHONPATH": python_path, "RECONCILER_STATE_DIR": str(cwd / "state"),
           "RECONCILER_NOW": "2026-11-01T12:00:00Z"}
    return subprocess.run([sys.executable, "-m", "reconciler", *args], env=env, cwd=cwd, capture_output=True,
                          text=True, timeout=120)


def _copy(tmp_path: Path) -> Path:
    desired = tmp_path / "clusters-libvirt"
    shutil.copytree(EXAMPLE, desired)
    return desired


def test_the_example_validates(tmp_path: Path) -> None:
    done = _cli("validate", str(EXAMPLE), cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "6 servers" in done.stdout


def test_the_example_plans_against_the_test_driver(tmp_path: Path) -> None:
    desired = _copy(tmp_path)
    providers = desired / "providers.yaml"
    text = providers.read_text().replace("uri: qemu:///system", "uri: test:///default")
    providers.write_text(text.replace("storage_pool: default ", "storage_pool: default-pool "))
    done = _cli("plan", str(desired), "--detailed-exitcode", cwd=tmp_path)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "6 to create" in done.stdout and "debian-12-genericcloud-amd64.qcow2" in done.stdout
    assert "shop-example-password" not in done.stdout  # the secret stays a reference


def test_a_bad_provider_setting_is_reported_with_its_line(tmp_path: Path) -> None:
    desired = _copy(tmp_path)
    providers = desired / "providers.yaml"
    lines = providers.read_text().splitlines()
    line = next(n for n, text in enumerate(lines, 1) if text.startswith("  domain_type:"))
    providers.write_text(providers.read_text().replace("domain_type: kvm", "domain_type: xen"))
    with pytest.raises(UserError) as caught:
        load_desired_state(desired)
    [problem] = caught.value.diagnostics
    assert (Path(problem.file).name, problem.line) == ("providers.yaml", line)
    assert "domain_type" in problem.message
