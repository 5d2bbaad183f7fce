"""engine: the pipeline as plain functions — observe, plan, settle, apply, verify.

The CLI and the daemon are thin shells over these functions, so a plan made in CI and a
daemon's cycle cannot diverge. Every decision comes from observing the clouds now
(level-triggered); the ledger is consulted only for facts the clouds cannot tell us
(the highest generation ever used for a key, unresolved intents).
"""

from __future__ import annotations

import dataclasses
import functools
import os
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import structlog

from reconciler.config import check_secrets, deployment_name, load_desired_state, resolve_secret
from reconciler.core.backups import plan_backups
from reconciler.core.budgets import check_budgets
from reconciler.core.clock import Clock
from reconciler.core.diff import diff
from reconciler.core.errors import LeaseLostError, UserError
from reconciler.core.graph import order_changes
from reconciler.core.model import (
    Action,
    Capabilities,
    DesiredServer,
    DesiredState,
    ObservedServer,
    ProviderConfig,
    Snapshot,
)
from reconciler.core.plan import Plan, stale_keys
from reconciler.core.pricing import plan_cost, usage_interval
from reconciler.core.provider import Provider, ProviderContext, create_provider
from reconciler.core.records import AuditAction, AuditRecord, Lease, Outcome
from reconciler.core.retry import RetryPolicy, call_with_retry
from reconciler.daemon.autoscale import scaled_counts
from reconciler.run import backups
from reconciler.run.executor import ChangeResult, ChangeStatus, Executor, RunContext
from reconciler.run.leases import LeaseKeeper, hostname, lease_ttl
from reconciler.run.measure import sample_usage
from reconciler.store import open_store
from reconciler.store.base import Store

log = structlog.get_logger("reconciler.run.engine")

STATE_DB = "state.db"
LEASE_TTL_SECONDS = 120.0  # renewed every third of it during an apply; RECONCILER_LEASE_TTL overrides


@dataclass
class Workspace:
    """Where local state lives and how the engine reaches it; one per invocation."""

    state_dir: Path
    clock: Clock = field(default_factory=Clock)
    store_url: str | None = None
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    calls: Counter[str] = field(default_factory=Counter)  # provider API calls, by operation
    _store: Store | None = None

    def store(self) -> Store:
        """The store, created on first use (only commands that write call this)."""
        if self._store is None:
            self._store = open_store(self.state_dir, self.store_url)
        return self._store

    def existing_store(self) -> Store | None:
        """The store if one exists already; planning never creates one."""
        if self._store is None and self.store_url is None and not (self.state_dir / STATE_DB).exists():
            return None
        return self.store()

    def provider_context(self) -> ProviderContext:
        return ProviderContext(state_dir=self.state_dir, clock=self.clock, resolve_secret=resolve_secret)

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None


def open_providers(configs: Iterable[ProviderConfig], ws: Workspace) -> dict[str, Provider]:
    context = ws.provider_context()
    return {config.name: create_provider(config, context) for config in configs}


def close_providers(providers: Mapping[str, Provider], ws: Workspace) -> None:
    """Close each provider, adding its API call counts to the workspace's tally."""
    for provider in providers.values():
        ws.calls.update(provider.calls)
        provider.close()


def observe(providers: Mapping[str, Provider], owner: str, retry: RetryPolicy) -> list[ObservedServer]:
    """One paginated listing per provider, retried on transient errors."""
    observed: list[ObservedServer] = []
    for name in sorted(providers):
        provider = providers[name]
        observed.extend(call_with_retry(functools.partial(provider.observe, owner), retry))
    return observed


def fill_flavors(
    servers: Sequence[DesiredServer], providers: Mapping[str, Provider]
) -> tuple[DesiredServer, ...]:
    """Name the flavor a provider will pick for size-only templates, so diff compares like with like."""
    filled = []
    for server in servers:
        provider = providers.get(server.provider)
        flavor = provider.flavor_for(server.size) if provider is not None and server.flavor is None else None
        filled.append(dataclasses.replace(server, flavor=flavor) if flavor else server)
    return tuple(filled)


