"""Autoscaling: the rules with a fixed clock, utilisation from two samples, and whole daemon
cycles run in this process on a fixed clock against simcloud (no real time involved)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from providers.simcloud.storage import cpu_utilisation
from reconciler.config import load_desired_state
from reconciler.core.model import Autoscale, MetricSample, ScaleMetric, Size
from reconciler.core.records import AuditAction
from reconciler.daemon import autoscale
from reconciler.daemon.autoscale import decide, utilisation
from reconciler.daemon.context import CycleOutcome
from reconciler.run.audit import LastDecision, RunContext, scaled_counts
from reconciler.run.planning import plan_path
from tests.daemon.conftest import T0, Cycles, in_process_cycles

SPEC = Autoscale(member="shop/web", min=1, max=4, metric=ScaleMetric.CPU, target=50.0, cooldown_seconds=300)


def test_scale_out_above_target_in_below_hold_in_between() -> None:
    out = decide(SPEC, 2, {"shop/web/0": 80.0, "shop/web/1": 70.0}, None, T0)
    assert (out.current, out.desired, out.mean) == (2, 3, 75.0) and out.changed
    assert out.reason == "mean 75.0 above target 50"
    assert json.loads(out.detail()) == {
        "from": 2,
        "to": 3,
        "metric": "cpu",
        "target": 50.0,
        "mean": 75.0,
        "reason": out.reason,
        "values": {"shop/web/0": 80.0, "shop/web/1": 70.0},
    }
    scale_in = decide(SPEC, 3, {"a": 10.0, "b": 20.0, "c": 30.0}, None, T0)
    assert scale_in.desired == 2 and "30.0 with one server fewer" in scale_in.reason
    # below target, but one server fewer would push the rest over it: hold
    assert not decide(SPEC, 2, {"a": 40.0, "b": 40.0}, None, T0).changed


def test_bounds_cooldown_and_missing_metrics() -> None:
    assert decide(SPEC, 4, {"a": 99.0}, None, T0).desired == 4  # at max
    assert "already at max 4" in decide(SPEC, 4, {"a": 99.0}, None, T0).reason
    assert decide(SPEC, 1, {"a": 1.0}, None, T0).desired == 1  # at min
    assert decide(SPEC, 9, {"a": 50.0}, None, T0).current == 4  # out of range (the YAML changed): clamped
    none = decide(SPEC, 2, {}, None, T0)
    assert (none.desired, none.reason, none.mean) == (2, "no metrics yet", None)
    last = LastDecision(count=2, at=T0)
    held = decide(SPEC, 2, {"a": 90.0}, last, T0 + timedelta(seconds=299))
    assert not held.changed and held.reason.endswith("cooling down for 1s more")
    assert decide(SPEC, 2, {"a": 90.0}, last, T0 + timedelta(seconds=300)).desired == 3
    zero_floor = Autoscale(member="m/w", min=0, max=3, metric=ScaleMetric.CPU, target=50.0)
    assert decide(zero_floor, 1, {"a": 0.0}, None, T0).desired == 1  # never to zero by metrics alone


def _sample(at: datetime, cpu: float, memory: int = 512, net: int = 0) -> MetricSample:
    return MetricSample(
        provider="sim",
        resource_id="r",
        key="k",
        at=at,
        cpu_seconds=cpu,
        memory_mb=memory,
        net_rx_bytes=net,
        net_tx_bytes=net,
    )


def test_utilisation_from_two_samples() -> None:
    size = Size(cpus=2, memory_mb=1024, disk_gb=10)
    before, after = _sample(T0, 100.0, net=1000), _sample(T0 + timedelta(seconds=60), 160.0, 256, net=4000)
    assert utilisation(ScaleMetric.CPU, before, after, size) == 50.0  # 60 CPU-s over 60 s × 2 vCPUs
    assert utilisation(ScaleMetric.MEMORY, None, after, size) == 25.0
    assert utilisation(ScaleMetric.NETWORK, before, after, size) == 100.0  # 6000 bytes in 60 s
    assert utilisation(ScaleMetric.CPU, None, after, size) is None
    assert utilisation(ScaleMetric.CPU, after, after, size) is None


# --- whole cycles, in process, on a fixed clock ----------------------------------------------------
AUTOSCALED = """\
apiVersion: reconciler/v1
kind: Cluster
metadata:
  name: shop
