"""run.status: what ``reconciler status`` shows, from one observation of every provider.

Observe once, describe what ``adopt:`` entries name, plan from that (read-only: nothing is
applied), read each key's newest audit entry, and hand it all to ``core.status``. With
``--target`` only the selected keys are shown (counts included).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from reconciler.core.records import AuditAction
from reconciler.core.status import ClusterCounts, KeyStatus, cluster_counts, key_statuses, last_changes
from reconciler.core.targeting import check_selectors, parse_selectors, targeted_notes
from reconciler.run.planning import describe_adoptions, load_for_plan, make_plan
from reconciler.run.session import ProviderSession
from reconciler.run.workspace import Workspace

# What counts as a key's last change: what was done to its server, and the daemon's decisions.
CHANGES = (
    AuditAction.CREATE, AuditAction.UPDATE, AuditAction.DELETE, AuditAction.START, AuditAction.STOP,
    AuditAction.ADOPT, AuditAction.FORGET, AuditAction.FAILOVER, AuditAction.OBSERVE_GONE,
)
_LEDGER_READ = 1_000_000


@dataclass(frozen=True)
class Status:
    deployment: str
    servers: tuple[KeyStatus, ...]
    clusters: tuple[ClusterCounts, ...]
    targets: tuple[str, ...] = ()
    diagnostics: tuple[str, ...] = ()


def status(
    path: Path, ws: Workspace, *, deployment: str | None = None, targets: Sequence[str] = ()
) -> Status:
    """Every key's status and the counts per cluster (``targets``: only the keys selected)."""
    state = load_for_plan(path, ws, deployment=deployment)
    selectors = parse_selectors(targets)
    store = ws.existing_store()
    with ProviderSession(ws, state.providers) as session:
        observed = session.observe(state.deployment)
        capabilities = session.capabilities
        described = describe_adoptions(state, observed, session)
        plan = make_plan(
            state, observed, session.providers, clock=ws.clock, described=described,
            last_generation=lambda key: store.max_generation(state.deployment, key) if store else None,
        )
    entries = store.recent_audit(state.deployment, CHANGES, limit=_LEDGER_READ) if store is not None else []
    rows = key_statuses(state.servers, observed, plan, last_changes(entries), state.price_list_for, described,
                        capabilities)
    if selectors:
        check_selectors(selectors, [r.key for r in rows])
        rows = [r for r in rows if any(s.matches(r.key) for s in selectors)]
    return Status(
        deployment=state.deployment,
        servers=tuple(rows),
        clusters=tuple(cluster_counts(rows)),
        targets=tuple(str(s) for s in selectors),
        diagnostics=targeted_notes(plan.diagnostics, selectors) if selectors else plan.diagnostics,
    )
