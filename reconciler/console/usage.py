"""console.usage: the Usage page's window, grouping and mode, and the report made from the usage ledger.

The same report ``reconciler usage report`` prints (``billing.modes.main_report``), for a
period picked on the page — this month (the default), the last 7 or 30 days, or ``from``
and ``to`` given — grouped by any of ``billing.usage.GROUPINGS``, in any report mode,
priced with the PriceLists of the desired state the console shows. The store is asked for
the window only, as the command does.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from reconciler.billing import compare, usage
from reconciler.billing.measured import PriceListFor
from reconciler.billing.modes import BILLED, BOTH, MEASURED, REPORT_MODES, Ledger, main_report
from reconciler.billing.usage import GROUPINGS
from reconciler.console.views import BadRequest, text_param, time_param
from reconciler.core.clock import isoformat
from reconciler.core.errors import UserError
from reconciler.store.base import Store

if TYPE_CHECKING:
    from reconciler.console.snapshot import ConsoleSnapshot

PERIODS = ("month", "7d", "30d", "custom")
MAX_DAYS = 400


@dataclass(frozen=True)
class UsageQuery:
    period: str
    start: datetime
    end: datetime
    by: str
    mode: str

    def query(self) -> str:
        from urllib.parse import urlencode

        values = {"period": self.period, "by": self.by, "mode": self.mode}
        if self.period == "custom":
            values.update({"from": isoformat(self.start), "to": isoformat(self.end)})
        return urlencode(values)


def month_start(now: datetime) -> datetime:
    return now.astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def parse_query(params: Mapping[str, str], now: datetime) -> UsageQuery:
    period = text_param(params, "period", choices=PERIODS) or ("custom" if params.get("from") else "month")
    by = text_param(params, "by", choices=GROUPINGS) or "cluster"
    mode = text_param(params, "mode", choices=REPORT_MODES) or BILLED
    end = now
    if period == "month":
        start = month_start(now)
    elif period in ("7d", "30d"):
        start = now - timedelta(days=int(period[:-1]))
    else:
        start = time_param(params, "from") or month_start(now)
        end = time_param(params, "to") or now
    if end <= start:
        raise BadRequest(f"to ({isoformat(end)}) must be after from ({isoformat(start)})")
    if end - start > timedelta(days=MAX_DAYS):
        raise BadRequest(f"the period is longer than {MAX_DAYS} days; pick a shorter one")
    if start == end:
        raise BadRequest("the period is empty")
    return UsageQuery(period, start, end, by, mode)


def requested(
    params: Mapping[str, str], store: Store | None, snapshot: ConsoleSnapshot, now: datetime
) -> tuple[UsageQuery, Ledger]:
    """The usage a request asks for (its period, grouping and mode), read from the ledger and
    priced by the desired state's price lists when there is one."""
    q = parse_query(params, now)
    prices = snapshot.state.price_list_for if snapshot.state is not None else None
    return q, read_ledger(store, snapshot.deployment, q, now, prices)


def read_ledger(
    store: Store | None, deployment: str, q: UsageQuery, now: datetime, prices: PriceListFor | None
) -> Ledger:
    if store is None:
        return Ledger(q.start, q.end, now, [], [], prices)
    backups = store.backup_intervals(start=q.start, end=q.end, deployment=deployment)
    if q.mode in (MEASURED, BOTH) or (q.mode == BILLED and prices is not None):
        found = store.intervals(end=q.end, deployment=deployment)
        taken = store.window_samples(start=q.start, end=q.end, deployment=deployment)
        return Ledger(q.start, q.end, now, found, taken, prices, backups)
    found = store.intervals(start=q.start, end=q.end, deployment=deployment)
    return Ledger(q.start, q.end, now, found, [], prices, backups)


def report(ledger: Ledger, q: UsageQuery) -> usage.UsageReport:
    try:
        return main_report(ledger, q.by, q.mode)[0]
    except UserError as exc:
        raise BadRequest(exc.diagnostics[0].message) from None


def csv_text(ledger: Ledger, q: UsageQuery) -> str:
    main, measured = main_report(ledger, q.by, q.mode)
    if q.mode == BOTH and measured is not None:
        return compare.format_comparison_csv(compare.compare(main, measured))
    return usage.format_csv(main)
