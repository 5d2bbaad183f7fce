"""Helpers for the backup tests: a small desired state on simcloud (or XCP), and in-process runs
of the engine at a chosen instant (the same functions the CLI calls, with a fixed clock)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from providers.simcloud.provider import SimCloud
from reconciler.backup.cycle import BackupReport, backup_cycle
from reconciler.config import load_desired_state
from reconciler.core.clock import Clock
from reconciler.core.model import ProviderConfig, Snapshot
from reconciler.core.records import AuditEntry
from reconciler.core.retry import RetryPolicy
from reconciler.run.apply import ApplyReport, apply_plan
from reconciler.run.audit import RunContext, new_run
from reconciler.run.planning import plan_path
from reconciler.run.workspace import Workspace

DEPLOYMENT = "vault"
EPOCH = datetime(2026, 11, 2, 1, 0, tzinfo=UTC)  # a Monday, an hour before the nightly tick

SIMCLOUD_PROVIDER = """\
apiVersion: reconciler/v1
kind: Provider
metadata:
  name: sim
spec:
  type: simcloud
  price_list: standard
"""

PRICES = """\
apiVersion: reconciler/v1
kind: PriceList
metadata:
  name: standard
spec:
  currency: USD
  billing: instance-hours
  units:
    vcpu_hour: "0.01"
    backup_gb_month: "0.05"
"""


def policy_yaml(
    *,
    schedule: str = "0 2 * * *",
    quiesce: str = "none",
    keep_last: int = 3,
    keep_daily: int = 7,
    keep_weekly: int = 4,
    keep_monthly: int = 0,
    max_age_hours: float = 26,
    method: str = "snapshot",
) -> str:
    return f"""\
apiVersion: reconciler/v1
kind: BackupPolicy
metadata:
  name: nightly
spec:
  schedule: "{schedule}"
  method: {method}
  quiesce: {quiesce}
  retention:
    keep_last: {keep_last}
    keep_daily: {keep_daily}
    keep_weekly: {keep_weekly}
    keep_monthly: {keep_monthly}
  max_age_hours: {max_age_hours}
"""


def template_yaml(
    *,
    image_type: str = "simcloud",
    image: str = "debian-12",
    cpus: int = 1,
    memory_mb: int = 1024,
    disk_gb: int = 40,
) -> str:
    return f"""\
apiVersion: reconciler/v1
kind: ServerTemplate
metadata:
  name: db
spec:
  image:
    {image_type}: {image}
  size:
    cpus: {cpus}
    memory_mb: {memory_mb}
    disk_gb: {disk_gb}
"""


def cluster_yaml(*, provider: str = "sim", count: int = 1, policy: bool = True) -> str:
    text = f"""\
apiVersion: reconciler/v1
kind: Cluster
metadata:
  name: vault
spec:
  provider: {provider}
  members:
    db:
      template: db
      count: {count}
"""
    return text + ("      backup_policy: nightly\n" if policy else "")


def write_desired(
    root: Path,
    *,
    provider: str = SIMCLOUD_PROVIDER,
    policy: str | None = None,
    template: str | None = None,
    cluster: str | None = None,
) -> Path:
    """A folder named ``vault`` (the deployment) with one file per kind; returns the folder."""
    folder = root / DEPLOYMENT
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in (
        ("providers.yaml", provider),
        ("prices.yaml", PRICES),
        ("policies.yaml", policy or policy_yaml()),
        ("templates.yaml", template or template_yaml()),
        ("cluster.yaml", cluster or cluster_yaml()),
    ):
        (folder / name).write_text(text)
    return folder


def workspace(state_dir: Path, now: datetime) -> Workspace:
    """A workspace whose clock stands at ``now`` and whose retries never sleep."""
    return Workspace(
        state_dir=state_dir, clock=Clock(fixed=now), retry=RetryPolicy(sleep=lambda _: None)
    )


def run_context() -> RunContext:
    return new_run("tester", None)


def apply(
    path: Path, state_dir: Path, now: datetime, *, destroy: bool = False, skip_final_backup: bool = False
) -> ApplyReport:
    ws = workspace(state_dir, now)
    try:
        plan = plan_path(path, ws, destroy=destroy, skip_final_backup=skip_final_backup)
        return apply_plan(plan, ws, run_context())
    finally:
        ws.close()


def cycle(path: Path, state_dir: Path, now: datetime, **kw: object) -> BackupReport:
    ws = workspace(state_dir, now)
    try:
        return backup_cycle(load_desired_state(path), ws, run_context(), **kw)  # type: ignore[arg-type]
    finally:
        ws.close()


def simcloud(state_dir: Path, now: datetime) -> SimCloud:
    """A simcloud provider object on the same state file, for looking at what the cloud holds."""
    from reconciler.core.provider import ProviderContext

    config = ProviderConfig(name="sim", type="simcloud", spec={})
    return SimCloud(config, ProviderContext(state_dir=state_dir, clock=Clock(fixed=now)))


def snapshots(state_dir: Path, now: datetime) -> list[Snapshot]:
    provider = simcloud(state_dir, now)
    try:
        return sorted(provider.list_snapshots(DEPLOYMENT), key=lambda s: (s.created_at, s.snapshot_id))
    finally:
        provider.close()


def audit(state_dir: Path) -> list[AuditEntry]:
    """Every audit entry, in order."""
    ws = workspace(state_dir, EPOCH)
    try:
        store = ws.existing_store()
        return list(store.audit_log()) if store is not None else []
    finally:
        ws.close()
