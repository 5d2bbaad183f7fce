"""core.plan: the Plan — the whole contract between planning and applying.

A Plan carries everything apply needs and nothing apply must look up elsewhere: the
changes (action, key, provider, before, after, idempotency token, dependencies), the
provider configurations (credentials by reference only), the observed basis the plan was
computed from (so a stale plan is refused), cost before/after, and diagnostics.

``Change.reason`` and the ``fields`` list are for humans; apply never decides on them.
Its JSON form lives in ``core.plan_codec``; rendering to text and markdown in ``cli.render``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime

from reconciler.core.backups import BackupAction
from reconciler.core.changes import Change
from reconciler.core.cost import CostSummary
from reconciler.core.errors import UserError
from reconciler.core.model import (
    Action,
    ObservedServer,
    PriceList,
    ProviderConfig,
    price_list_in_force,
)
from reconciler.core.policy_model import ChangeWindow, Violation

FORMAT_VERSION = 2  # 2: every change carries its cause


@dataclass(frozen=True)
class Plan:
    """The contract between planning and applying (see the module docstring)."""

    deployment: str
    created_at: datetime
    changes: tuple[Change, ...]
    providers: tuple[ProviderConfig, ...]
    basis: tuple[ObservedServer, ...]  # everything observed, owned, when the plan was made
    noop_count: int = 0
    cost: CostSummary = field(default_factory=CostSummary)
    diagnostics: tuple[str, ...] = ()
    price_lists: tuple[PriceList, ...] = ()
    source_path: str = ""
    commit: str | None = None
    # The git tree of the desired-state folder (``tree_path`` inside its repository) at ``commit``,
    # recorded only when the folder planned was exactly that tree: ``apply --expect-tree`` checks it.
    tree: str | None = None
    tree_path: str = ""
    author: str = ""  # of ``commit`` ("Name <email>"): recorded in the audit ledger by whoever applies it
    committer: str = ""
    # Backups to take and prune (see ``reconciler.core.backups``); not counted in ``has_changes``:
    # they follow a policy's schedule, not a change to the configuration.
    backups: tuple[BackupAction, ...] = ()
    skip_final_backup: bool = False
    # ``--target`` selectors the plan was limited to (``core.targeting``); () plans everything
    targets: tuple[str, ...] = ()
    format_version: int = FORMAT_VERSION
    # Policy (``core.policy``): what the plan breaks — a ``deny`` violation refuses every apply of
    # it — and the change windows apply holds its changes to, against the clock when it runs.
    violations: tuple[Violation, ...] = ()
    windows: tuple[ChangeWindow, ...] = ()

    @property
    def has_changes(self) -> bool:
        return bool(self.changes)

    @property
    def breaks_budget(self) -> bool:
        """The plan has changes and makes some Budget's scope costlier while over its ceiling."""
        return self.has_changes and any(check.broken for check in self.cost.budgets)

    @property
    def denied(self) -> tuple[Violation, ...]:
        """The violations of deny policies: the plan must not be applied."""
        return tuple(v for v in self.violations if v.denies)

    def summary(self) -> dict[str, int]:
        counts = {a.value: 0 for a in Action}
        for change in self.changes:
            counts[change.action.value] += 1
        counts[Action.NOOP.value] = self.noop_count
        return counts

    def basis_digest(self) -> str:
        return basis_digest(self.basis)

    def provider(self, name: str) -> ProviderConfig:
        for config in self.providers:
            if config.name == name:
                return config
        raise UserError(f"plan names provider {name!r} but carries no configuration for it")

    def price_list_for(self, provider: str) -> PriceList | None:
        """The PriceList in force for a provider (same rule as ``DesiredState.price_list_for``)."""
        by_name = {p.name: p for p in self.price_lists}
        return price_list_in_force(by_name, self.provider(provider).price_list)


def basis_fingerprint(server: ObservedServer) -> str:
    """What of an observed server must be unchanged for a plan made from it to still hold."""
    return "|".join(
        [
            server.provider,
            server.resource_id,
            server.key,
            server.spec_hash,
            str(server.generation),
            server.status.value,
            str(server.size.cpus),
            str(server.size.memory_mb),
            str(server.size.disk_gb),
            server.flavor or "",
            server.image,
            json.dumps(server.tags),
            str(server.protected).lower(),
            server.backup_policy,
        ]
    )


def basis_digest(servers: tuple[ObservedServer, ...] | list[ObservedServer]) -> str:
    lines = sorted(basis_fingerprint(s) for s in servers)
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


def stale_keys(plan_basis: tuple[ObservedServer, ...], current: list[ObservedServer]) -> list[str]:
    """Keys whose observed state differs between the plan's basis and now (empty = fresh)."""
    before = {(s.provider, s.resource_id): basis_fingerprint(s) for s in plan_basis}
    now = {(s.provider, s.resource_id): basis_fingerprint(s) for s in current}
    keys_by_id = {(s.provider, s.resource_id): s.key for s in [*plan_basis, *current]}
    changed = {keys_by_id[k] for k in before.keys() ^ now.keys()}
    changed |= {keys_by_id[k] for k in before.keys() & now.keys() if before[k] != now[k]}
    return sorted(changed)
































