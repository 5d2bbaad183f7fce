"""billing.modes: one report per ``--mode`` — instance-hours, measured, both, or as each PriceList bills.

A PriceList says how its provider's servers are billed (``billing: instance-hours`` or
``measured``); one PriceList per Provider is how rates and modes differ per provider. The
default mode, *billed*, follows each list: servers of an instance-hours provider are priced
by time × rate, those of a measured provider by use × unit rates, and the two kinds of line
items share the rows of their group. Without PriceLists (no ``--prices``) the ledger's
recorded rates and terms are all there is: every server is priced by instance-hours under
the granularity recorded with its interval, and servers recorded as billed by measured use
(whose unit rates the ledger does not keep) are named in a note.

``instance-hours`` and ``measured`` force one mode for every server; ``both`` builds the two
side by side (``billing.compare``).

Backup storage (``billing.backup_storage``) is billed by size × time whatever the mode, so every
report carries it — in ``both``, on each side, so the saving is the servers' alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from reconciler.billing.backup_storage import with_backup_storage
from reconciler.billing.measured import MeasuredReport, PriceListFor, build_measured_report
from reconciler.billing.usage import UsageReport, build_report, merge_rows, totals_of
from reconciler.core.model import BillingMode, MetricSample
from reconciler.core.pricing import price_list_of
from reconciler.core.records import BackupInterval, UsageInterval

INSTANCE_HOURS = "instance-hours"
MEASURED = "measured"
BOTH = "both"
BILLED = "billed"
REPORT_MODES = (BILLED, INSTANCE_HOURS, MEASURED, BOTH)


@dataclass(frozen=True)
class Ledger:
    """What a report is made from: the window, the ledger's intervals and samples, the PriceLists."""

    start: datetime
    end: datetime
    now: datetime
    intervals: Sequence[UsageInterval]
    samples: Sequence[MetricSample] = ()
    prices: PriceListFor | None = None
    backups: Sequence[BackupInterval] = ()  # backup storage overlapping the window

    def only(self, intervals: Sequence[UsageInterval], backups: Sequence[BackupInterval] = ()) -> Ledger:
        """The same window with only these intervals (and the samples of their servers) and backups."""
        keys = {(i.provider, i.resource_id) for i in intervals}
        samples = [s for s in self.samples if (s.provider, s.resource_id) in keys]
        return replace(self, intervals=intervals, samples=samples, backups=backups)


def hours_report(ledger: Ledger, by: str) -> UsageReport:
    return build_report(ledger.intervals, start=ledger.start, end=ledger.end, by=by, now=ledger.now,
                        reprice=ledger.prices)


def measured_report(ledger: Ledger, by: str) -> MeasuredReport:
    return build_measured_report(ledger.samples, ledger.intervals, start=ledger.start, end=ledger.end, by=by,
                                 now=ledger.now, prices=ledger.prices)


def measured_providers(ledger: Ledger) -> set[str]:
    """Providers whose PriceList bills by measured use."""
    if ledger.prices is None:
        return set()
    found = set()
    for provider in {i.provider for i in ledger.intervals}:
        plist = price_list_of(ledger.prices, provider)
        if plist is not None and plist.billing is BillingMode.MEASURED:
            found.add(provider)
    return found


MEASURED_UNPRICED_NOTE = (
    "{servers} server(s) were billed by measured use under the PriceList recorded with them: their "
    "unit rates are not in the usage ledger, so they are shown by instance-hours at the recorded "
    "rate; give --prices PATH to bill their measured use"
)


def billed_report(ledger: Ledger, by: str) -> tuple[UsageReport, MeasuredReport | None]:
    """Each server priced the way its PriceList bills; the measured part too, for its gaps.

    Without PriceLists, servers whose recorded terms say ``billing: measured`` are billed by
    instance-hours at their recorded rate (the unit rates are not recorded), and a note says so.
    """
    measured_by = measured_providers(ledger)
    if not measured_by:
        report = hours_report(ledger, by)
        if ledger.prices is None:
            by_use = BillingMode.MEASURED
            servers = {(i.provider, i.resource_id) for i in ledger.intervals if i.billing is by_use}
            if servers:
                note = MEASURED_UNPRICED_NOTE.format(servers=len(servers))
                report = replace(report, notes=(*report.notes, note))
        return report, None  # every server is billed by the hour
    hours = hours_report(ledger.only([i for i in ledger.intervals if i.provider not in measured_by]), by)
    measured = measured_report(ledger.only([i for i in ledger.intervals if i.provider in measured_by]), by)
    return merge(hours, measured.report), measured


def merge(first: UsageReport, second: UsageReport) -> UsageReport:
    """Two reports of the same window over disjoint servers as one: rows of a group joined, lines kept."""
    ordered = merge_rows(first.rows, second.rows)
    return replace(first, rows=ordered, totals=totals_of(ordered), running=first.running + second.running,
                   repriced=first.repriced or second.repriced, mode=BILLED, notes=first.notes + second.notes)


def main_report(ledger: Ledger, by: str, mode: str) -> tuple[UsageReport, MeasuredReport | None]:
    """The report a single-mode view shows (for ``both``: the instance-hours one), and the measured part.

    Backup storage is joined to the main report in every mode, and to the measured one when
    it is a whole report (``measured``, ``both``) rather than the measured servers' part of
    a billed one.
    """
    if mode == MEASURED:
        measured = _with_backups(measured_report(ledger, by), ledger)
        return measured.report, measured
    if mode == BILLED:
        report, part = billed_report(ledger, by)
        return with_backup_storage(report, ledger.backups, ledger.prices), part
    report = with_backup_storage(hours_report(ledger, by), ledger.backups, ledger.prices)
    return report, (_with_backups(measured_report(ledger, by), ledger) if mode == BOTH else None)


def _with_backups(measured: MeasuredReport, ledger: Ledger) -> MeasuredReport:
    return replace(measured, report=with_backup_storage(measured.report, ledger.backups, ledger.prices))
