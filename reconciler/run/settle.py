"""run.settle: bring the ledgers in step with the clouds — intents a killed run left open, usage intervals."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence

from reconciler.core.audit_detail import IntentSettled
from reconciler.core.clock import Clock
from reconciler.core.model import ObservedServer, ServerStatus
from reconciler.core.plan import Plan
from reconciler.core.pricing import PriceListFor, price_list_of, usage_interval
from reconciler.core.provider import Provider
from reconciler.core.records import AuditAction, Outcome
from reconciler.run.audit import AuditWriter, RunContext
from reconciler.store.base import Store

_POWER_STATE = {AuditAction.STOP: ServerStatus.STOPPED, AuditAction.START: ServerStatus.RUNNING}
_EFFECT = {
    AuditAction.STOP: "stopped",
    AuditAction.START: "running",
    AuditAction.DELETE: "gone",
    AuditAction.FORGET: "released",
}
_BY_TOKEN = (AuditAction.CREATE, AuditAction.ADOPT)


def settle_intents(
    store: Store,
    providers: Mapping[str, Provider],
    declared: Collection[str],
    deployment: str,
    run: RunContext,
    clock: Clock,
    observed: Sequence[ObservedServer] | None = None,
    price_list_for: PriceListFor | None = None,
) -> list[str]:
    """Resolve intents a killed run left open, by looking their resources up. Returns messages.

    ``providers``: the ones this run may settle (it holds their leases); an intent on a
    ``declared`` provider not among them is left to whoever holds that provider now.
    A create or an adopt is looked up by its idempotency token; a stop, start, delete or
    forget is judged by ``observed`` (the servers as listed now): it took effect when the
    server is now in the state it asked for (a forgotten one: no longer listed as ours). A
    recovered adopt opens the server's usage interval at the intent (priced by
    ``price_list_for``; without it ``sync_usage`` opens one later), a recovered forget closes it.
    """
    seen = {(s.provider, s.resource_id): s for s in observed} if observed is not None else None
    messages: list[str] = []
    audit = AuditWriter(store, clock, deployment, run)
    for intent in store.unresolved_intents(deployment):
        rec = intent.record
        provider = providers.get(rec.provider)
        if provider is None and rec.provider in declared:
            continue
        if provider is None:
            messages.append(
                f"intent #{intent.seq} ({rec.action} {rec.key}) names provider {rec.provider!r}, "
                "which is no longer declared; left unresolved"
            )
            continue
        found: ObservedServer | None = None
        took_effect = False
        if rec.action in _BY_TOKEN and rec.token:
            found = provider.lookup(deployment, rec.token)
        elif seen is not None and rec.action in _POWER_STATE:
            now = seen.get((rec.provider, rec.resource_id))
            took_effect = now.status is _POWER_STATE[rec.action] if now is not None else False
        elif seen is not None and rec.action in (AuditAction.DELETE, AuditAction.FORGET):
            took_effect = (rec.provider, rec.resource_id) not in seen
        outcome = Outcome.RECOVERED if found is not None or took_effect else Outcome.ABANDONED
        with store.transaction():
            audit.record(
                rec.key,
                rec.provider,
                rec.action,
                outcome,
                resource_id=found.resource_id if found else rec.resource_id,
                token=rec.token,
                detail=IntentSettled(
                    found=found is not None, effect=_EFFECT[rec.action] if took_effect else ""
                ),
                intent_seq=intent.seq,
            )
            if rec.action is AuditAction.ADOPT and found is not None and price_list_for is not None:
                plist = price_list_of(price_list_for, found.provider)
                store.open_interval(usage_interval(deployment, found, plist, start=intent.at))
            if rec.action is AuditAction.FORGET and took_effect:
                store.close_interval(rec.provider, rec.resource_id, end=clock.now())
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
    audit = AuditWriter(store, clock, plan.deployment, run).at(now)
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
            audit.server_gone(interval.key, interval.provider, interval.resource_id)
