"""config.money: refuse a desired state whose prices or budgets are ambiguous, where it is written.

Every server is priced by its provider's PriceList, in that list's currency (``core.pricing``),
and a Budget counts only what is priced in its own currency (``core.budgets``). Two things
would leave that undecided, and each is a located error at validate:

* **A provider that names no PriceList while several are declared.** Its servers are covered
  by every one of them — possibly in different currencies — so which list prices them is
  unknowable; it must say ``price_list: NAME``. (With exactly one PriceList declared, a
  provider that names none is priced by it, as always.)
* **A Budget that cannot be compared with its scope.** One without a ``currency`` whose
  scope's servers are priced in several currencies must name the one it caps (one Budget
  per currency); one whose ``currency`` prices none of its scope's servers could never be
  exceeded, so it must be written in a currency its scope is priced in.

A server no PriceList prices is not an error here: the plan lists it as not priced.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from reconciler.config.resolve import Catalog
from reconciler.core.errors import Diagnostic
from reconciler.core.model import GLOBAL, DesiredServer, PriceList, price_list_in_force


def money_problems(catalog: Catalog, servers: Sequence[DesiredServer]) -> list[Diagnostic]:
    """Every ambiguity of pricing and budgets in the desired state (see the module docstring)."""
    if not catalog.complete:  # a file not read may hold the PriceList or Budget that settles it
        return []
    return [*_unnamed_lists(catalog), *_budget_currencies(catalog, servers)]


def _lists_text(lists: Iterable[PriceList]) -> str:
    return ", ".join(f"{plist.name} in {plist.currency}" for plist in sorted(lists, key=lambda p: p.name))


def _unnamed_lists(catalog: Catalog) -> list[Diagnostic]:
    if len(catalog.price_lists) < 2:
        return []
    problems = []
    for name in sorted(catalog.providers):
        spec = catalog.providers[name]
        if spec.price_list is not None:
            continue
        listed = _lists_text(catalog.price_lists.values())
        problems.append(
            Diagnostic(
                spec.doc.file,
                spec.doc.line_of(("spec",)),
                f"provider {name!r} names no price_list, and {len(catalog.price_lists)} PriceLists are "
                f"declared ({listed}): which one prices its servers is ambiguous; add "
                "price_list: NAME to its spec",
            )
        )
    return problems


def _price_list_of(catalog: Catalog, server: DesiredServer) -> PriceList | None:
    spec = catalog.providers.get(server.provider)
    if spec is None:
        return None
    plist = price_list_in_force(catalog.price_lists, spec.config.price_list)
    return plist if plist is not None and plist.prices(server.flavor) else None


def _budget_currencies(catalog: Catalog, servers: Sequence[DesiredServer]) -> list[Diagnostic]:
    problems = []
    for name in sorted(catalog.budgets):
        spec = catalog.budgets[name]
        budget = spec.budget
        scope = budget.scope
        lists = {
            plist.name: plist
            for server in servers
            if scope in (GLOBAL, server.cluster)
            for plist in [_price_list_of(catalog, server)]
            if plist is not None
        }
        currencies = sorted({plist.currency for plist in lists.values()})
        subject = "all clusters are" if scope == GLOBAL else f"cluster {scope!r} is"
        priced = f"{subject} priced in {' and '.join(currencies)} ({_lists_text(lists.values())})"
        doc = spec.doc
        if budget.currency is None and len(currencies) > 1:
            problems.append(
                Diagnostic(
                    doc.file,
                    doc.line_of(("spec", "monthly")),
                    f"Budget {name!r} names no currency, and {priced}: amounts in two currencies are "
                    f"never added; write currency: {currencies[0]} (or another of them) in it, one "
                    "Budget per currency",
                )
            )
        elif budget.currency is not None and currencies and budget.currency not in currencies:
            problems.append(
                Diagnostic(
                    doc.file,
                    doc.line_of(("spec", "currency")),
                    f"Budget {name!r} is in {budget.currency}, but {priced}: it could never be "
                    f"exceeded; write currency: {currencies[0]}"
                    + (" (or another of them)" if len(currencies) > 1 else "")
                    + f", or price its servers in {budget.currency}",
                )
            )
    return problems
