"""PriceList extensions: granularity, a flat monthly fee, network in/out rates — from YAML to plan JSON."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from reconciler.config import load_desired_state
from reconciler.core.cost_codec import price_list_from_dict, price_list_to_dict
from reconciler.core.model import Granularity, PriceList, Size
from reconciler.core.pricing import hourly_rate, network_in_rate, network_out_rate
from tests.billing.conftest import write_state

FLAT = """\
apiVersion: reconciler/v1
kind: PriceList
metadata:
  name: prices
spec:
  currency: EUR
  granularity: hour
  flat_monthly: "7.20"
  flavors:
    sim.small: "0.10"
  units:
    vcpu_hour: "0.01"
    network_gb: "0.05"
    network_out_gb: "0.09"
"""


def test_yaml_to_price_list_and_back(tmp_path: Path) -> None:
    infra = write_state(tmp_path / "infra")
    (infra / "prices.yaml").write_text(FLAT)
    plist = load_desired_state(infra).price_lists["prices"]
    assert (plist.granularity, plist.flat_monthly) == (Granularity.HOUR, Decimal("7.20"))
    assert plist.currency == "EUR" and plist.network_gb == Decimal("0.05")
    assert (plist.network_in_gb, plist.network_out_gb) == (None, Decimal("0.09"))
    assert (network_in_rate(plist), network_out_rate(plist)) == (Decimal("0.05"), Decimal("0.09"))
    again = price_list_from_dict(price_list_to_dict(plist))
    assert again == plist


def test_flat_fee_is_part_of_every_hourly_rate() -> None:
    plist = PriceList(name="p", flavor_hourly={"small": Decimal("0.10")}, vcpu_hour=Decimal("0.01"),
                      flat_monthly=Decimal("7.20"))
    assert hourly_rate(plist, Size(2, 1024, 10), "small") == Decimal("0.11")  # 0.10 + 7.20 / 720
    assert hourly_rate(plist, Size(2, 1024, 10), None) == Decimal("0.03")  # 2 × 0.01 + 0.01
    only_flat = PriceList(name="f", flat_monthly=Decimal(1))
    assert only_flat.prices(None) and not PriceList(name="none").prices(None)


def test_old_plan_files_still_load() -> None:
    old = {"name": "p", "currency": "USD", "billing": "instance-hours", "flavor_hourly": {"a": "0.1"},
           "vcpu_hour": "0", "ram_gb_hour": "0", "disk_gb_month": "0", "network_gb": "0.09",
           "backup_gb_month": "0"}
    plist = price_list_from_dict(old)
    assert (plist.granularity, plist.flat_monthly) == (Granularity.SECOND, Decimal(0))
    assert plist.network_in_gb is None
