"""daemon.cycle: one level-triggered reconcile cycle of the daemon, built from the run steps.

Every cycle starts from nothing but the commit to reconcile and the clouds as they are:

1. load the desired state (autoscaled members at the count last chosen, from the ledger) and
   open one ``ProviderSession`` for its providers, used by every step below;
2. renew the provider leases (``run.leases.acquire_leases`` with the daemon's own identity,
   ``partial``: a provider another replica holds is left to it) — before observing, so
   nobody else can change what we observe before we act on it;
3. observe every provider once and make a plan (``run.planning.make_plan``);
4. autoscale: measure, decide, record; a changed count reloads the desired state and plans again;
5. a plan a deny Policy refuses is not applied (the loop rejects a new commit for it and goes
   back to the last good one; for the good commit itself the refusal is recorded and alerted
   as ``policy-denied``); leave out what must wait — keys in backoff, providers without our
   lease, failovers within their grace period or over their hourly cap, changes a deny
   Policy's change window holds back now (heals pass when the window allows them) — with
   everything depending on them (``backoff.restrict_plan``); record the failovers that go ahead;
6. refuse a plan that deletes more than ``--max-deletes`` (recorded, alerted, nothing applied);
7. apply (``run.apply.apply_in_session`` with the observation of step 3: settle intents,
   execute, verify by listing again only when something changed), asking ``cancel`` before
   each change starts so a shutdown starts nothing new;
8. account: backoff per key, metrics, alerts for failures and budgets;
9. backups: ``backup_cycle_in_session`` takes what is due and prunes, on the providers we
   hold, from the servers as last listed; failed and overdue backups alert. (The plan itself
   carries only the final backups taken before a delete or replace.)

A converged cycle therefore lists each cloud once (plus one backup listing per provider
under a backup policy).

Nothing here is remembered as a fact about the world from one cycle to the next; what the
context keeps between cycles is bookkeeping about *attempts* (backoff streaks, first
sightings of failed servers, leases held, alerts already sent).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from pathlib import Path

import structlog

from reconciler.config import deployment_name, load_desired_state
from reconciler.core.errors import Diagnostic, LeaseLostError, PermanentError, ProviderError, UserError
from reconciler.core.keys import cluster_of, format_member
from reconciler.core.model import AlertEvent, DesiredState, ObservedServer
from reconciler.core.plan import Plan
from reconciler.core.policy import holds, window_holds
from reconciler.core.provider import Provider
from reconciler.core.records import Lease
from reconciler.daemon import autoscale, failover
from reconciler.daemon.backoff import restrict_plan
from reconciler.daemon.context import CycleContext, CycleOutcome, CycleReport
from reconciler.daemon.notify import (
    account,
    budget_alerts,
    count_drift,
    notify,
    observation_metrics,
    refuse,
    run_backups,
)
from reconciler.run import backups
from reconciler.run.apply import apply_in_session, check_delete_budget
from reconciler.run.audit import RunContext, last_decisions, scaled_counts
from reconciler.run.executor import ChangeResult, ChangeStatus
from reconciler.run.leases import acquire_leases
from reconciler.run.planning import describe_adoptions, make_plan
from reconciler.run.session import ProviderSession
from reconciler.store.base import Store

log = structlog.get_logger("reconciler.daemon")










# --- leases -------------------------------------------------------------------------------------
def renew_leases(ctx: CycleContext, store: Store, state: DesiredState, run: RunContext) -> dict[str, Lease]:
    """Take or renew our lease of every provider we can; let go of providers no longer declared."""
    taken = acquire_leases(
        store,
        state.providers,
        run,
        ctx.ws.clock,
        holder=ctx.identity,
        ttl_seconds=ctx.options.lease_seconds,
        partial=True,
    )
    fresh = {lease.scope.split("/", 1)[1]: lease for lease in taken}
    for name, lease in ctx.leases.items():
        if name not in {p.name for p in state.providers}:
            store.release_lease(lease)
    lost = sorted(set(ctx.leases) - set(fresh))
    if lost:
        log.warning("provider leases held elsewhere now", providers=lost)
    ctx.leases = fresh
    return fresh


def fenced_write(ctx: CycleContext, store: Store, provider: str | None, write: Callable[[], None]) -> bool:
    """Make one ledger write about ``provider`` fenced by our lease of it.

    False, with nothing written, when we hold no lease of it or the lease moved on to
    another replica since we took it (a paused replica must not record decisions about
    servers it no longer manages).
    """
    lease = ctx.leases.get(provider) if provider is not None else None
    if lease is None:
        return False
    try:
        with store.fenced([lease]):
            write()
    except LeaseLostError as exc:
        ctx.metrics.errors.labels("lease").inc()
        log.warning("lease lost; not recording", provider=provider, error=str(exc))
        return False
    return True


def release_leases(ctx: CycleContext) -> None:
    store = ctx.ws.store()
    for lease in ctx.leases.values():
        store.release_lease(lease)
    ctx.leases = {}


def _scale(
    ctx: CycleContext,
    state: DesiredState,
    observed: list[ObservedServer],
    providers: Mapping[str, Provider],
    store: Store,
    run: RunContext,
    leased: set[str],
) -> dict[str, int] | None:
    """Decide every autoscaled member on a provider we hold; the new counts, or None if none changed."""
    now = ctx.ws.clock.now()
    specs = [s for s in state.autoscale.values() if _member_provider(state, s.member) in leased]
    if not specs:
        return None
    values = autoscale.measure(state, observed, providers, store, now, ctx.ws.retry)
    last = last_decisions(store, state.deployment)
    counts = {member: d.count for member, d in last.items()}
    changed: dict[str, int] = {}
    for decision in autoscale.evaluate(specs, counts, values, last, now):
        if not decision.changed:
            continue
        provider = _member_provider(state, decision.member)
        write = partial(autoscale.record, store, state.deployment, run, decision, now)
        if not fenced_write(ctx, store, provider, write):
            continue
        direction = "out" if decision.desired > decision.current else "in"
        ctx.metrics.scale.labels(decision.member, direction).inc()
        changed[decision.member] = decision.desired
        log.info(
            "scaling",
            member=decision.member,
            count_from=decision.current,
            count_to=decision.desired,
            reason=decision.reason,
        )
        notify(
            ctx, store, state, run, AlertEvent.SCALE,
            f"{decision.member}: {decision.current} → {decision.desired} servers ({decision.reason})",
            subject=decision.member,
            mean=decision.mean,
            target=decision.target,
            metric=decision.metric.value,
            values=dict(decision.values),
        )
    return {**counts, **changed} if changed else None


def _member_provider(state: DesiredState, member: str) -> str | None:
    for server in state.servers:
        if format_member(server.cluster, server.member) == member:
            return server.provider
    cluster = cluster_of(member)
    for server in state.servers:  # a member scaled to zero: guess its cluster's provider
        if server.cluster == cluster:
            return server.provider
    return state.providers[0].name if len(state.providers) == 1 else None


def _plan(
    state: DesiredState,
    observed: list[ObservedServer],
    session: ProviderSession,
    store: Store,
    commit: str,
    label: str,
) -> Plan:
    """The cycle's plan: server changes and final backups (scheduled backups are ``run_backups``' job)."""
    plan = make_plan(
        state,
        observed,
        session.providers,
        clock=session.ws.clock,
        commit=commit,
        last_generation=lambda key: store.max_generation(state.deployment, key),
        described=describe_adoptions(state, observed, session),
    )
    return dataclasses.replace(plan, source_path=label)


# --- the cycle ----------------------------------------------------------------------------------
def reconcile(
    ctx: CycleContext, path: Path, run: RunContext, label: str = "", *, fresh: bool = False
) -> CycleReport:
    """One cycle for the desired state at ``path`` (a checkout of ``run.commit``, named ``label``).

    ``fresh``: the commit was adopted this cycle. When a deny Policy refuses its plan, nothing
    at all is done (not even backups): the loop rejects the commit and reconciles the last good
    one instead. For a commit that is not fresh, backups still run beside the refusal."""
    label = label or str(path)
    ws, store = ctx.ws, ctx.ws.store()
    deployment = ctx.options.deployment
    counts = scaled_counts(store, deployment or deployment_name(path))
    state = load_desired_state(path, deployment=deployment, counts=counts)
    ctx.alerter.configure(state.alert_sinks)
    with ProviderSession(ws, state.providers) as session:
        leased = set(renew_leases(ctx, store, state, run))
        try:
            observed = session.observe(state.deployment)
        except ProviderError as exc:
            ctx.metrics.errors.labels("observe").inc()
            if isinstance(exc, PermanentError):
                notify(
                    ctx, store, state, run, AlertEvent.PROVIDER_ERROR,
                    f"observing the clouds failed: {exc}",
                )
            return CycleReport(CycleOutcome.FAILED, message=f"observe failed: {exc}")
        ctx.heartbeat()
        plan = _plan(state, observed, session, store, run.commit, label)
        if state.autoscale:
            scaled = _scale(ctx, state, observed, session.providers, store, run, leased)
            if scaled is not None:
                state = load_desired_state(path, deployment=deployment, counts=scaled)
                plan = _plan(state, observed, session, store, run.commit, label)
        observation_metrics(ctx, state, observed, plan)
        count_drift(ctx, plan, store)
        budget_alerts(ctx, store, state, plan, run)
        for violation in plan.violations:
            if not violation.denies:
                log.warning("policy warning", violation=str(violation))
        if plan.denied:
            ctx.metrics.errors.labels("policy").inc()
            if not fresh:
                run_backups(ctx, session, store, state, run, leased, observed)
            return _denied(plan)
        report, latest = _apply(ctx, session, store, state, plan, run, leased, observed)
        run_backups(ctx, session, store, state, run, leased, latest)
        return report


def _apply(
    ctx: CycleContext,
    session: ProviderSession,
    store: Store,
    state: DesiredState,
    plan: Plan,
    run: RunContext,
    leased: set[str],
    observed: list[ObservedServer],
) -> tuple[CycleReport, Sequence[ObservedServer]]:
    """Apply what may run now; the report, and the servers as last listed (for the backups)."""
    clock = ctx.ws.clock
    now = clock.now()
    mono = now.timestamp()  # backoff runs on the workspace's clock (fixed in tests)
    observed = [s for s in observed if s.provider in leased]  # what we may act on
    runnable, waiting = restrict_plan(plan, lambda c: ctx.backoff.waiting(c.key, mono), providers=leased)
    verdicts = ctx.guard.review(runnable, store, now)
    held = failover.held(verdicts)
    runnable, grace = restrict_plan(runnable, lambda c: c.id in held)
    blocking = [h.opened.window for h in window_holds(plan.windows, runnable.changes, now) if h.blocks]
    runnable, windowed = restrict_plan(runnable, lambda c: any(holds(w, c) for w in blocking))
    if windowed:
        log.info(
            "change window open; holding changes",
            windows=[f"{w.policy} ({w.where})" for w in blocking],
            keys=sorted({c.key for c in windowed}),
        )
    left_out = waiting + grace + windowed
    ctx.metrics.backoff.set(len(ctx.backoff.held(mono)))
    if not runnable.providers:  # every provider's lease is held by another replica: it does the work
        return CycleReport(
            CycleOutcome.PROGRESSING,
            changes=len(plan.changes),
            held=len(plan.changes),
            observed=True,
            message="another reconciler holds the lease of every provider",
        ), observed
    try:
        check_delete_budget(runnable, ctx.options.max_deletes, ctx.options.allow_mass_delete)
    except UserError as exc:
        refuse(ctx, store, state, run, str(exc))
        return CycleReport(
            CycleOutcome.FAILED,
            changes=len(plan.changes),
            held=len(plan.changes),
            observed=True,
            message=str(exc),
        ), observed
    going = {c.id for c in runnable.changes}
    deployment = plan.deployment
    for verdict in verdicts:
        ctx.metrics.failovers.labels(verdict.member, verdict.verdict.value).inc()
        provider = verdict.change.provider
        if verdict.first_seen is not None:
            sighting = partial(failover.record_sighting, store, deployment, run, verdict)
            fenced_write(ctx, store, provider, sighting)
        if verdict.verdict is failover.Verdict.GO and verdict.change.id in going:
            write = partial(failover.record, store, deployment, run, verdict, now)
            if not fenced_write(ctx, store, provider, write):
                continue  # the provider moved to another replica: apply refuses it below
            status = verdict.change.before.status.value if verdict.change.before else "failed"
            notify(
                ctx, store, state, run, AlertEvent.FAILOVER,
                f"{verdict.key} is {status}; {verdict.mode} ({verdict.reason})",
                subject=verdict.key,
                mode=verdict.mode,
            )
        elif verdict.verdict is failover.Verdict.CAPPED:
            notify(
                ctx, store, state, run, AlertEvent.FAILOVER,
                f"{verdict.key} needs a failover but is held: {verdict.reason}",
                subject=verdict.key,
                mode=verdict.mode,
            )
    ctx.last_refusal = ""

    def on_result(result: ChangeResult) -> None:
        ctx.metrics.changes.labels(
            result.change.action.value, result.change.provider, result.status.value
        ).inc()
        ctx.heartbeat()

    session.hold(run, leases=[ctx.leases[p.name] for p in runnable.providers])
    try:
        report = apply_in_session(
            runnable,
            session,
            run,
            max_deletes=ctx.options.max_deletes,
            allow_mass_delete=ctx.options.allow_mass_delete,
            on_result=on_result,
            cancel=ctx.cancel,
            observed=observed,
        )
    except LeaseLostError as exc:
        ctx.metrics.errors.labels("lease").inc()
        ctx.leases = {}
        return _failed(plan, exc), observed
    except UserError as exc:  # a secret that cannot be read now, say: the next cycle tries again
        ctx.metrics.errors.labels("input").inc()
        return _failed(plan, exc), observed
    failed = [r for r in report.results if r.status is ChangeStatus.FAILED]
    for backup in report.backups:
        if backup.status is backups.BackupStatus.FAILED:
            ctx.metrics.errors.labels("backup").inc()
            notify(
                ctx, store, state, run, AlertEvent.BACKUP_FAILED,
                backups.describe(backup),
                subject=backup.action.key,
            )
    for result in report.results:
        account(ctx, store, state, run, result, mono)
    if report.problems:
        ctx.metrics.errors.labels("verify").inc(len(report.problems))
    applied = sum(1 for r in report.results if r.status is ChangeStatus.SUCCEEDED)
    if failed or report.problems:
        outcome = CycleOutcome.FAILED
    elif left_out or len(runnable.providers) < len(plan.providers):
        outcome = CycleOutcome.PROGRESSING
    else:
        outcome = CycleOutcome.CONVERGED
    return CycleReport(
        outcome,
        changes=len(plan.changes),
        applied=applied,
        failed=len(failed),
        held=len(left_out),
        observed=True,
        message="; ".join([*report.problems, *(f"{r.change.id}: {r.message}" for r in failed)]),
    ), (report.observed if report.results else observed)


def _denied(plan: Plan) -> CycleReport:
    """A deny Policy refuses the plan: nothing is applied; the loop records and alerts it."""
    found = tuple(Diagnostic(v.where.file, v.where.line, v.summary()) for v in plan.denied)
    return CycleReport(
        CycleOutcome.DENIED,
        changes=len(plan.changes),
        held=len(plan.changes),
        observed=True,
        message="; ".join(str(d) for d in found),
        denied=found,
    )


def _failed(plan: Plan, exc: Exception) -> CycleReport:
    return CycleReport(CycleOutcome.FAILED, changes=len(plan.changes), observed=True, message=str(exc))
