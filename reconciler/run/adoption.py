"""run.adoption: the effectful side of taking servers over and letting them go.

* ``forget`` — drop the ownership marks of one key's server(s) without deleting them: under
  the provider's lease, each through ``AuditWriter.mutate`` (``forget`` intent → the
  provider's ``release`` → outcome, with the usage interval closed in the same transaction),
  so a kill at any point is settled by observation on the next run;
* ``unowned`` — the servers one provider of a desired state runs that carry no owner mark
  (for ``reconciler generate``), with the state they are to join.

Adopting itself is a change like any other: planned by ``core.diff`` (``core.adoption``) and
carried out by ``run.executor``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from reconciler.core.audit_detail import ForgetDetail
from reconciler.core.errors import Diagnostic, UserError
from reconciler.core.keys import ServerKey
from reconciler.core.model import DesiredState, ObservedServer, ProviderConfig
from reconciler.core.provider import Provider
from reconciler.core.records import AuditAction
from reconciler.run.audit import AuditWriter, RunContext
from reconciler.run.planning import load_for_plan
from reconciler.run.session import ProviderSession
from reconciler.run.workspace import Workspace


@dataclass(frozen=True)
class Forgotten:
    """What ``forget`` let go, and whether the key is still declared (the next apply makes it again)."""

    key: str
    servers: tuple[ObservedServer, ...]
    still_declared: bool
    recovered: tuple[str, ...] = ()


def forget(
    path: Path, key: str, ws: Workspace, run: RunContext, *, deployment: str | None = None
) -> Forgotten:
    """Remove our marks from every server the deployment owns under ``key``; they keep running."""
    if ServerKey.try_parse(key) is None:
        raise UserError(
            Diagnostic(key, None, "is not a server key; write cluster/member/ordinal, e.g. shop/web/0")
        )
    state = load_for_plan(path, ws, deployment=deployment)
    with ProviderSession(ws, state.providers) as session:
        session.hold(run)
        observed = session.observe(state.deployment)
        recovered = session.settle(state.deployment, run, observed, price_list_for=state.price_list_for)
        servers = [s for s in observed if s.key == key and s.owner == state.deployment]
        if not servers:
            raise UserError(Diagnostic(
                key, None,
                f"deployment {state.deployment!r} owns no server under this key; "
                "`reconciler status PATH` lists the keys it manages",
            ))
        store = ws.store()
        audit = AuditWriter(store, ws.clock, state.deployment, run, ws.retry)
        for server in servers:
            _release(audit, session.providers[server.provider], server)
    declared = any(s.key == key for s in state.servers)
    return Forgotten(key, tuple(servers), declared, tuple(recovered))


def _release(audit: AuditWriter, provider: Provider, server: ObservedServer) -> None:
    """One server's marks off (intent → ``release`` → outcome), its usage interval closed with it."""

    def closed(_: object) -> None:
        audit.store.close_interval(server.provider, server.resource_id, end=audit.clock.now())

    audit.mutate(
        server.key,
        provider,
        AuditAction.FORGET,
        lambda: provider.release(server),
        resource_id=server.resource_id,
        detail=ForgetDetail(server=server.resource_id, name=server.name),
        ledger=closed,
    )


@dataclass(frozen=True)
class Unowned:
    """The unowned servers of one provider, with the desired state they are to join."""

    state: DesiredState
    provider: ProviderConfig
    servers: tuple[ObservedServer, ...]


def unowned(path: Path, provider: str, ws: Workspace) -> Unowned:
    """List the servers provider ``provider`` (a Provider document at ``path``) runs unowned."""
    state = load_for_plan(path, ws)
    names = [c.name for c in state.providers]
    if provider not in names:
        known = ", ".join(names) or "none"
        raise UserError(Diagnostic(
            str(path), None, f"declares no Provider named {provider!r} (it declares: {known})"
        ))
    config = state.provider(provider)
    with ProviderSession(ws, [config]) as session:
        servers = session.list_unowned(provider)
    return Unowned(state, config, tuple(s for s in servers if not s.owner))