def make_plan(
    state: DesiredState,
    observed: Sequence[ObservedServer],
    providers: Mapping[str, Provider],
    *,
    clock: Clock,
    last_generation: Callable[[str], int | None],
    commit: str | None = None,
    destroy: bool = False,
    snapshots: Sequence[Snapshot] | None = None,
    skip_final_backup: bool = False,
) -> Plan:
    """desired × observed → ordered changes, cost and diagnostics, as one Plan.

    With ``destroy`` nothing is desired any more, but ``protect: true`` members still hold.
    ``snapshots`` (the owned backups listed now) lets the plan take and prune scheduled
    backups; without them only final backups (before a delete or replace) are planned.
    """
    protected = frozenset(f"{s.cluster}/{s.member}" for s in state.servers if s.protect)
    servers = fill_flavors(state.servers, providers)
    desired = () if destroy else servers
    result = diff(
        desired,
        observed,
        owner=state.deployment,
        capabilities={name: type(p).capabilities for name, p in providers.items()},
        last_generation=last_generation,
        protected_members=protected,
    )
    changes = order_changes(result.changes, servers)
    cost = plan_cost(desired, observed, state.price_list_for)
    budgets, budget_notes = check_budgets(state.budgets, cost, changes, state.price_list_for)
    backups = plan_backups(
        deployment=state.deployment,
        declared=servers,
        desired=desired,
        observed=observed,
        snapshots=snapshots,
        changes=changes,
        policies=state.backup_policies,
        capabilities={name: type(p).capabilities for name, p in providers.items()},
        now=clock.now(),
        price_list_for=state.price_list_for,
        skip_final_backup=skip_final_backup,
    )
    return Plan(
        deployment=state.deployment,
        created_at=clock.now(),
        changes=changes,
        providers=state.providers,
        price_lists=tuple(state.price_lists[k] for k in sorted(state.price_lists)),
        basis=tuple(sorted(observed, key=lambda s: (s.provider, s.key, s.resource_id))),
        noop_count=result.noop_count,
        cost=dataclasses.replace(cost, budgets=budgets),
        diagnostics=(*state.warnings, *result.diagnostics, *budget_notes, *backups.notes),
        source_path=state.source_path,
        commit=commit,
        backups=backups.actions,
        skip_final_backup=skip_final_backup,
    )


def plan_path(
    path: Path,
    ws: Workspace,
    *,
    deployment: str | None = None,
    commit: str | None = None,
    destroy: bool = False,
    skip_final_backup: bool = False,
) -> Plan:
    """The whole read-only pipeline: load, validate, resolve, observe, diff, graph, cost, backups.

    Autoscaled members get the server count the daemon last chose (from the audit ledger),
    so a plan made beside a running daemon does not undo its scaling.
    """
    store = ws.existing_store()
    counts = scaled_counts(store, deployment or deployment_name(path)) if store is not None else None
    state = load_desired_state(path, deployment=deployment, counts=counts)
    providers = open_providers(state.providers, ws)
    try:
        observed = observe(providers, state.deployment, ws.retry)
        snapshots = None
        if state.backup_policies:
            snapshots, _ = backups.list_snapshots(providers, state.deployment, ws.retry)

        def last_generation(key: str) -> int | None:
            return store.max_generation(state.deployment, key) if store is not None else None

        return make_plan(
            state,
            observed,
            providers,
            clock=ws.clock,
            last_generation=last_generation,
            commit=commit,
            destroy=destroy,
            snapshots=snapshots,
            skip_final_backup=skip_final_backup,
        )
    finally:
        close_providers(providers, ws)


