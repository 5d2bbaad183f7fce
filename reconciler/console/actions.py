"""console.actions: the requests a console user may make, each checked, carried out and audited.

| request | role | does |
|---|---|---|
| sync now | operator | the daemon fetches and runs a cycle now |
| run due backups | operator | a cycle now, which takes every backup that is due |
| retry a failed server | operator | the key's backoff is forgotten, and a cycle now |
| acknowledge an alert | admin | the alert leaves the open alerts |

Each one that is carried out is one ``console`` audit entry with actor ``console:<user>``.
The desired state is never edited: it is git's. Without a loop (``reconciler console``)
every request is refused with 409.
"""

from __future__ import annotations

from dataclasses import dataclass

import structlog

from reconciler.console.access import Principal
from reconciler.console.ledger import alert_entry, record_request
from reconciler.console.port import NoLoopError
from reconciler.console.runtime import Forbidden, Runtime
from reconciler.core.audit_detail_console import ConsoleRequestKind
from reconciler.core.console_model import Role
from reconciler.core.keys import ServerKey

log = structlog.get_logger("reconciler.console")

NEEDS = {
    ConsoleRequestKind.SYNC: Role.OPERATOR,
    ConsoleRequestKind.RUN_BACKUPS: Role.OPERATOR,
    ConsoleRequestKind.RETRY: Role.OPERATOR,
    ConsoleRequestKind.ACKNOWLEDGE: Role.ADMIN,
}


@dataclass(frozen=True)
class Outcome:
    status: int  # 202 accepted, 404 no such target, 409 nothing to ask
    message: str


def perform(rt: Runtime, principal: Principal, kind: ConsoleRequestKind, target: str = "") -> Outcome:
    """Check the role, carry the request out, record it. ``Forbidden`` when the role does not allow it."""
    needed = NEEDS[kind]
    if not principal.may(needed):
        raise Forbidden(f"this needs the {needed.value} role; {principal.name} is a {principal.role.value}")
    status = rt.port.status()
    if not status.present or not rt.writable:
        return Outcome(
            409,
            "this console runs without the reconcile loop (reconciler console): "
            "nothing can be asked of it; use reconciler run --listen",
        )
    snapshot = rt.cache.get()
    deployment = snapshot.deployment
    try:
        if kind is ConsoleRequestKind.SYNC:
            rt.port.sync_now()
            message = "sync requested: the daemon fetches and runs a cycle now"
        elif kind is ConsoleRequestKind.RUN_BACKUPS:
            rt.port.run_backups()
            message = "a cycle runs now and takes every backup that is due"
        elif kind is ConsoleRequestKind.RETRY:
            if ServerKey.try_parse(target) is None:
                return Outcome(404, f"{target[:100]!r} is not a server key (cluster/member/ordinal)")
            if not rt.port.retry(target):
                return Outcome(404, f"{target} is not held back after failures; nothing to retry")
            message = f"{target} is retried in a cycle now"
        else:
            if not target.isdigit() or alert_entry(rt.writer(), deployment, int(target)) is None:
                return Outcome(404, f"there is no alert {target[:20]!r}")
            message = f"alert {target} acknowledged"
    except NoLoopError:
        return Outcome(409, "there is no reconcile loop to ask")
    commit = status.commit.sha if status.commit else ""
    record_request(rt.writer(), rt.ws.clock, deployment, principal, kind, target, commit)
    log.info("console request", request=kind.value, target=target, actor=principal.actor)
    return Outcome(202, message)
