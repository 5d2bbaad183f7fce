"""daemon.notify: what a daemon cycle tells people — alerts (recorded in the audit ledger too),
metrics of what it observed, drift, budgets, backups, and the fate of each change.

Split from ``daemon.cycle`` so that module keeps only the cycle's decisions; everything here
reports on them. Alerts are deduplicated by the ``Alerter``; one that is sent also gets an
``alert`` entry in the audit ledger, so the ledger says who was told what, and when.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import structlog

from reconciler.backup.cycle import backup_cycle_in_session
from reconciler.core.audit_detail import AlertDetail
from reconciler.core.changes import Change
from reconciler.core.errors import LeaseLostError, ProviderError
from reconciler.core.model import Action, AlertEvent, DesiredState, ObservedServer, ServerStatus
from reconciler.core.plan import Plan
from reconciler.daemon.alerts import Alert
from reconciler.daemon.context import CycleContext
from reconciler.daemon.failover import is_failover
from reconciler.run import backups
from reconciler.run.audit import AuditWriter, RunContext
from reconciler.run.executor import ChangeResult, ChangeStatus
from reconciler.run.session import ProviderSession
from reconciler.store.base import Store

log = structlog.get_logger("reconciler.daemon")


def raise_alert(ctx: CycleContext, store: Store, run: RunContext, alert: Alert) -> None:
    """Send an alert (unless it repeats a recent one) and record it in the audit ledger."""
    if not ctx.alerter.raise_alert(alert):
        return
    audit = AuditWriter(store, ctx.ws.clock, alert.deployment, run)
    audit.alert(alert.subject, AlertDetail(event=alert.event, summary=alert.summary))


def notify(
    ctx: CycleContext,
    store: Store,
    state: DesiredState,
    run: RunContext,
    event: AlertEvent,
    summary: str,
    subject: str = "",
    **details: object,
) -> None:
    """Raise an alert of ``event`` about ``state`` (``raise_alert`` of a ``make_alert``)."""
    raise_alert(ctx, store, run, make_alert(ctx, event, summary, state, run, subject, **details))


def make_alert(
    ctx: CycleContext,
    event: AlertEvent,
    summary: str,
    state: DesiredState,
    run: RunContext,
    subject: str = "",
    **details: object,
) -> Alert:
    return Alert(
        event=event,
        summary=summary,
        deployment=state.deployment,
        at=ctx.ws.clock.now(),
        subject=subject,
        commit=run.commit,
        details=details,
    )


def observation_metrics(
    ctx: CycleContext, state: DesiredState, observed: list[ObservedServer], plan: Plan
) -> None:
    m = ctx.metrics
    m.servers.clear()
    for config in state.providers:
        for status in ServerStatus:
            m.servers.labels(config.name, status.value).set(0)
    for server in observed:
        m.servers.labels(server.provider, server.status.value).inc()
    m.hourly_cost.clear()
    m.desired_hourly_cost.clear()
    for total in plan.cost.totals:  # one series per currency: amounts in two are never added
        m.hourly_cost.labels(total.currency).set(float(total.before_hourly))
        m.desired_hourly_cost.labels(total.currency).set(float(total.after_hourly))


def count_drift(ctx: CycleContext, plan: Plan, store: Store) -> None:
    """Count what changed behind our back: resized/retagged/stopped servers and vanished ones."""
    for change in plan.changes:
        if is_failover(change) and change.before and change.before.status is ServerStatus.ERROR:
            continue  # a failure, not drift
        if change.action is Action.CREATE and store.max_generation(plan.deployment, change.key) is not None:
            ctx.metrics.drift.labels("vanished").inc()
        elif (
            change.action in (Action.UPDATE, Action.REPLACE)
            and change.before
            and change.after
            and (change.before.spec_hash == change.after.spec_hash)
        ):
            ctx.metrics.drift.labels("changed").inc()
    for note in plan.diagnostics:
        if note.startswith("drift on "):
            ctx.metrics.drift.labels("warned").inc()


def budget_alerts(ctx: CycleContext, store: Store, state: DesiredState, plan: Plan, run: RunContext) -> None:
    """Alert for every Budget the desired state's hourly cost (× 720) goes over."""
    for check in plan.cost.budgets:
        if check.over:
            notify(
                ctx, store, state, run, AlertEvent.BUDGET_EXCEEDED,
                f"budget {check.name} ({check.scope}) exceeded: {check.after_monthly:.2f} {check.currency} "
                f"per 30-day month, over the ceiling of {check.limit_monthly:.2f} {check.currency}",
                subject=check.name,
                limit_monthly=str(check.limit_monthly),
                monthly=str(check.after_monthly),
                currency=check.currency,
            )


