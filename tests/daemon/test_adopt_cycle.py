"""The daemon adopts too: a cycle describes what ``adopt:`` entries name and takes it over, the
next cycle finds nothing to do."""

from __future__ import annotations

from pathlib import Path

from providers.simcloud.admin import admin_create, admin_list
from reconciler.core.model import Size
from reconciler.daemon.context import CycleOutcome
from tests.daemon.conftest import in_process_cycles

SHOP = """\
apiVersion: reconciler/v1
kind: Cluster
metadata: {{name: shop}}
spec:
  provider: sim
  members:
    web: {{template: web, count: 1, adopt: {{0: {rid}}}}}
"""


def test_a_cycle_adopts_then_converges(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    made = admin_create(state, provider="sim", name="web-a", image="debian-12", size=Size(1, 1024, 10),
                        flavor="sim.small")
    with in_process_cycles(tmp_path, {"shop.yaml": SHOP.format(rid=made["resource_id"])}) as cycles:
        first = cycles.report(0)
        assert (first.outcome, first.applied, first.failed) == (CycleOutcome.CONVERGED, 1, 0), first
        rows = [(s["key"], s["resource_id"]) for s in admin_list(state)]
        assert rows == [("shop/web/0", made["resource_id"])]
        again = cycles.report(60)
        assert (again.outcome, again.changes) == (CycleOutcome.CONVERGED, 0)
