"""core.budgets: hold each ``Budget`` against a plan's cost estimate, and find the changes that break one.

A budget is a ceiling on the 30-day cost (hourly estimate × 720) of one cluster, or of
everything with ``scope: global``, in one currency: the budget's ``currency``, else the one
currency its scope is priced in. It counts only what is priced in that currency — amounts
in two currencies are never added or compared — so a deployment priced in EUR and USD
holds a EUR budget against its EUR servers and a USD one against its USD servers, and a
broken budget in either currency breaks the plan. A budget is *broken* by a plan when the
cost after it is over the ceiling and higher than before: a plan that lowers the cost of a
scope already over its ceiling breaks nothing, so a clean-up is never blocked. The changes
marked are those in the scope whose own hourly cost in that currency goes up (a create, a
bigger size, a replacement by a costlier server).

A budget that cannot be compared is not checked, and a diagnostic says why and what to
write: one without a currency whose scope is priced in several, or one in a currency its
scope is not priced in at all. Validation (``config.money``) refuses both where the desired
state alone shows them; what is left here comes from servers observed but no longer desired.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal

from reconciler.core.changes import Change
from reconciler.core.cost import BudgetCheck, CostLine, CostSummary
from reconciler.core.model import GLOBAL, HOURS_PER_MONTH, Budget, PriceList, Size
from reconciler.core.pricing import hourly_rate, price_list_of

__all__ = ["GLOBAL", "change_delta", "check_budgets", "scope_lines"]


def _rate_of(
    price_list_for: Callable[[str], PriceList | None],
    currency: str,
    provider: str,
    size: Size,
    flavor: str | None,
) -> Decimal:
    """A server's hourly rate in ``currency`` (0 when unpriced or priced in another currency)."""
    plist = price_list_of(price_list_for, provider)
    if plist is None or plist.currency != currency or not plist.prices(flavor):
        return Decimal(0)
    return hourly_rate(plist, size, flavor)


def change_delta(
    change: Change, price_list_for: Callable[[str], PriceList | None], currency: str
) -> Decimal:
    """How much a change moves the hourly cost in ``currency``, once done (after − before)."""
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


def scope_lines(cost: CostSummary, scope: str) -> tuple[CostLine, ...]:
    """The cost lines a budget of ``scope`` covers: one cluster's, or every line for ``global``."""
    if scope == GLOBAL:
        return cost.by_cluster
    return tuple(line for line in cost.by_cluster if line.scope == scope)


def _subject(scope: str) -> str:
    return "all clusters" if scope == GLOBAL else f"cluster {scope}"


def _currency_of(
    budget: Budget, cost: CostSummary, seen: Sequence[str], where: str
) -> tuple[str | None, str]:
    """(currency to compare in, or None; the diagnostic when it cannot be compared)."""
    subject = _subject(budget.scope)
    if budget.currency is None:
        if len(seen) > 1:
            return None, (
                f"Budget {budget.name!r}{where} names no currency, and {subject} is priced in "
                f"{' and '.join(seen)}; it was not checked — write currency: in it (one Budget per currency)"
            )
        if seen:
            return seen[0], ""
        return (cost.currencies[0] if len(cost.currencies) == 1 else ""), ""
    if seen and budget.currency not in seen:
        return None, (
            f"Budget {budget.name!r}{where} is in {budget.currency} but {subject} is priced in "
            f"{' and '.join(seen)}; it was not checked — write the ceiling in {' or '.join(seen)}"
        )
    return budget.currency, ""


def check_budgets(
    budgets: Mapping[str, Budget],
    cost: CostSummary,
    changes: Sequence[Change],
    price_list_for: Callable[[str], PriceList | None],
) -> tuple[tuple[BudgetCheck, ...], tuple[str, ...]]:
    """Each budget against ``cost`` in its currency (sorted by name), and diagnostics for the others."""
    checks: list[BudgetCheck] = []
    notes: list[str] = []
    for name in sorted(budgets):
        budget = budgets[name]
        where = f" ({budget.location})" if budget.location is not None else ""
        lines = scope_lines(cost, budget.scope)
        currency, problem = _currency_of(budget, cost, sorted({line.currency for line in lines}), where)
        if currency is None:
            notes.append(problem)
            continue
        mine = [line for line in lines if line.currency == currency]
        before = sum((line.before_hourly for line in mine), Decimal(0))
        after = sum((line.after_hourly for line in mine), Decimal(0))
        raising = (c for c in changes if budget.scope in (GLOBAL, c.cluster))
        keys = tuple(c.key for c in raising if change_delta(c, price_list_for, currency) > 0)
        checks.append(
            BudgetCheck(
                name=name,
                scope=budget.scope,
                currency=currency,
                limit_monthly=budget.monthly,
                before_monthly=before * HOURS_PER_MONTH,
                after_monthly=after * HOURS_PER_MONTH,
                keys=keys,
            )
        )
    return tuple(checks), tuple(notes)