# --- crash recovery and level-triggered usage --------------------------------------------
def settle_intents(
    store: Store, providers: Mapping[str, Provider], deployment: str, run: RunContext, clock: Clock
) -> list[str]:
    """Resolve intents a killed run left open, by looking their resources up. Returns messages."""
    messages: list[str] = []
    for intent in store.unresolved_intents(deployment):
        rec = intent.record
        provider = providers.get(rec.provider)
        if provider is None:
            messages.append(
                f"intent #{intent.seq} ({rec.action} {rec.key}) names provider {rec.provider!r}, "
                "which is no longer declared; left unresolved"
            )
            continue
        found: ObservedServer | None = None
        if rec.action is AuditAction.CREATE and rec.token:
            found = provider.lookup(deployment, rec.token)
        outcome = Outcome.RECOVERED if found is not None else Outcome.ABANDONED
        detail = (
            "found by its idempotency token after an interrupted run"
            if found is not None
            else "settled by observation after an interrupted run"
        )
        store.append(
            AuditRecord(
                deployment=deployment,
                run_id=run.run_id,
                actor=run.actor,
                commit=run.commit,
                action=rec.action,
                outcome=outcome,
                key=rec.key,
                provider=rec.provider,
                resource_id=found.resource_id if found else rec.resource_id,
                token=rec.token,
                detail=detail,
                intent_seq=intent.seq,
            ),
            at=clock.now(),
        )
        messages.append(f"intent #{intent.seq} {rec.action} {rec.key}: {outcome}")
    return messages


def sync_usage(
    store: Store,
    plan: Plan,
    observed: Sequence[ObservedServer],
    run: RunContext,
    clock: Clock,
    observed_providers: Iterable[str],
) -> None:
    """Make the usage ledger agree with what is observed: open, resize and close intervals."""
    now = clock.now()
    scope = set(observed_providers)
    open_now = {(i.provider, i.resource_id): i for i in store.open_intervals(plan.deployment)}
    seen = {(s.provider, s.resource_id): s for s in observed}
    for ident, server in seen.items():
        interval = open_now.get(ident)
        if interval is not None and (interval.size, interval.flavor) == (server.size, server.flavor):
            continue
        plist = plan.price_list_for(server.provider)
        start = now if interval is not None else min(server.created_at or now, now)
        with store.transaction():
            if interval is not None:
                store.close_interval(server.provider, server.resource_id, end=now)
            store.open_interval(usage_interval(plan.deployment, server, plist, start=start))
    for ident, interval in open_now.items():
        if ident in seen or interval.provider not in scope:
            continue
        with store.transaction():
            store.close_interval(interval.provider, interval.resource_id, end=now)
            store.append(
                AuditRecord(
                    deployment=plan.deployment,
                    run_id=run.run_id,
                    actor=run.actor,
                    commit=run.commit,
                    action=AuditAction.OBSERVE_GONE,
                    outcome=Outcome.INFO,
                    key=interval.key,
                    provider=interval.provider,
                    resource_id=interval.resource_id,
                    detail="no longer observed; usage interval closed",
                ),
                at=now,
            )


# --- guards -----------------------------------------------------------------------------
def check_delete_budget(plan: Plan, max_deletes: str, allow_mass_delete: bool) -> None:
    """Refuse a plan that deletes more servers than the budget allows (nothing is applied)."""
    deletes = sum(1 for c in plan.changes if c.action in (Action.DELETE, Action.REPLACE))
    if allow_mass_delete or deletes == 0:
        return
    text = max_deletes.strip()
    try:
        if text.endswith("%"):
            limit = int(len(plan.basis) * float(text[:-1]) / 100)
        else:
            limit = int(text)
    except ValueError:
        raise UserError(f"--max-deletes {max_deletes!r} is not a number or a percentage like 20%") from None
    if deletes > limit:
        raise UserError(
            f"the plan deletes or replaces {deletes} servers, more than --max-deletes {max_deletes}; "
            "check the plan, then raise --max-deletes or pass --allow-mass-delete"
        )


# --- apply --------------------------------------------------------------------------------
@dataclass(frozen=True)
class ApplyReport:
    results: tuple[ChangeResult, ...]
    recovered: tuple[str, ...]
    problems: tuple[str, ...]  # what verification found still different
    backups: tuple[backups.BackupResult, ...] = ()  # backups taken and pruned (final ones too)

    def count(self, status: ChangeStatus) -> int:
        return sum(1 for r in self.results if r.status is status)

    @property
    def ok(self) -> bool:
        return (
            not self.problems
            and all(r.status is ChangeStatus.SUCCEEDED for r in self.results)
            and all(b.status is backups.BackupStatus.SUCCEEDED for b in self.backups)
        )


