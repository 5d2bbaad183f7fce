"""core.pricing: what a server costs per hour under a PriceList, a plan's cost delta, an interval's cost.

Money is ``Decimal`` from the YAML to the report: no float ever touches a price, and
nothing is rounded here (rounding to cents happens only when a figure is printed).

A flavor's hourly rate wins; otherwise the size is priced by unit rates:
``vcpu_hour × cpus + ram_gb_hour × memory_mb / 1024 + disk_gb_month × disk_gb / 720``
(a month is 720 hours, ``cost.HOURS_PER_MONTH``). A list's ``flat_monthly`` is added to
either, as ``flat_monthly / 720`` per hour.

Granularity: by the second, every whole second of an interval is billed; by the minute or
the hour, every *started* minute or hour of an interval (one server at one size) is billed
in full — the old EC2 rule, so a resize or a restart begins a new hour. A started unit
belongs to the report window (or day) in which it starts, so splitting a window never
bills one twice. The granularity is a billing term of the PriceList, recorded with the
rate in every usage interval it opens (``usage_interval``), so a report made later bills
the interval as the list did then (``interval_terms``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from decimal import Decimal

from reconciler.core.cost import CostLine, CostSummary
from reconciler.core.model import (
    HOURS_PER_MONTH,
    BillingMode,
    DesiredServer,
    Granularity,
    ObservedServer,
    PriceList,
    Size,
)
from reconciler.core.records import UsageInterval

PriceListFor = Callable[[str], PriceList | None]  # provider name -> the PriceList in force
_SECONDS_PER_HOUR = Decimal(3600)
_MB_PER_GB = Decimal(1024)


def hourly_rate(price_list: PriceList, size: Size, flavor: str | None) -> Decimal:
    """The flavor's hourly rate if the list has one, else the size priced by unit rates; plus the flat fee."""
    flat = price_list.flat_monthly / HOURS_PER_MONTH if price_list.flat_monthly else Decimal(0)
    if flavor is not None and flavor in price_list.flavor_hourly:
        return Decimal(price_list.flavor_hourly[flavor]) + flat
    return (
        price_list.vcpu_hour * size.cpus
        + price_list.ram_gb_hour * Decimal(size.memory_mb) / _MB_PER_GB
        + price_list.disk_gb_month * Decimal(size.disk_gb) / HOURS_PER_MONTH
        + flat
    )


def network_in_rate(price_list: PriceList) -> Decimal:
    """Per GB received: ``network_in_gb``, else ``network_gb``."""
    return price_list.network_gb if price_list.network_in_gb is None else price_list.network_in_gb


def network_out_rate(price_list: PriceList) -> Decimal:
    """Per GB sent: ``network_out_gb``, else ``network_gb``."""
    return price_list.network_gb if price_list.network_out_gb is None else price_list.network_out_gb


