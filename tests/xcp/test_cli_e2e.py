"""End to end: the ``reconciler`` CLI applies examples/clusters-xcp to the XAPI simulator.

apply → no-op plan → a size change (in place: clean shutdown, resize, start) → destroy,
each as a subprocess, with credentials in environment variables and state under tmp_path.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from reconciler.core.model import TAG_KEY, TAG_OWNER
from tests.xcp.helpers import user_data
from tests.xcp.xapi_db import MIB
from tests.xcp.xapi_sim import XapiSim

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "clusters-xcp"
DEPLOYMENT = "clusters-xcp"  # the owner mark defaults to the folder's name

pytestmark = pytest.mark.slow


def _owned(sim: XapiSim) -> dict[str, dict[str, Any]]:
    """Owned, non-snapshot VMs by key."""
    return {vm["other_config"][TAG_KEY]: vm for vm in sim.vm_records().values()
            if vm["other_config"].get(TAG_OWNER) == DEPLOYMENT and not vm["is_a_snapshot"]}


def test_apply_plan_resize_destroy_through_the_cli(sim: XapiSim, tmp_path: Path) -> None:
    desired = tmp_path / DEPLOYMENT
    shutil.copytree(EXAMPLE, desired)
    providers = desired / "providers.yaml"
    providers.write_text(providers.read_text().replace("https://xcp-master", sim.url))
    python_path = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "PYTHONPATH": python_path,
           "XCP_USERNAME": "root", "XCP_PASSWORD": "xcp-secret",
           "RECONCILER_STATE_DIR": str(tmp_path / "state"), "RECONCILER_NOW": "2026-11-01T12:00:00Z"}

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "reconciler", *args, str(desired)], env=env,
                              cwd=tmp_path, capture_output=True, text=True, timeout=120)

    first = cli("plan", "--detailed-exitcode")
    assert first.returncode == 2, first.stderr
    assert "6 to create" in first.stdout

    applied = cli("apply", "--yes")
    assert applied.returncode == 0, applied.stdout + applied.stderr
    servers = _owned(sim)
    assert sorted(servers) == ["shop/app/0", "shop/app/1", "shop/db/0",
                               "shop/web/0", "shop/web/1", "shop/web/2"]
    assert all(vm["power_state"] == "Running" for vm in servers.values())
    db = servers["shop/db/0"]
    assert (db["VCPUs_max"], db["memory_static_max"]) == ("2", str(4096 * MIB))
    assert "role=database" in db["tags"]
    # The secret is resolved inside the provider call and reaches the guest, never the plan.
    assert "shop-example-password" in user_data(db)
    assert "shop-example-password" not in applied.stdout + applied.stderr

    settled = cli("plan", "--detailed-exitcode")
    assert settled.returncode == 0, settled.stdout + settled.stderr

    templates = desired / "templates.yaml"
    text = templates.read_text()
    web = "    cpus: 1\n    memory_mb: 1024"
    assert text.count(web) == 1
    templates.write_text(text.replace(web, "    cpus: 2\n    memory_mb: 1536"))
    resize = cli("plan", "--detailed-exitcode")
    assert resize.returncode == 2 and "3 to update" in resize.stdout and "0 to replace" in resize.stdout
    resized = cli("apply", "--yes")
    assert resized.returncode == 0, resized.stdout + resized.stderr
    after = _owned(sim)
    for key in ("shop/web/0", "shop/web/1", "shop/web/2"):
        assert after[key]["uuid"] == servers[key]["uuid"]  # in place, not replaced
        assert (after[key]["VCPUs_max"], after[key]["memory_static_max"]) == ("2", str(1536 * MIB))
        assert after[key]["power_state"] == "Running"
    assert sim.calls["VM.clean_shutdown"] == 3
    assert cli("plan", "--detailed-exitcode").returncode == 0

    destroyed = cli("destroy", "--yes")
    assert destroyed.returncode == 0, destroyed.stdout + destroyed.stderr
    assert sorted(_owned(sim)) == ["shop/db/0"]  # protect: true keeps the database
    assert "protected" in destroyed.stdout + destroyed.stderr
