"""What the daemon reads from the YAML: autoscale ranges, the counts it chose, failover policies."""

from __future__ import annotations

from pathlib import Path

from reconciler.config import load_desired_state
from reconciler.core.model import Autoscale, FailoverMode, ScaleMetric
from tests.daemon.conftest import PROVIDERS, TEMPLATES

SHOP = """\
apiVersion: reconciler/v1
kind: Cluster
metadata:
  name: shop
spec:
  provider: sim
  members:
    web:
      template: web
      autoscale: {min: 2, max: 4, metric: memory, target: 70}
      failover:
        mode: restart
        grace_seconds: 45
        max_per_hour: 1
    lb:
      template: web
      count: 1
      depends_on: [web]
"""


def _folder(tmp_path: Path) -> Path:
    folder = tmp_path / "shop"
    folder.mkdir()
    (folder / "all.yaml").write_text(PROVIDERS + "---\n" + TEMPLATES + "---\n" + SHOP)
    return folder


def test_autoscale_range_and_the_chosen_count(tmp_path: Path) -> None:
    folder = _folder(tmp_path)
    state = load_desired_state(folder)
    assert state.autoscale == {
        "shop/web": Autoscale(
            member="shop/web", min=2, max=4, metric=ScaleMetric.MEMORY, target=70.0, cooldown_seconds=300
        )
    }
    assert (
        state.autoscale["shop/web"].location is not None and state.autoscale["shop/web"].location.line == 41
    )

    def keys(counts: dict[str, int] | None) -> list[str]:
        return [s.key for s in load_desired_state(folder, counts=counts).servers]

    assert keys(None) == ["shop/lb/0", "shop/web/0", "shop/web/1"]  # min until the daemon decides
    assert keys({"shop/web": 3}) == ["shop/lb/0", "shop/web/0", "shop/web/1", "shop/web/2"]
    assert len(keys({"shop/web": 40})) == 5 and len(keys({"shop/web": 0})) == 3  # kept within min..max
    assert keys({"shop/lb": 7}) == keys(None)  # only autoscaled members take a chosen count
    lb = next(s for s in load_desired_state(folder, counts={"shop/web": 3}).servers if s.key == "shop/lb/0")
    assert lb.depends_on == ("shop/web/0", "shop/web/1", "shop/web/2")  # dependents wait for all of them


def test_failover_policy_reaches_every_server(tmp_path: Path) -> None:
    servers = {s.key: s for s in load_desired_state(_folder(tmp_path)).servers}
    web, lb = servers["shop/web/0"], servers["shop/lb/0"]
    assert (web.failover, web.failover_grace_seconds, web.failover_max_per_hour) == (
        FailoverMode.RESTART,
        45,
        1,
    )
    assert (lb.failover, lb.failover_grace_seconds, lb.failover_max_per_hour) == (
        FailoverMode.REPLACE,
        300,
        3,
    )
    assert web.spec_hash == lb.spec_hash  # policies are not part of the spec: changing one replaces nothing
