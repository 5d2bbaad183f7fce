"""core.budgets: hold each ``Budget`` against a plan's cost estimate, and find the changes that break one.

A budget is a ceiling on the 30-day cost (hourly estimate × 720) of one cluster, or of
everything with ``scope: global``, compared in the plan's currency. A budget is *broken*
by a plan when the cost after it is over the ceiling and higher than before: a plan that
lowers the cost of a scope already over its ceiling breaks nothing, so a clean-up is never
blocked. The changes marked are those in the scope whose own hourly cost goes up
(a create, a bigger size, a replacement by a costlier server).

A budget written in another currency than the plan's prices cannot be compared (amounts
in two currencies are never mixed): it is not checked, and a diagnostic says so.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal

from reconciler.core.changes import Change
from reconciler.core.model import Budget, PriceList, Size
from reconciler.core.plan import HOURS_PER_MONTH, BudgetCheck, CostSummary
from reconciler.core.pricing import hourly_rate, price_list_of, prices

GLOBAL = "global"


def _rate_of(
    price_list_for: Callable[[str], PriceList | None],
    currency: str,
    provider: str,
    size: Size,
    flavor: str | None,
) -> Decimal:
    """A server's hourly rate in ``currency`` (0 when unpriced or priced in another currency)."""
    plist = price_list_of(price_list_for, provider)
    if plist is None or plist.currency != currency or not prices(plist, flavor):
        return Decimal(0)
    return hourly_rate(plist, size, flavor)


def change_delta(
    change: Change, price_list_for: Callable[[str], PriceList | None], currency: str
) -> Decimal:
    """How much a change moves the hourly cost, once done (after − before)."""
    after = (
        _rate_of(price_list_for, currency, change.after.provider, change.after.size, change.after.flavor)
        if change.after is not None
        else Decimal(0)
    )
    before = (
        _rate_of(price_list_for, currency, change.before.provider, change.before.size, change.before.flavor)
        if change.before is not None
        else Decimal(0)
    )
    return after - before


def check_budgets(
    budgets: Mapping[str, Budget],
    cost: CostSummary,
    changes: Sequence[Change],
    price_list_for: Callable[[str], PriceList | None],
) -> tuple[tuple[BudgetCheck, ...], tuple[str, ...]]:
    """Each budget against ``cost`` (sorted by name), and diagnostics for those not checked."""
    checks: list[BudgetCheck] = []
    notes: list[str] = []
    by_cluster = {line.scope: line for line in cost.by_cluster}
    raising = [c for c in changes if change_delta(c, price_list_for, cost.currency) > 0]
    for name in sorted(budgets):
        budget = budgets[name]
        where = f" ({budget.location})" if budget.location is not None else ""
        if budget.currency is not None and budget.currency != cost.currency:
            notes.append(
                f"Budget {name!r}{where} is in {budget.currency} but the plan's prices are in "
                f"{cost.currency}; it was not checked — write the ceiling in {cost.currency}"
            )
            continue
        if budget.scope == GLOBAL:
            before, after = cost.before_hourly, cost.after_hourly
            keys = tuple(c.key for c in raising)
        else:
            line = by_cluster.get(budget.scope)
            before = line.before_hourly if line is not None else Decimal(0)
            after = line.after_hourly if line is not None else Decimal(0)
            keys = tuple(c.key for c in raising if c.cluster == budget.scope)
        checks.append(
            BudgetCheck(
                name=name,
                scope=budget.scope,
                limit_monthly=budget.monthly,
                before_monthly=before * HOURS_PER_MONTH,
                after_monthly=after * HOURS_PER_MONTH,
                keys=keys,
            )
        )
    return tuple(checks), tuple(notes)

