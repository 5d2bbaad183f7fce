"""run.apply: carry out a Plan in a provider session — guards (policies and change windows first:
``run.gate``), stale check, backups, execute, verify."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal

from reconciler.config import check_secrets
from reconciler.core.audit_detail import ApplyEnded, ApplyStarted, WindowOverride
from reconciler.core.diff import diff
from reconciler.core.errors import LeaseLostError, StalePlanError, UserError
from reconciler.core.model import Action, ObservedServer
from reconciler.core.plan import Plan, basis_fingerprint, stale_keys
from reconciler.core.provider import Capabilities
from reconciler.core.records import Outcome
from reconciler.run import backups
from reconciler.run.audit import AuditWriter, RunContext
from reconciler.run.executor import ChangeResult, ChangeStatus, Executor
from reconciler.run.gate import check_policy
from reconciler.run.measure import sample_usage
from reconciler.run.session import ProviderSession
from reconciler.run.settle import sync_usage
from reconciler.run.workspace import Workspace

# --- guards -----------------------------------------------------------------------------
_MAX_DELETES = re.compile(r"(?P<count>\d{1,9})|(?P<percent>\d{1,3}(?:\.\d{1,6})?)%")


def delete_limit(max_deletes: str, servers: int) -> int:
    """``--max-deletes``: a count (``10``) or a percentage of the servers observed (``20%``, at most 100)."""
    found = _MAX_DELETES.fullmatch(max_deletes.strip())
    percent = Decimal(found["percent"]) if found and found["percent"] else None
    if found is None or (percent is not None and percent > 100):
        raise UserError(
            f"--max-deletes {max_deletes!r} is not a whole number or a percentage from 0% to 100% like 20%"
        )
    if percent is None:
        return int(found["count"])
    return int(servers * percent / 100)


def check_delete_budget(
    plan: Plan, max_deletes: str, allow_mass_delete: bool, observed: Sequence[ObservedServer] | None = None
) -> None:
    """Refuse a plan that deletes more servers than the budget allows (nothing is applied).

    A percentage is of the servers observed now (``observed``), else of the plan's basis.
    """
    limit = delete_limit(max_deletes, len(plan.basis if observed is None else observed))
    deletes = sum(1 for c in plan.changes if c.action in (Action.DELETE, Action.REPLACE))
    if allow_mass_delete or deletes == 0:
        return
    if deletes > limit:
        raise UserError(
            f"the plan deletes or replaces {deletes} servers, more than --max-deletes {max_deletes}; "
            "check the plan, then raise --max-deletes or pass --allow-mass-delete"
        )


def check_against_observed(
    plan: Plan, observed: Sequence[ObservedServer], described: Sequence[ObservedServer] = ()
) -> None:
    """Every server a change acts on is one we observe now, owned by the plan's deployment
    and carrying the change's key, and none it deletes or replaces carries the protect mark
    now — whatever the plan file says (nothing is applied otherwise). A server an adopt takes
    over (``described`` now) must still be unowned and as it was when the plan was made; the
    changes that follow an adopt act on the server it adopts."""
    seen = {(s.provider, s.resource_id): s for s in observed}
    wrong: list[str] = []
    protected: list[str] = []
    adopting = {c.key for c in plan.changes if c.action is Action.ADOPT}
    now_described = {(s.provider, s.resource_id): s for s in described}
    for change in plan.changes:
        if change.before is None:
            continue
        if change.action is Action.ADOPT:
            ident = (change.before.provider, change.before.resource_id)
            found = now_described.get(ident)
            if found is None or basis_fingerprint(found) != basis_fingerprint(change.before):
                wrong.append(f"{change.id} ({ident[0]}/{ident[1]}: gone, taken or changed since)")
            continue
        if change.key in adopting:
            continue
        now = seen.get((change.before.provider, change.before.resource_id))
        expected = (plan.deployment, change.key, change.provider)
        if now is None or (now.owner, now.key, now.provider) != expected:
            wrong.append(f"{change.id} ({change.before.provider}/{change.before.resource_id})")
        elif now.protected and change.action in (Action.DELETE, Action.REPLACE):
            protected.append(f"{change.id} ({now.provider}/{now.resource_id})")
    if wrong:
        raise UserError(
            "the plan acts on servers this deployment does not own under those keys now: "
            + ", ".join(wrong) + "; nothing was applied — make a new plan"
        )
    if protected:
        raise UserError(
            "the plan deletes or replaces servers that carry the protect mark: " + ", ".join(protected)
            + "; nothing was applied — apply protect: false for them first, then make a new plan"
        )


def _adopt_targets(plan: Plan, session: ProviderSession) -> list[ObservedServer]:
    """The servers the plan's adopts take over, as their providers describe them now."""
    wanted: dict[str, list[str]] = {}
    for change in plan.changes:
        if change.action is Action.ADOPT and change.before is not None:
            wanted.setdefault(change.before.provider, []).append(change.before.resource_id)
    return session.describe(wanted) if wanted else []