def new_run(actor: str, commit: str | None) -> RunContext:
    return RunContext(run_id=uuid.uuid4().hex[:12], actor=actor, commit=commit or "")


def lease_holder(run: RunContext) -> str:
    """``run@host:pid``: lets a later run on the same host see that a holder died."""
    return f"{run.run_id}@{hostname()}:{os.getpid()}"


def _holder_is_dead(holder: str) -> bool:
    """True when the holder ran on this host and its process no longer exists."""
    _, _, where = holder.partition("@")
    host, _, pid = where.rpartition(":")
    if host != hostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def acquire_leases(
    store: Store,
    plan: Plan,
    run: RunContext,
    clock: Clock,
    *,
    holder: str | None = None,
    ttl_seconds: float = LEASE_TTL_SECONDS,
    partial: bool = False,
) -> list[Lease]:
    """One lease per provider scope, so two reconcilers never apply to the same cloud at once.

    Leases are judged by the real time (not ``--now``); a holder that was killed on this
    host is recognised at once instead of after the lease's time-to-live. ``holder``
    defaults to this run; a daemon passes its own, stable identity to renew its leases
    cycle after cycle. With ``partial`` the leases that could be taken are returned (a
    daemon applies only to those providers) instead of raising ``LeaseLostError``.
    """
    leases: list[Lease] = []
    holder = holder or lease_holder(run)
    for config in plan.providers:
        scope = f"provider/{config.name}"
        lease = store.acquire_lease(scope, holder, ttl_seconds=ttl_seconds, now=clock.wall())
        if lease is None:
            held = store.current_lease(scope)
            if held is not None and _holder_is_dead(held.holder):
                log.warning("taking over the lease of a dead holder", scope=scope, holder=held.holder)
                store.release_lease(held)
                lease = store.acquire_lease(scope, holder, ttl_seconds=ttl_seconds, now=clock.wall())
        if lease is None and partial:
            continue
        if lease is None:
            for taken in leases:
                store.release_lease(taken)
            held = store.current_lease(scope)
            by = f" ({held.holder}, lease until {held.expires_at:%H:%M:%S} UTC)" if held is not None else ""
            raise LeaseLostError(
                f"another reconciler{by} is applying to provider {config.name!r}; try again later"
            )
        leases.append(lease)
    return leases


def verify(
    plan: Plan, observed: Sequence[ObservedServer], capabilities: Mapping[str, Capabilities]
) -> list[str]:
    """What of the plan is not yet true in the clouds (empty when it converged).

    The same diff that planned decides: every server the plan wanted must need no change
    now, and every server it deleted or replaced must be gone.
    """
    ids = {(s.provider, s.resource_id) for s in observed}
    problems: list[str] = []
    gone: set[tuple[str, str]] = set()
    for change in plan.changes:
        if change.action in (Action.DELETE, Action.REPLACE) and change.before is not None:
            ident = (change.before.provider, change.before.resource_id)
            gone.add(ident)
            if ident in ids:
                problems.append(f"{change.key}: {change.before.resource_id} still exists")
    wanted = [c.after for c in plan.changes if c.after is not None and c.action is not Action.DELETE]
    keys = {server.key for server in wanted}
    current = [s for s in observed if s.key in keys and (s.provider, s.resource_id) not in gone]
    remaining = diff(
        wanted, current, owner=plan.deployment, capabilities=capabilities, last_generation=lambda key: None
    )
    problems.extend(f"{c.key}: still needs {c.action.value} ({c.reason})" for c in remaining.changes)
    return problems