def run_backups(
    ctx: CycleContext,
    session: ProviderSession,
    store: Store,
    state: DesiredState,
    run: RunContext,
    leased: set[str],
    observed: Sequence[ObservedServer],
) -> int:
    """Take the backups that are due and prune, on the providers we hold, from the servers as last
    listed (``backup_cycle_in_session``); alert on failures and on keys whose newest backup is older
    than their policy allows. Returns failures."""
    if not state.backup_policies or not leased:
        return 0
    mine = dataclasses.replace(
        state,
        providers=tuple(p for p in state.providers if p.name in leased),
        servers=tuple(s for s in state.servers if s.provider in leased),
    )
    try:
        session.hold(run, leases=[ctx.leases[name] for name in sorted(leased)])
        report = backup_cycle_in_session(
            mine, session, run, observed=[s for s in observed if s.provider in leased]
        )
    except (ProviderError, LeaseLostError) as exc:
        ctx.metrics.errors.labels("backup").inc()
        log.warning("backup cycle failed; the next cycle tries again", error=str(exc))
        return 1
    for result in report.failures:
        ctx.metrics.errors.labels("backup").inc()
        summary = backups.describe(result)
        notify(ctx, store, state, run, AlertEvent.BACKUP_FAILED, summary, subject=result.action.key)
    for status in report.overdue:
        age = f"{status.age_hours:.1f} h" if status.age_hours is not None else "unknown"
        summary = (
            f"{status.key}: the newest backup is {age} old, over max_age_hours {status.max_age_hours:g} "
            f"of policy {status.policy}"
        )
        notify(
            ctx, store, state, run, AlertEvent.BACKUP_OVERDUE,
            summary,
            subject=status.key,
            policy=status.policy,
        )
    return len(report.failures)


def account(
    ctx: CycleContext, store: Store, state: DesiredState, run: RunContext, result: ChangeResult, mono: float
) -> None:
    change: Change = result.change
    if result.status is ChangeStatus.SUCCEEDED:
        ctx.backoff.succeeded(change.key)
        return
    if result.status is not ChangeStatus.FAILED:
        return
    delay = ctx.backoff.failed(change.key, mono)
    kind = "provider" if result.permanent else "apply"
    ctx.metrics.errors.labels(kind).inc()
    log.warning("change failed; backing off", change=change.id, error=result.message, retry_in=round(delay))
    event = AlertEvent.PROVIDER_ERROR if result.permanent else AlertEvent.APPLY_FAILED
    notify(
        ctx, store, state, run, event,
        f"{change.action.value} {change.key} failed: {result.message}",
        subject=change.key,
        provider=change.provider,
        retry_in_seconds=round(delay),
    )


def refuse(
    ctx: CycleContext,
    store: Store,
    state: DesiredState,
    run: RunContext,
    message: str,
    event: AlertEvent = AlertEvent.APPLY_FAILED,
) -> None:
    """A guard (or a deny Policy: ``event`` policy-denied) refused the plan: record it once (not
    every cycle) and alert."""
    if message == ctx.last_refusal:
        return
    ctx.last_refusal = message
    ctx.metrics.errors.labels("refused").inc()
    AuditWriter(store, ctx.ws.clock, state.deployment, run).refuse_plan(message)
    notify(ctx, store, state, run, event, f"plan refused, nothing applied: {message}")