# --- apply --------------------------------------------------------------------------------
@dataclass(frozen=True)
class ApplyReport:
    """What one apply did: each change's result, intents recovered, what verification still found."""

    results: tuple[ChangeResult, ...]
    recovered: tuple[str, ...]
    problems: tuple[str, ...]  # what verification found still different
    backups: tuple[backups.BackupResult, ...] = ()  # backups taken and pruned (final ones too)
    observed: tuple[ObservedServer, ...] = ()  # the owned servers as last listed (after the changes)
    notes: tuple[str, ...] = ()  # change windows overridden, or open for a warn policy

    def count(self, status: ChangeStatus) -> int:
        return sum(1 for r in self.results if r.status is status)

    @property
    def ok(self) -> bool:
        return (
            not self.problems
            and all(r.status is ChangeStatus.SUCCEEDED for r in self.results)
            and all(b.status is backups.BackupStatus.SUCCEEDED for b in self.backups)
        )


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
    # one desired server per key (an adopt and the update after it share one), adopt: done now
    wanted = list({
        c.after.key: dataclasses.replace(c.after, adopt_id="") if c.after.adopt_id else c.after
        for c in plan.changes
        if c.after is not None and c.action is not Action.DELETE
    }.values())
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
    cancel: Callable[[], bool] | None = None,
    override_window: str | None = None,
) -> ApplyReport:
    """Apply a plan in a session of its own: its providers opened, a lease of each taken, then released."""
    check_policy(plan, ws.clock.now(), override_window)  # refused before any provider is opened
    with ProviderSession(ws, plan.providers) as session:
        session.hold(run)
        return apply_in_session(
            plan,
            session,
            run,
            max_deletes=max_deletes,
            allow_mass_delete=allow_mass_delete,
            on_result=on_result,
            cancel=cancel,
            override_window=override_window,
        )


def apply_in_session(
    plan: Plan,
    session: ProviderSession,
    run: RunContext,
    *,
    max_deletes: str = "10",
    allow_mass_delete: bool = False,
    on_result: Callable[[ChangeResult], None] | None = None,
    cancel: Callable[[], bool] | None = None,
    observed: Sequence[ObservedServer] | None = None,
    override_window: str | None = None,
) -> ApplyReport:
    """Settle old intents, refuse a stale plan, then execute it and verify by re-observing.

    The session must hold the lease of every provider of the plan (``ProviderSession.hold``):
    every ledger write below is fenced by them. ``observed``: what this session listed, after
    taking those leases, to make the plan (a daemon cycle) — nobody else could have changed
    the clouds since, so the plan is not re-checked against a second listing.
    ``cancel``: asked before each change starts (see ``Executor.cancel``).
    A deny Policy's violation, or a change a deny Policy's window holds back now (unless
    ``override_window`` gives the reason, recorded in the audit ledger), refuses the plan.
    """
    gate = check_policy(plan, session.ws.clock.now(), override_window)
    check_secrets(c.after for c in plan.changes if c.after is not None)
    names = [config.name for config in plan.providers]
    missing = sorted(set(names) - session.held_providers())
    if missing:
        raise LeaseLostError(f"this run holds no lease of provider(s) {', '.join(missing)}; nothing applied")
    ws, store = session.ws, session.ws.store()
    providers = session.only(names)
    if observed is None:
        observed = session.observe(plan.deployment, names)
        stale = stale_keys(plan.basis, observed)
        if stale:
            raise StalePlanError(
                "the plan is stale: the clouds changed since it was made, for "
                + ", ".join(stale)
                + "; make a new plan and apply that"
            )
    recovered = session.settle(plan.deployment, run, observed, price_list_for=plan.price_list_for)
    check_against_observed(plan, observed, _adopt_targets(plan, session))
    check_delete_budget(plan, max_deletes, allow_mass_delete, observed)
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
    observed = runner.restart_left_stopped(observed, leave={c.key for c in plan.changes})
    runner.run_actions(plan.backups, observed)  # scheduled backups and prunes, before any change
    if not plan.changes:  # still worth the call: intents settled, usage ledger in step
        return ApplyReport(
            results=(),
            recovered=tuple(recovered),
            problems=(),
            backups=tuple(runner.results),
            observed=tuple(observed),
        )
    audit = AuditWriter(store, ws.clock, plan.deployment, run, ws.retry)
    audit.run_start(ApplyStarted(len(plan.changes), plan.source_path or "a plan file", run.message))
    if gate.overridden:
        audit.override_window(
            WindowOverride(
                reason=gate.reason,
                windows=tuple(f"{h.opened.window.where}: {h.opened.describe()}" for h in gate.overridden),
                keys=tuple(sorted({k for h in gate.overridden for k in h.keys})),
            )
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
        lease_lost=session.lease_lost,
        before_delete=runner.final_hook(plan.backups),
    )
    results = executor.run_all()
    session.check_leases()  # a lost lease ends the run here: nothing more may be written
    after = session.observe(plan.deployment, names)
    problems = verify(plan, after, session.capabilities)
    sync_usage(store, plan, after, run, ws.clock, providers)
    failed = sum(1 for r in results if r.status is not ChangeStatus.SUCCEEDED)
    audit.run_end(
        ApplyEnded(succeeded=len(results) - failed, failed=failed),
        Outcome.SUCCEEDED if not failed and not problems else Outcome.FAILED,
    )
    return ApplyReport(
        results=tuple(results),
        recovered=tuple(recovered),
        problems=tuple(problems),
        backups=tuple(runner.results),
        observed=tuple(after),
        notes=tuple(gate.notes()),
    )