spec:
  provider: sim
  members:
    web:
      template: web
      autoscale: {{min: 2, max: 4, metric: cpu, target: {target}, cooldown_seconds: 120}}
      failover: {{grace_seconds: 0}}
"""


@pytest.fixture
def busy(tmp_path: Path) -> Iterator[Cycles]:
    """web servers are always busier than the target: the member scales out."""
    low = min(cpu_utilisation(f"shop/web/{i}") for i in range(4)) * 100
    with in_process_cycles(tmp_path, {"shop.yaml": AUTOSCALED.format(target=round(low / 2, 3))}) as cycles:
        yield cycles


def test_daemon_cycles_scale_out_one_step_per_cooldown(busy: Cycles) -> None:
    assert busy.at(0) is CycleOutcome.CONVERGED  # min: 2 servers, nothing measured yet
    assert busy.web() == ["shop/web/0", "shop/web/1"]
    busy.at(60)  # first samples of the new servers (apply samples them too)
    busy.at(120)  # two samples apart: busy → 3
    assert busy.web() == ["shop/web/0", "shop/web/1", "shop/web/2"]
    busy.at(180)  # still busy, but the cooldown (120 s since the step at 120) holds
    assert len(busy.web()) == 3
    busy.at(250)  # cooldown over → 4 = max
    busy.at(400)
    busy.at(600)
    assert len(busy.web()) == 4

    store = busy.ws.store()
    decisions = store.recent_audit("shop", [AuditAction.SCALE])
    assert [json.loads(e.record.detail)["to"] for e in decisions] == [4, 3]  # newest first
    first = json.loads(decisions[-1].record.detail)
    assert first["from"] == 2 and set(first["values"]) == {"shop/web/0", "shop/web/1"}
    for key, value in first["values"].items():  # the values that drove it: the servers' real CPU
        assert value == pytest.approx(cpu_utilisation(key) * 100, abs=0.01)
    assert decisions[-1].at == T0 + timedelta(seconds=120) and decisions[-1].record.commit == "c0ffee"
    assert scaled_counts(store, "shop") == {"shop/web": 4}

    # the chosen count is desired state, not drift: a plan made beside the daemon keeps it
    plan = plan_path(busy.folder, busy.ws)
    assert not plan.changes and plan.noop_count == 4
    assert len(load_desired_state(busy.folder).servers) == 2  # without the ledger: min


def test_idle_member_scales_in_to_min(tmp_path: Path) -> None:
    with in_process_cycles(tmp_path, {"shop.yaml": AUTOSCALED.format(target=99.0)}) as idle:
        _scale_in(idle)


def _scale_in(idle: Cycles) -> None:
    store = idle.ws.store()
    run = RunContext(run_id="seed", actor="test", commit="")
    autoscale.record(
        store,
        "shop",
        run,
        decide(
            Autoscale(member="shop/web", min=2, max=4, metric=ScaleMetric.CPU, target=99.0),
            3,
            {"x": 100.0},
            None,
            T0,
        ),
        T0 - timedelta(hours=1),
    )
    assert scaled_counts(store, "shop") == {"shop/web": 4}
    idle.at(0)
    assert len(idle.web()) == 4  # the persisted count, not min
    idle.at(60)
    idle.at(120)
    assert len(idle.web()) == 3  # mostly idle: one step in
    idle.at(300)
    idle.at(360)
    assert len(idle.web()) == 2
    idle.at(600)
    assert len(idle.web()) == 2  # min
