"""The backup lifecycle through a real provider: XCP against the XAPI simulator (real XenAPI
client, real XML-RPC). Nightly backups quiesced by a clean shutdown, retention pruning the
snapshot VMs, a final backup before destroy, then ``reconciler restore`` bringing the server
back from that final backup: a running VM cloned from the snapshot, with the size the server
had when it was backed up (not the template's, which changed since), and clean ledgers."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from reconciler.backup.restore import restore
from reconciler.config import load_desired_state
from reconciler.core.backups import BackupKind
from reconciler.core.model import TAG_GENERATION, TAG_KEY, TAG_OWNER
from reconciler.run.planning import plan_path
from tests.backup.support import (
    DEPLOYMENT,
    EPOCH,
    apply,
    cluster_yaml,
    cycle,
    policy_yaml,
    run_context,
    template_yaml,
    workspace,
    write_desired,
)
from tests.xcp.conftest import sim  # noqa: F401 - the simulator fixture, reused as it is
from tests.xcp.helpers import disks_of
from tests.xcp.xapi_db import GIB, MIB
from tests.xcp.xapi_sim import XapiSim

PASSWORD_ENV = "RECONCILER_BACKUP_TEST_XCP_PASSWORD"
NIGHTS = 6


def _provider_yaml(url: str) -> str:
    return f"""\
apiVersion: reconciler/v1
kind: Provider
metadata:
  name: xcp-lab
spec:
  type: xcp
  url: {url}
  username: root
  password_env: {PASSWORD_ENV}
  sr: Local storage
  network: Pool-wide network associated with eth0
  timeout_seconds: 10
  max_parallel: 4
  price_list: standard
"""


@pytest.fixture
def xcp_desired(sim: XapiSim, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:  # noqa: F811
    monkeypatch.setenv(PASSWORD_ENV, sim.users["root"])
    yield write_desired(
        tmp_path,
        provider=_provider_yaml(sim.url),
        policy=policy_yaml(quiesce="shutdown", keep_last=2, keep_daily=0, keep_weekly=0),
        template=template_yaml(image_type="xcp", image="Debian Bookworm 12", disk_gb=20),
        cluster=cluster_yaml(provider="xcp-lab"),
    )


def _vms(simulator: XapiSim, *, snapshots: bool) -> list[dict[str, Any]]:
    return [
        vm
        for vm in simulator.vm_records().values()
        if vm["other_config"].get(TAG_OWNER) == DEPLOYMENT and bool(vm["is_a_snapshot"]) == snapshots
    ]


def test_backup_lifecycle_on_xcp(sim: XapiSim, xcp_desired: Path, tmp_path: Path) -> None:  # noqa: F811
    state = tmp_path / "state"
    assert apply(xcp_desired, state, EPOCH).ok
    [vm] = _vms(sim, snapshots=False)
    nights = [EPOCH + timedelta(hours=1, days=n) for n in range(NIGHTS)]
    shutdowns = sim.calls["VM.clean_shutdown"]
    for night in nights:
        report = cycle(xcp_desired, state, night)
        assert report.ok, report.failures
        assert report.count(BackupKind.TAKE) == 1
    assert sim.calls["VM.clean_shutdown"] - shutdowns == NIGHTS  # quiesced every night…
    [vm] = _vms(sim, snapshots=False)
    assert vm["power_state"] == "Running"  # …and running again after each backup
    kept = _vms(sim, snapshots=True)
    assert len(kept) == 2  # keep_last 2: the other snapshot VMs were destroyed
    assert {s["other_config"][TAG_KEY] for s in kept} == {"vault/db/0"}
    assert cycle(xcp_desired, state, nights[-1] + timedelta(hours=1)).results == ()

    destroyed_id = vm["uuid"]
    destroyed = apply(xcp_desired, state, nights[-1] + timedelta(hours=2), destroy=True)
    assert destroyed.ok, destroyed.results
    assert [b.action.kind for b in destroyed.backups] == [BackupKind.FINAL]
    assert _vms(sim, snapshots=False) == []
    final = destroyed.backups[0].snapshot_id
    assert final in {s["uuid"] for s in _vms(sim, snapshots=True)}

    # The template grows after the destroy: the restore still brings back the backed-up size.
    (xcp_desired / "templates.yaml").write_text(
        template_yaml(image_type="xcp", image="Debian Bookworm 12", cpus=2, memory_mb=2048, disk_gb=20)
    )
    restore_at = nights[-1] + timedelta(hours=3)
    ws = workspace(state, restore_at)
    try:
        result = restore(
            load_desired_state(xcp_desired), ws, run_context(), "vault/db/0", final, confirm=lambda _: True
        )
    finally:
        ws.close()
    assert result.server is not None and (result.replaced, result.backups) == ((), ())
    [vm] = _vms(sim, snapshots=False)
    assert vm["uuid"] == result.server.resource_id != destroyed_id
    assert (vm["power_state"], vm["is_a_template"]) == ("Running", False)
    assert (vm["VCPUs_at_startup"], vm["memory_static_max"]) == ("1", str(1024 * MIB))
    assert vm["other_config"][TAG_KEY] == "vault/db/0" and vm["other_config"][TAG_GENERATION] == "1"
    [disk] = disks_of(sim, vm["uuid"])
    [final_disk] = disks_of(sim, final)
    assert disk["sm_config"]["vhd-parent"] == final_disk["uuid"]  # its disk starts as the backup's
    assert disk["virtual_size"] == final_disk["virtual_size"] == str(20 * GIB)
    assert final in {s["uuid"] for s in _vms(sim, snapshots=True)}  # the backup stays

    ws = workspace(state, restore_at + timedelta(minutes=5))
    try:
        store = ws.store()
        assert store.verify().ok
        assert store.unresolved_intents(DEPLOYMENT) == []
        [change] = [c for c in plan_path(xcp_desired, ws).changes if c.key == "vault/db/0"]
        # The restored server is found; only its size differs from the grown template.
        assert (change.action.value, change.reason) == ("update", "resize cpus 1 → 2, memory_mb 1024 → 2048")
    finally:
        ws.close()
