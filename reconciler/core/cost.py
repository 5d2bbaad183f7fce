"""core.cost: what a plan says about money — hourly cost by scope and currency, budgets held against it.

A plan's cost is ``CostSummary``: one ``CostLine`` per cluster and currency (amounts in two
currencies are never added), the keys no PriceList prices, and each Budget's ``BudgetCheck``.
``core.pricing`` computes them, ``core.budgets`` checks budgets, ``core.cost_codec`` writes
them into a plan file. The month's length and the name of the all-clusters scope are the
model's (``core.model.HOURS_PER_MONTH``, ``GLOBAL``).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from reconciler.core.model import GLOBAL, HOURS_PER_MONTH


@dataclass(frozen=True)
class CostLine:
    """Hourly cost of one scope (a cluster, or ``global`` for a total) in one currency, before and after."""

    scope: str
    currency: str
    before_hourly: Decimal
    after_hourly: Decimal

    @property
    def delta_hourly(self) -> Decimal:
        return self.after_hourly - self.before_hourly

    @property
    def before_monthly(self) -> Decimal:
        return self.before_hourly * HOURS_PER_MONTH

    @property
    def after_monthly(self) -> Decimal:
        return self.after_hourly * HOURS_PER_MONTH

    @property
    def delta_monthly(self) -> Decimal:
        return self.delta_hourly * HOURS_PER_MONTH


@dataclass(frozen=True)
class BudgetCheck:
    """One Budget held against the plan's cost estimate in the budget's currency (30-day months).

    ``keys`` are the changes in the budget's scope that raise the hourly cost in that
    currency: the ones a rendering marks when the budget breaks.
    """

    name: str
    scope: str  # "global" or a cluster
    currency: str
    limit_monthly: Decimal
    before_monthly: Decimal
    after_monthly: Decimal
    keys: tuple[str, ...] = ()

    @property
    def over(self) -> bool:
        return self.after_monthly > self.limit_monthly

    @property
    def broken(self) -> bool:
        """Over the ceiling after the plan, and made costlier by it: the plan breaks the budget."""
        return self.over and self.after_monthly > self.before_monthly


@dataclass(frozen=True)
class CostSummary:
    """A plan's hourly cost by cluster and currency. Amounts in two currencies are never added:
    ``totals`` has one line per currency, and a cluster priced in two has a line in each."""

    by_cluster: tuple[CostLine, ...] = ()  # in (currency, cluster) order
    unpriced: tuple[str, ...] = ()  # keys no PriceList prices: listed, never counted
    budgets: tuple[BudgetCheck, ...] = ()
    # desired keys whose PriceList bills measured use: their figure here is an estimate (see render)
    measured: tuple[str, ...] = ()

    @property
    def currencies(self) -> tuple[str, ...]:
        return tuple(sorted({line.currency for line in self.by_cluster}))

    def lines_in(self, currency: str) -> tuple[CostLine, ...]:
        return tuple(line for line in self.by_cluster if line.currency == currency)

    def total(self, currency: str) -> CostLine:
        """Everything priced in ``currency``, before and after (zero when nothing is)."""
        mine = self.lines_in(currency)
        return CostLine(
            scope=GLOBAL,
            currency=currency,
            before_hourly=sum((line.before_hourly for line in mine), Decimal(0)),
            after_hourly=sum((line.after_hourly for line in mine), Decimal(0)),
        )

    @property
    def totals(self) -> tuple[CostLine, ...]:
        """One total per currency, in currency order."""
        return tuple(self.total(currency) for currency in self.currencies)
