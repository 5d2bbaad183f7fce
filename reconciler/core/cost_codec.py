"""core.cost_codec: the JSON form of price lists and of a plan's cost (per currency, by cluster, budgets)."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from reconciler.core import plan_fields as field
from reconciler.core.cost import BudgetCheck, CostLine, CostSummary
from reconciler.core.model import BillingMode, Granularity, PriceList

_UNIT_RATES = ("vcpu_hour", "ram_gb_hour", "disk_gb_month", "network_gb", "backup_gb_month")


def price_list_to_dict(plist: PriceList) -> dict[str, Any]:
    return {
        "name": plist.name,
        "currency": plist.currency,
        "billing": plist.billing.value,
        "flavor_hourly": {k: str(v) for k, v in sorted(plist.flavor_hourly.items())},
        **{unit: str(getattr(plist, unit)) for unit in _UNIT_RATES},
        "granularity": plist.granularity.value,
        "flat_monthly": str(plist.flat_monthly),
        "network_in_gb": None if plist.network_in_gb is None else str(plist.network_in_gb),
        "network_out_gb": None if plist.network_out_gb is None else str(plist.network_out_gb),
    }


def price_list_from_dict(data: Mapping[str, Any]) -> PriceList:
    data = field.obj(data)

    def rate(unit: str) -> Decimal:
        return field.rate(data.get(unit, "0"))

    return PriceList(
        name=field.text(data["name"]),
        currency=field.text(data.get("currency", "USD")),
        billing=BillingMode(data.get("billing", "instance-hours")),
        flavor_hourly={field.text(k): field.rate(v)
                       for k, v in field.obj(data.get("flavor_hourly", {})).items()},
        vcpu_hour=rate("vcpu_hour"),
        ram_gb_hour=rate("ram_gb_hour"),
        disk_gb_month=rate("disk_gb_month"),
        network_gb=rate("network_gb"),
        backup_gb_month=rate("backup_gb_month"),
        granularity=Granularity(data.get("granularity", "second")),
        flat_monthly=rate("flat_monthly"),
        network_in_gb=None if data.get("network_in_gb") is None else rate("network_in_gb"),
        network_out_gb=None if data.get("network_out_gb") is None else rate("network_out_gb"),
    )


def _line_to_dict(line: CostLine) -> dict[str, Any]:
    return {
        "scope": line.scope,
        "currency": line.currency,
        "before_hourly": str(line.before_hourly),
        "after_hourly": str(line.after_hourly),
        "delta_hourly": str(line.delta_hourly),
    }


def _total_to_dict(total: CostLine) -> dict[str, Any]:
    return {
        "currency": total.currency,
        "before_hourly": str(total.before_hourly),
        "after_hourly": str(total.after_hourly),
        "delta_hourly": str(total.delta_hourly),
        "before_monthly": str(total.before_monthly),
        "after_monthly": str(total.after_monthly),
        "delta_monthly": str(total.delta_monthly),
    }


def cost_to_dict(cost: CostSummary) -> dict[str, Any]:
    """The plan's cost: one total per currency (``totals``), lines by cluster and currency, budgets.

    A plan priced in one currency also carries that total's figures at the top
    (``currency``, ``before_hourly``…), as plans always have; one priced in several carries
    none there, so a reader expecting one currency fails rather than mixes them.
    """
    totals = cost.totals
    data: dict[str, Any] = _total_to_dict(totals[0]) if len(totals) == 1 else {}
    return data | {
        "totals": [_total_to_dict(total) for total in totals],
        "by_cluster": [_line_to_dict(line) for line in cost.by_cluster],
        "unpriced": list(cost.unpriced),
        "measured": list(cost.measured),
        "budgets": [
            {
                "name": check.name,
                "scope": check.scope,
                "currency": check.currency,
                "limit_monthly": str(check.limit_monthly),
                "before_monthly": str(check.before_monthly),
                "after_monthly": str(check.after_monthly),
                "keys": list(check.keys),
                "broken": check.broken,
            }
            for check in cost.budgets
        ],
    }


def cost_from_dict(cost: Mapping[str, Any]) -> CostSummary:
    """The cost of a plan file; the totals it states must be those of its lines (an edit is refused).

    A plan written before costs were kept per currency names its one currency at the top only.
    """
    default = field.text(cost.get("currency", "USD"))
    summary = CostSummary(
        by_cluster=tuple(
            CostLine(
                scope=field.text(line["scope"]),
                currency=field.text(line.get("currency", default)),
                before_hourly=field.amount(line["before_hourly"]),
                after_hourly=field.amount(line["after_hourly"]),
            )
            for line in map(field.obj, field.seq(cost.get("by_cluster", [])))
        ),
        unpriced=field.texts(cost.get("unpriced", [])),
        measured=field.texts(cost.get("measured", [])),
        budgets=tuple(
            BudgetCheck(
                name=field.text(check["name"]),
                scope=field.text(check["scope"]),
                currency=field.text(check.get("currency", default)),
                limit_monthly=field.amount(check["limit_monthly"]),
                before_monthly=field.amount(check["before_monthly"]),
                after_monthly=field.amount(check["after_monthly"]),
                keys=field.texts(check.get("keys", [])),
            )
            for check in map(field.obj, field.seq(cost.get("budgets", [])))
        ),
    )
    stated = [*map(field.obj, field.seq(cost.get("totals", [])))]
    if "before_hourly" in cost:
        stated.append(cost)
    for total in stated:
        mine = summary.total(field.text(total.get("currency", default)))
        figures = (field.amount(total["before_hourly"]), field.amount(total["after_hourly"]))
        if figures != (mine.before_hourly, mine.after_hourly):
            raise ValueError(f"the cost totals in {mine.currency} are not the sums of its lines")
    return summary
