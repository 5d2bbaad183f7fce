"""run.planning: desired × observed → a Plan, and the read-only pipeline from a folder of YAML to a plan.

``make_plan`` is pure (diff, graph, cost, budgets, policies, backups over values); ``plan_in_session``
observes through a ``ProviderSession`` and plans; ``plan_path`` does both from a folder.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from reconciler.config import deployment_name, load_desired_state
from reconciler.core.backups import plan_backups
from reconciler.core.budgets import check_budgets
from reconciler.core.clock import Clock
from reconciler.core.diff import diff
from reconciler.core.errors import ProviderError
from reconciler.core.graph import order_changes
from reconciler.core.keys import format_member
from reconciler.core.model import DesiredServer, DesiredState, ObservedServer, Snapshot
from reconciler.core.plan import Plan
from reconciler.core.policy import PlanFacts, check_policies
from reconciler.core.pricing import plan_cost
from reconciler.core.provider import Provider
from reconciler.core.targeting import (
    check_selectors,
    parse_selectors,
    select_changes,
    targeted_backups,
    targeted_cost,
    targeted_notes,
)
from reconciler.run.audit import scaled_counts
from reconciler.run.session import ProviderSession
from reconciler.run.workspace import Workspace


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
    described: Sequence[ObservedServer] = (),
    targets: Sequence[str] = (),
) -> Plan:
    """desired × observed → ordered changes, cost and diagnostics, as one Plan.

    With ``destroy`` nothing is desired any more, but ``protect: true`` members still hold.
    ``snapshots`` (the owned backups listed now) lets the plan take and prune scheduled
    backups; without them only final backups (before a delete or replace) are planned.
    """
    protected = frozenset(format_member(s.cluster, s.member) for s in state.servers if s.protect)
    servers = fill_flavors(state.servers, providers)
    desired = () if destroy else servers
    result = diff(
        desired,
        observed,
        owner=state.deployment,
        capabilities={name: type(p).capabilities for name, p in providers.items()},
        last_generation=last_generation,
        protected_members=protected,
        described=described,
    )
    changes = order_changes(result.changes, servers)
    cost = plan_cost(desired, observed, state.price_list_for)
    selectors = parse_selectors(targets)
    if selectors:
        check_selectors(selectors, [*(s.key for s in servers), *(s.key for s in observed)])
        changes = select_changes(changes, selectors)
        cost = targeted_cost(desired, observed, changes, result.changes, state.price_list_for)
    budgets, budget_notes = check_budgets(state.budgets, cost, changes, state.price_list_for)
    violations = check_policies(state.policies, desired, PlanFacts(changes, cost))
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
        diagnostics=(
            *state.warnings,
            *(targeted_notes(result.diagnostics, selectors) if selectors else result.diagnostics),
            *budget_notes,
            *backups.notes,
        ),
        source_path=state.source_path,
        commit=commit,
        backups=targeted_backups(backups.actions, changes) if selectors else backups.actions,
        skip_final_backup=skip_final_backup,
        violations=violations,
        windows=tuple(window for policy in state.policies for window in policy.windows),
        targets=tuple(str(t) for t in selectors),
    )


def describe_adoptions(
    state: DesiredState, observed: Sequence[ObservedServer], session: ProviderSession
) -> list[ObservedServer]:
    """The servers ``adopt:`` entries name for keys no owned server carries yet, as described by
    the member's provider — and, for ids it does not hold, by the state's other providers (so
    the error can say where the server is)."""
    owned = {s.key for s in observed if s.owner == state.deployment}
    wanted: dict[str, set[str]] = {}
    for server in state.servers:
        if server.adopt_id and server.key not in owned:
            wanted.setdefault(server.provider, set()).add(server.adopt_id)
    if not wanted:
        return []
    found = session.describe({name: sorted(ids) for name, ids in wanted.items()})
    seen = {(s.provider, s.resource_id) for s in found}
    missing = {i for name, ids in wanted.items() for i in ids if (name, i) not in seen}
    for config in state.providers if missing else ():
        try:  # only to say where the server is: a provider that cannot tell is no error here
            elsewhere = session.describe({config.name: sorted(missing)})
        except ProviderError:
            continue
        found.extend(s for s in elsewhere if (s.provider, s.resource_id) not in seen)
    return found


def load_for_plan(path: Path, ws: Workspace, *, deployment: str | None = None) -> DesiredState:
    """Load the desired state at ``path`` with autoscaled members at the count last chosen.

    The count comes from the audit ledger's newest scale decision, so a plan made beside a
    running daemon does not undo its scaling. Planning never creates a store.
    """
    store = ws.existing_store()
    counts = scaled_counts(store, deployment or deployment_name(path)) if store is not None else None
    return load_desired_state(path, deployment=deployment, counts=counts)


def plan_in_session(
    state: DesiredState,
    session: ProviderSession,
    *,
    commit: str | None = None,
    destroy: bool = False,
    skip_final_backup: bool = False,
    observed: Sequence[ObservedServer] | None = None,
    targets: Sequence[str] = (),
) -> Plan:
    """Observe (unless ``observed`` was listed in this session already), describe what ``adopt:``
    entries name, list backups, and plan."""
    store = session.ws.existing_store()
    if observed is None:
        observed = session.observe(state.deployment)
    snapshots = session.list_snapshots(state.deployment)[0] if state.backup_policies else None

    def last_generation(key: str) -> int | None:
        return store.max_generation(state.deployment, key) if store is not None else None

    return make_plan(
        state,
        observed,
        session.providers,
        clock=session.ws.clock,
        last_generation=last_generation,
        commit=commit,
        destroy=destroy,
        snapshots=snapshots,
        skip_final_backup=skip_final_backup,
        described=() if destroy else describe_adoptions(state, observed, session),
        targets=targets,
    )


def plan_path(
    path: Path,
    ws: Workspace,
    *,
    deployment: str | None = None,
    commit: str | None = None,
    destroy: bool = False,
    skip_final_backup: bool = False,
    targets: Sequence[str] = (),
) -> Plan:
    """The whole read-only pipeline: load, validate, resolve, observe, diff, graph, cost, backups."""
    state = load_for_plan(path, ws, deployment=deployment)
    with ProviderSession(ws, state.providers) as session:
        return plan_in_session(
            state, session, commit=commit, destroy=destroy, skip_final_backup=skip_final_backup,
            targets=targets,
        )