def apply_plan(
    plan: Plan,
    ws: Workspace,
    run: RunContext,
    *,
    max_deletes: str = "10",
    allow_mass_delete: bool = False,
    on_result: Callable[[ChangeResult], None] | None = None,
    leases: Sequence[Lease] | None = None,
    cancel: Callable[[], bool] | None = None,
) -> ApplyReport:
    """Settle old intents, refuse a stale plan, then execute it and verify by re-observing.

    ``leases``: provider leases the caller already holds for every provider of the plan (a
    daemon renews its own across cycles); they are then neither taken nor released here.
    ``cancel``: asked before each change starts (see ``Executor.cancel``).
    """
    check_delete_budget(plan, max_deletes, allow_mass_delete)
    check_secrets(c.after for c in plan.changes if c.after is not None)
    providers = open_providers(plan.providers, ws)
    store = ws.store()
    own_leases = leases is None
    ttl = lease_ttl(LEASE_TTL_SECONDS)
    leases = acquire_leases(store, plan, run, ws.clock, ttl_seconds=ttl) if leases is None else list(leases)
    # Every ledger write below is fenced by the leases, which are renewed in the background
    # (a caller's leases by as long as they had left: the daemon chose their time-to-live).
    keeper = LeaseKeeper(store, leases, ttl_seconds=ttl if own_leases else None, clock=ws.clock)
    try:
        keeper.start()
        recovered = settle_intents(store, providers, plan.deployment, run, ws.clock)
        observed = observe(providers, plan.deployment, ws.retry)
        stale = stale_keys(plan.basis, observed)
        if stale:
            raise UserError(
                "the plan is stale: the clouds changed since it was made, for "
                + ", ".join(stale)
                + "; make a new plan and apply that"
            )
        sync_usage(store, plan, observed, run, ws.clock, providers)
        sample_usage(providers, observed, store, plan.deployment, ws.retry)  # counters before changes
        runner = backups.BackupRunner(
            deployment=plan.deployment,
            providers=providers,
            store=store,
            clock=ws.clock,
            run=run,
            price_list_for=plan.price_list_for,
            retry=ws.retry,
        )
        runner.run_actions(plan.backups, observed)  # scheduled backups and prunes, before any change
        if not plan.changes:  # still worth the call: intents settled, usage ledger in step
            done = tuple(runner.results)
            return ApplyReport(results=(), recovered=tuple(recovered), problems=(), backups=done)
        _audit_run(
            store,
            plan,
            run,
            ws.clock,
            AuditAction.RUN_START,
            Outcome.INFO,
            f"{len(plan.changes)} changes from {plan.source_path or 'a plan file'}"
            + (f"; commit message: {run.message}" if run.message else ""),
        )
        executor = Executor(
            plan=plan,
            providers=providers,
            store=store,
            clock=ws.clock,
            run=run,
            retry=ws.retry,
            on_result=on_result,
            cancel=cancel,
            lease_lost=keeper.lost,
            before_delete=runner.final_hook(plan.backups),
        )
        results = executor.run_all()
        keeper.check()  # a lost lease ends the run here: nothing more may be written
        after = observe(providers, plan.deployment, ws.retry)
        problems = verify(plan, after, {name: type(p).capabilities for name, p in providers.items()})
        sync_usage(store, plan, after, run, ws.clock, providers)
        failed = sum(1 for r in results if r.status is not ChangeStatus.SUCCEEDED)
        _audit_run(
            store,
            plan,
            run,
            ws.clock,
            AuditAction.RUN_END,
            Outcome.SUCCEEDED if not failed and not problems else Outcome.FAILED,
            f"{len(results) - failed} succeeded, {failed} failed or skipped",
        )
        return ApplyReport(
            results=tuple(results),
            recovered=tuple(recovered),
            problems=tuple(problems),
            backups=tuple(runner.results),
        )
    finally:
        keeper.stop()
        for lease in leases if own_leases else ():
            store.release_lease(lease)
        close_providers(providers, ws)


def _audit_run(
    store: Store,
    plan: Plan,
    run: RunContext,
    clock: Clock,
    action: AuditAction,
    outcome: Outcome,
    detail: str,
) -> None:
    store.append(
        AuditRecord(
            deployment=plan.deployment,
            run_id=run.run_id,
            actor=run.actor,
            commit=run.commit,
            action=action,
            outcome=outcome,
            detail=detail,
        ),
        at=clock.now(),
    )
