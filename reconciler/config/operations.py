"""config.operations: the typed specs of the kinds that run beside the servers — backup policies
(with crons that must fire), price lists and budgets (bounded money), alert sinks (checked URLs).

Split from ``config.documents`` (servers: providers, templates, clusters, inputs); the same
rules hold: schema-valid documents in, typed specs and located problems out."""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from reconciler.config.documents import Problems, Ref, input_value, ref
from reconciler.config.yamlsafe import Document, YamlPath, dotted
from reconciler.core import cron
from reconciler.core.errors import Diagnostic
from reconciler.core.limits import MONEY_DIGITS, MONEY_PLACES, money_problem
from reconciler.core.model import (
    AlertEvent,
    AlertSink,
    AlertSinkType,
    BackupMethod,
    BackupPolicy,
    BillingMode,
    Budget,
    Granularity,
    PriceList,
    Quiesce,
    Retention,
    SecretRef,
    SourceLocation,
)


# --- BackupPolicy -----------------------------------------------------------------------------
def build_backup_policy(doc: Document) -> tuple[BackupPolicy | None, Problems]:
    name, spec = doc.data["metadata"]["name"], doc.data["spec"]
    problems: Problems = []
    schedule = str(spec["schedule"])
    if not cron.valid(schedule):
        problems.append(
            Diagnostic(
                doc.file,
                doc.line_of(("spec", "schedule")),
                f"schedule {schedule!r} is not a valid cron expression; write five fields "
                "(minute hour day-of-month month day-of-week), e.g. '0 2 * * *' for 02:00 daily",
            )
        )
    elif not cron.fires(schedule):
        problems.append(
            Diagnostic(
                doc.file,
                doc.line_of(("spec", "schedule")),
                f"schedule {schedule!r} never fires (no date matches it, such as 30 February or "
                "31 April); fix the day of the month or the month",
            )
        )
    raw = spec["retention"]
    retention = Retention(
        int(raw.get("keep_last", 0)),
        int(raw.get("keep_daily", 0)),
        int(raw.get("keep_weekly", 0)),
        int(raw.get("keep_monthly", 0)),
    )
    if not any((retention.keep_last, retention.keep_daily, retention.keep_weekly, retention.keep_monthly)):
        problems.append(
            Diagnostic(
                doc.file,
                doc.line_of(("spec", "retention")),
                "retention keeps no backup at all; set keep_last (or another keep_*) to 1 or more",
            )
        )
    if problems:
        return None, problems
    max_age = spec.get("max_age_hours")
    return BackupPolicy(
        name=name,
        schedule=schedule,
        method=BackupMethod(spec.get("method", "snapshot")),
        quiesce=Quiesce(spec.get("quiesce", "none")),
        retention=retention,
        max_age_hours=float(max_age) if max_age is not None else None,
        location=SourceLocation(doc.file, doc.line),
    ), []


# --- PriceList --------------------------------------------------------------------------------
def _rate(doc: Document, path: YamlPath, raw: Any, problems: Problems) -> Decimal:
    """A schema-valid rate or amount as an exact decimal, within ``limits.money_problem``'s bounds."""
    amount = Decimal(str(raw))  # via str(): 0.1 stays exactly 0.1, never binary float arithmetic
    problem = money_problem(amount)
    if problem is not None:
        problems.append(
            Diagnostic(
                doc.file,
                doc.line_of(path),
                f"{dotted(path)} {raw} {problem}; write a decimal of at most {MONEY_DIGITS} digits before "
                f"the point and {MONEY_PLACES} after, such as '0.0416'",
            )
        )
        return Decimal(0)
    return amount