def _started_units(origin: datetime, moment: datetime, unit_seconds: int) -> int:
    """How many units counted from ``origin`` have started before ``moment`` (to the microsecond)."""
    micros = (moment - origin) // timedelta(microseconds=1)
    return -(-micros // (unit_seconds * 1_000_000))


def billed_seconds(origin: datetime, first: datetime, last: datetime, granularity: Granularity) -> int:
    """Seconds to bill for the piece [first, last) of an interval that began at ``origin``.

    By the second: the piece's whole seconds. By the minute or the hour: the unit's length ×
    the number of units, counted from ``origin``, that start inside the piece — so the
    pieces of one interval add up to its started units, however it is cut.
    """
    if last <= first:
        return 0
    if granularity is Granularity.SECOND:
        return (last - first) // timedelta(seconds=1)
    unit = granularity.seconds
    return unit * (_started_units(origin, last, unit) - _started_units(origin, first, unit))


def granularity_note(granularity: Granularity) -> str:
    """How a line item's time was counted: ``by the second``, ``whole minutes``, ``whole hours``."""
    return "by the second" if granularity is Granularity.SECOND else f"whole {granularity.value}s"


def interval_terms(
    interval: UsageInterval, price_list: PriceList | None
) -> tuple[Decimal | None, str, Granularity]:
    """(hourly rate, currency, granularity) to bill an interval with.

    Repriced by ``price_list`` when given: its rate, currency and terms (unpriced when the
    list neither names the flavor nor has unit rates). Otherwise what was recorded when the
    interval opened — the rate, its currency and the terms in force then (an interval from
    before terms were recorded: by the second). An unpriced interval has no rate and no
    currency, and its seconds are counted as they are.
    """
    if price_list is not None:
        if not price_list.prices(interval.flavor):
            return None, "", Granularity.SECOND
        rate = hourly_rate(price_list, interval.size, interval.flavor)
        return rate, price_list.currency, price_list.granularity
    if interval.hourly_rate is None:
        return None, "", Granularity.SECOND
    return interval.hourly_rate, interval.currency, interval.billed_granularity


def price_list_of(price_list_for: PriceListFor, provider: str) -> PriceList | None:
    """Ask the lookup for a provider's PriceList; a provider it does not know (KeyError) has none.

    ``DesiredState.price_list_for`` raises KeyError for a provider the YAML no longer
    declares — the usual case when repricing old ledger entries.
    """
    try:
        return price_list_for(provider)
    except KeyError:
        return None


def plan_cost(
    desired: Sequence[DesiredServer],
    observed: Sequence[ObservedServer],
    price_list_for: PriceListFor,
) -> CostSummary:
    """Hourly cost before (everything observed now) and after (everything desired), by cluster and currency.

    Every server is priced by its provider's PriceList, in that list's currency; amounts in
    different currencies are never added (a cluster priced in two has a line in each). Every
    observed server counts, whatever its status: the estimate is what the cloud may bill. A
    server is *unpriced* (listed by key, never silently left out) when its provider has no
    PriceList or the list neither names its flavor nor has unit rates. Desired servers under
    a ``billing: measured`` list are named in ``measured``: their bill follows use, so the
    figure here is an estimate (see ``render.cost_notes``).
    """
    unpriced: set[str] = set()
    measured: set[str] = set()
    before: dict[tuple[str, str], Decimal] = {}
    after: dict[tuple[str, str], Decimal] = {}

    # Thousands of servers share a handful of (provider, size, flavor): each is priced once.
    lists: dict[str, PriceList | None] = {}
    rates: dict[tuple[str, Size, str | None], tuple[str, Decimal] | None] = {}

    def price_list(provider: str) -> PriceList | None:
        if provider not in lists:
            lists[provider] = price_list_of(price_list_for, provider)
        return lists[provider]

    def price(provider: str, key: str, size: Size, flavor: str | None) -> tuple[str, Decimal] | None:
        what = (provider, size, flavor)
        if what not in rates:
            plist = price_list(provider)
            priced = plist is not None and plist.prices(flavor)
            rates[what] = (plist.currency, hourly_rate(plist, size, flavor)) if plist and priced else None
        found = rates[what]
        if found is None:
            unpriced.add(key)
        return found

    for server in desired:
        priced = price(server.provider, server.key, server.size, server.flavor)
        if priced is not None:
            where = (priced[0], server.cluster)
            after[where] = after.get(where, Decimal(0)) + priced[1]
            plist = price_list(server.provider)
            if plist is not None and plist.billing is BillingMode.MEASURED:
                measured.add(server.key)
    for seen in observed:
        priced = price(seen.provider, seen.key, seen.size, seen.flavor)
        if priced is not None:
            where = (priced[0], seen.cluster)
            before[where] = before.get(where, Decimal(0)) + priced[1]
    lines = tuple(
        CostLine(
            scope=cluster,
            currency=currency,
            before_hourly=before.get((currency, cluster), Decimal(0)),
            after_hourly=after.get((currency, cluster), Decimal(0)),
        )
        for currency, cluster in sorted(before.keys() | after.keys())
    )
    return CostSummary(by_cluster=lines, unpriced=tuple(sorted(unpriced)), measured=tuple(sorted(measured)))


def overlap_seconds(interval: UsageInterval, start: datetime, end: datetime) -> int:
    """Whole seconds of the interval inside [start, end); an open interval runs up to ``end``."""
    first = max(interval.start, start)
    last = end if interval.end is None else min(interval.end, end)
    if last <= first:
        return 0
    return (last - first) // timedelta(seconds=1)


def interval_cost(
    interval: UsageInterval, start: datetime, end: datetime, price_list: PriceList | None
) -> Decimal:
    """Cost of the interval's overlap with [start, end): billed hours × hourly rate.

    The rate and terms are those recorded when the interval opened, unless ``price_list`` is
    given to reprice it (``interval_terms``): by the second, or every started minute or hour
    counted from the interval's start. An interval nothing priced costs 0. Cap ``end`` at
    "now" for open intervals.
    """
    rate, _, granularity = interval_terms(interval, price_list)
    if rate is None:
        return Decimal(0)
    first = max(interval.start, start)
    last = end if interval.end is None else min(interval.end, end)
    return rate * billed_seconds(interval.start, first, last, granularity) / _SECONDS_PER_HOUR


def seconds_to_hours(seconds: int) -> Decimal:
    return Decimal(seconds) / _SECONDS_PER_HOUR


def usage_interval(
    deployment: str, server: ObservedServer, price_list: PriceList | None, *, start: datetime
) -> UsageInterval:
    """A usage interval opening for ``server`` at its current size, priced at the rate and terms in force.

    A server its PriceList does not price (no rate for its flavor, no unit rates) is recorded
    unpriced — no rate, currency or terms — as the plan lists it, never at a rate of 0.
    """
    if price_list is not None and not price_list.prices(server.flavor):
        price_list = None
    return UsageInterval(
        deployment=deployment,
        provider=server.provider,
        resource_id=server.resource_id,
        key=server.key,
        flavor=server.flavor,
        size=server.size,
        start=start,
        hourly_rate=hourly_rate(price_list, server.size, server.flavor) if price_list else None,
        currency=price_list.currency if price_list else "",
        price_list=price_list.name if price_list else "",
        granularity=price_list.granularity if price_list else None,
        billing=price_list.billing if price_list else None,
    )
