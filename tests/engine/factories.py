"""Small factories for hand-built desired/observed servers and plans in engine tests."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from reconciler.core.diff import DiffResult, diff
from reconciler.core.model import (
    DesiredServer,
    ObservedServer,
    ProviderConfig,
    ResolvedInput,
    ServerStatus,
    Size,
    compute_spec_hash,
    server_name,
)
from reconciler.core.provider import Capabilities

OWNER = "acme"
PROVIDER = "sim"
NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def desired(
    key: str = "shop/web/0",
    *,
    cpus: int = 2,
    memory_mb: int = 2048,
    disk_gb: int = 20,
    image: str = "ubuntu-24.04",
    provider: str = PROVIDER,
    flavor: str | None = None,
    inputs: Sequence[ResolvedInput] = (),
    **overrides: Any,
) -> DesiredServer:
    """A desired server for ``key`` with a correct spec hash; any field can be overridden."""
    cluster, member, ordinal = key.split("/")
    server = DesiredServer(
        key=key,
        name=server_name(key, 0),
        cluster=cluster,
        member=member,
        ordinal=int(ordinal),
        provider=provider,
        provider_type="simcloud",
        template=f"{member}-template",
        image=image,
        size=Size(cpus, memory_mb, disk_gb),
        flavor=flavor,
        inputs=tuple(inputs),
        **overrides,
    )
    return dataclasses.replace(server, spec_hash=compute_spec_hash(server))


def observed(
    want: DesiredServer,
    *,
    resource_id: str | None = None,
    status: ServerStatus = ServerStatus.RUNNING,
    generation: int = 0,
    cpus: int | None = None,
    memory_mb: int | None = None,
    disk_gb: int | None = None,
    **overrides: Any,
) -> ObservedServer:
    """What a provider would report for ``want`` once created; override what should differ."""
    size = Size(
        want.size.cpus if cpus is None else cpus,
        want.size.memory_mb if memory_mb is None else memory_mb,
        want.size.disk_gb if disk_gb is None else disk_gb,
    )
    fields: dict[str, Any] = {
        "provider": want.provider,
        "resource_id": resource_id or f"i-{want.key.replace('/', '-')}",
        "key": want.key,
        "name": server_name(want.key, generation),
        "owner": OWNER,
        "status": status,
        "size": size,
        "image": want.image,
        "spec_hash": want.spec_hash,
        "generation": generation,
        "flavor": want.flavor,
        "tags": want.tags,
        "protected": want.protect,
        "backup_policy": want.backup_policy or "",
    }
    fields.update(overrides)
    return ObservedServer(**fields)


def run_diff(
    want: Sequence[DesiredServer],
    have: Sequence[ObservedServer],
    *,
    caps: Capabilities | None = None,
    last: Mapping[str, int] | None = None,
    protected: frozenset[str] = frozenset(),
) -> DiffResult:
    """``diff`` with one capability set for the test provider and a dict for the ledger."""
    generations = dict(last or {})
    return diff(
        want,
        have,
        owner=OWNER,
        capabilities={PROVIDER: caps or Capabilities()},
        last_generation=generations.get,
        protected_members=protected,
    )


def provider_config() -> ProviderConfig:
    return ProviderConfig(name=PROVIDER, type="simcloud", spec={"state": "sim.json"})