def build_price_list(doc: Document) -> tuple[PriceList | None, Problems]:
    name, spec = doc.data["metadata"]["name"], doc.data["spec"]
    problems: Problems = []
    flavors = {k: _rate(doc, ("spec", "flavors", k), v, problems) for k, v in spec.get("flavors", {}).items()}
    units = {k: _rate(doc, ("spec", "units", k), v, problems) for k, v in spec.get("units", {}).items()}
    flat = _rate(doc, ("spec", "flat_monthly"), spec.get("flat_monthly", 0), problems)
    if problems:
        return None, problems
    return PriceList(
        name=name,
        currency=str(spec["currency"]),
        billing=BillingMode(spec.get("billing", "instance-hours")),
        flavor_hourly=flavors,
        vcpu_hour=units.get("vcpu_hour", Decimal(0)),
        ram_gb_hour=units.get("ram_gb_hour", Decimal(0)),
        disk_gb_month=units.get("disk_gb_month", Decimal(0)),
        network_gb=units.get("network_gb", Decimal(0)),
        backup_gb_month=units.get("backup_gb_month", Decimal(0)),
        location=SourceLocation(doc.file, doc.line),
        granularity=Granularity(spec.get("granularity", "second")),
        flat_monthly=flat,
        network_in_gb=units.get("network_in_gb"),
        network_out_gb=units.get("network_out_gb"),
    ), []


# --- Budget -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class BudgetSpec:
    """A schema-valid Budget: the budget, its document, the scope it caps (a Cluster or global)."""

    budget: Budget
    doc: Document
    scope: Ref


def build_budget(doc: Document) -> tuple[BudgetSpec | None, Problems]:
    name, spec = doc.data["metadata"]["name"], doc.data["spec"]
    problems: Problems = []
    monthly = _rate(doc, ("spec", "monthly"), spec["monthly"], problems)
    if problems:
        return None, problems
    currency = spec.get("currency")
    budget = Budget(
        name=name,
        scope=str(spec["scope"]),
        monthly=monthly,
        currency=None if currency is None else str(currency),
        location=SourceLocation(doc.file, doc.line),
    )
    return BudgetSpec(budget, doc, ref(doc, ("spec", "scope"), spec["scope"])), []


# --- AlertSink --------------------------------------------------------------------------------
def _secret_or_text(doc: Document, raw: Any, path: YamlPath) -> str | SecretRef:
    """A schema-valid string or ``{secret: ...}`` (a relative file: path is taken from the YAML file)."""
    if not isinstance(raw, dict):
        return str(raw)
    value = input_value(doc, raw, path).value
    assert isinstance(value, SecretRef)
    return value


def _url_problem(url: str) -> str | None:
    """What stops a schema-valid http(s) URL from being posted to (no host, a port beyond 65535)."""
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port  # ValueError when not a number from 0 to 65535
    except ValueError:
        return f"{url!r} has a port that is not a number from 1 to 65535; fix the port"
    if not parts.hostname:
        return f"{url!r} names no host; write it like https://hooks.example.com/reconciler"
    if port == 0:
        return f"{url!r} has port 0; give the port the hook listens on, from 1 to 65535"
    return None


def build_alert_sink(doc: Document) -> tuple[AlertSink | None, Problems]:
    name, spec = doc.data["metadata"]["name"], doc.data["spec"]
    kind = AlertSinkType(spec["type"])
    problems: Problems = []
    if kind is AlertSinkType.WEBHOOK and "url" not in spec:
        problems.append(
            Diagnostic(
                doc.file,
                doc.line_of(("spec", "type")),
                "a webhook AlertSink needs spec.url; add the URL that alerts are POSTed to",
            )
        )
    url = spec.get("url")
    if isinstance(url, str):
        problem = _url_problem(url)
        if problem is not None:
            problems.append(Diagnostic(doc.file, doc.line_of(("spec", "url")), f"spec.url {problem}"))
    if kind is AlertSinkType.LOG:
        for field_name in ("url", "headers", "timeout_seconds", "retries"):
            if field_name in spec:
                problems.append(
                    Diagnostic(
                        doc.file,
                        doc.line_of(("spec", field_name)),
                        f"spec.{field_name} is only for webhook sinks; remove it or set type: webhook",
                    )
                )
    if problems:
        return None, problems
    headers = tuple(
        (str(k), _secret_or_text(doc, v, ("spec", "headers", k)))
        for k, v in sorted(spec.get("headers", {}).items())
    )
    return AlertSink(
        name=name,
        type=kind,
        url=_secret_or_text(doc, spec["url"], ("spec", "url")) if "url" in spec else None,
        timeout_seconds=float(spec.get("timeout_seconds", 5)),
        retries=int(spec.get("retries", 3)),
        events=tuple(AlertEvent(e) for e in spec.get("events", [])),
        headers=headers,
        location=SourceLocation(doc.file, doc.line),
    ), []
