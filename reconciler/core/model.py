"""core.model: the value types shared by every layer — closed enums and frozen dataclasses.

Nothing here does I/O. Desired state (what the YAML asks for) and observed state (what a
cloud reports) meet in ``diff``; both are plain, hashable, typed values so that a typo
is a type error rather than a silently missing dict key.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from reconciler.core.keys import cluster_of
from reconciler.core.policy_model import Policy

# Ownership marks carried by every resource we create (tags, metadata, other_config…).
TAG_PREFIX = "reconciler:"
TAG_OWNER = "reconciler:owner"
TAG_KEY = "reconciler:key"
TAG_SPEC_HASH = "reconciler:spec-hash"
TAG_GENERATION = "reconciler:generation"
TAG_TOKEN = "reconciler:token"
TAG_CLUSTER = "reconciler:cluster"
TAG_MEMBER = "reconciler:member"
TAG_POLICY = "reconciler:policy"
TAG_TAKEN_AT = "reconciler:taken-at"
TAG_BACKUP_METHOD = "reconciler:backup-method"  # on backups: the BackupMethod they were taken with
# Guard marks on servers, written at create and rewritten by every update, so that what the
# YAML says now is not enough to destroy: a server carrying ``TAG_PROTECT`` is never deleted
# or replaced, and one carrying ``TAG_SERVER_POLICY`` gets a final backup under that policy
# before any delete or replace, even after its member (or the policy) left the YAML.
TAG_PROTECT = "reconciler:protect"  # "true" when the member says protect: true; absent otherwise
TAG_SERVER_POLICY = "reconciler:backup-policy"  # the member's backup policy name; absent when none
GUARD_TAGS = (TAG_PROTECT, TAG_SERVER_POLICY)


class Action(StrEnum):
    """What a plan does to one server key. Symbols follow Terraform's."""

    CREATE = "create"
    UPDATE = "update"
    REPLACE = "replace"
    DELETE = "delete"
    ADOPT = "adopt"  # take over a server that already runs: write our marks on it, nothing else
    NOOP = "no-op"

    @property
    def symbol(self) -> str:
        return _SYMBOLS[self]


_SYMBOLS = {
    Action.CREATE: "+",
    Action.UPDATE: "~",
    Action.REPLACE: "-/+",
    Action.DELETE: "-",
    Action.ADOPT: "=",
    Action.NOOP: " ",
}


class ServerStatus(StrEnum):
    """A server's state as a provider reports it, mapped to one closed set."""

    PENDING = "pending"
    RUNNING = "running"
    STOPPED = "stopped"
    ERROR = "error"


class ScriptPhase(StrEnum):
    BOOT = "boot"
    OPERATIONAL = "operational"
    DECOMMISSION = "decommission"


class UpdateStrategy(StrEnum):
    """How a member accepts a size change: in place when the provider can, or always replace."""

    IN_PLACE = "in-place"
    REPLACE = "replace"


class DriftMode(StrEnum):
    HEAL = "heal"
    WARN = "warn"
    IGNORE = "ignore"


class FailoverMode(StrEnum):
    REPLACE = "replace"
    RESTART = "restart"
    NONE = "none"


class ScaleMetric(StrEnum):
    """What an autoscaled member scales on: CPU or memory percent, or network bytes per second."""

    CPU = "cpu"
    MEMORY = "memory"
    NETWORK = "network"


class AlertSinkType(StrEnum):
    WEBHOOK = "webhook"
    LOG = "log"


class AlertEvent(StrEnum):
    """What the daemon raises alerts about (closed set; an AlertSink may subscribe to some)."""

    APPLY_FAILED = "apply-failed"
    PROVIDER_ERROR = "provider-error"  # the cloud refused for good (PermanentError)
    FAILOVER = "failover"
    SCALE = "scale"
    INVALID_COMMIT = "invalid-commit"
    BACKUP_FAILED = "backup-failed"
    BACKUP_OVERDUE = "backup-overdue"
    BUDGET_EXCEEDED = "budget-exceeded"
    POLICY_DENIED = "policy-denied"  # a commit (or its plan) breaks a deny Policy: refused, nothing applied


class BackupMethod(StrEnum):
    """How a backup is taken. ``snapshot``: the provider's quick point-in-time copy (may live
    beside or inside the server's disk); ``image``: a standalone copy that outlives the
    server. Providers that have one kind only take that for both."""

    SNAPSHOT = "snapshot"
    IMAGE = "image"


class Quiesce(StrEnum):
    """What is done to a running server around its backup."""

    NONE = "none"
    SHUTDOWN = "shutdown"  # stop, snapshot, start again


class BillingMode(StrEnum):
    INSTANCE_HOURS = "instance-hours"
    MEASURED = "measured"


class Granularity(StrEnum):
    """How instance-hours are counted: by the second, each started minute, or each started hour (old EC2)."""

    SECOND = "second"
    MINUTE = "minute"
    HOUR = "hour"

    @property
    def seconds(self) -> int:
        """The length of one billed unit."""
        return _GRANULARITY_SECONDS[self]


_GRANULARITY_SECONDS = {Granularity.SECOND: 1, Granularity.MINUTE: 60, Granularity.HOUR: 3600}


class InputType(StrEnum):
    STRING = "string"
    INTEGER = "integer"
    NUMBER = "number"
    BOOLEAN = "boolean"


@dataclass(frozen=True)
class SourceLocation:
    """Where a piece of desired state was written, for diagnostics."""

    file: str
    line: int | None = None

    def __str__(self) -> str:
        return self.file if self.line is None else f"{self.file}:{self.line}"


@dataclass(frozen=True, order=True)
class Size:
    """A server's size: vCPUs, memory in MB, disk in GB."""

    cpus: int
    memory_mb: int
    disk_gb: int

    def __str__(self) -> str:
        return f"{self.cpus} vCPU, {self.memory_mb} MB, {self.disk_gb} GB"


@dataclass(frozen=True)
class SecretRef:
    """A reference to a secret (``env:NAME`` or ``file:PATH``); the value is read only at apply time."""

    scheme: str  # "env" or "file"
    target: str

    def __str__(self) -> str:
        return f"{self.scheme}:{self.target}"

    @classmethod
    def parse(cls, text: str) -> SecretRef | None:
        scheme, sep, target = text.partition(":")
        if not sep or scheme not in ("env", "file") or not target:
            return None
        return cls(scheme=scheme, target=target)


InputScalar = str | int | float | bool
InputValue = InputScalar | SecretRef

SENSITIVE = "(sensitive)"


@dataclass(frozen=True)
class ResolvedInput:
    """One input's final value and the precedence level it came from."""

    name: str
    value: InputValue | None
    source: str  # e.g. "template default", "Inputs global (inputs.yaml:4)", "member inputs"
    sensitive: bool = False

    def display(self) -> str:
        if self.sensitive or isinstance(self.value, SecretRef):
            return SENSITIVE
        return json.dumps(self.value)


@dataclass(frozen=True)
class Script:
    """A script template (Jinja2 source) and the phase it runs in; rendered with inputs."""

    phase: ScriptPhase
    name: str
    source: str
    location: SourceLocation | None = field(default=None, compare=False)  # the source's first line


@dataclass(frozen=True)
class DesiredServer:
    """One concrete server the YAML asks for, keyed ``cluster/member/ordinal``."""

    key: str
    name: str
    cluster: str
    member: str
    ordinal: int
    provider: str  # the Provider document's name
    provider_type: str
    template: str
    image: str
    size: Size
    flavor: str | None
    inputs: tuple[ResolvedInput, ...] = ()
    scripts: tuple[Script, ...] = ()
    tags: tuple[tuple[str, str], ...] = ()
    protect: bool = False
    depends_on: tuple[str, ...] = ()  # keys of desired servers that must exist first
    update_strategy: UpdateStrategy = UpdateStrategy.IN_PLACE
    allow_restart: bool = True
    drift: DriftMode = DriftMode.HEAL
    failover: FailoverMode = FailoverMode.REPLACE
    failover_grace_seconds: int = 0  # how long a failed server may stay failed before the daemon acts
    failover_max_per_hour: int | None = None  # failovers per member per hour (None: no cap)
    backup_policy: str | None = None
    spec_hash: str = ""
    location: SourceLocation | None = field(default=None, compare=False)
    # ``adopt:``: the id of a running server to take over as this key ("" for none), and where
    adopt_id: str = ""
    adopt_location: SourceLocation | None = field(default=None, compare=False)
    allow_replace_on_adopt: bool = False

    def spec_material(self) -> dict[str, Any]:
        """What the spec hash covers: the parts only a replacement can change.

        Size, flavor and tags are compared directly against what the provider reports,
        because providers can often change them in place.
        """
        return {
            "template": self.template,
            "image": self.image,
            "disk_gb": self.size.disk_gb,
            "scripts": [[s.phase.value, s.name, s.source] for s in self.scripts],
            "inputs": [[i.name, _hashable_value(i.value)] for i in self.inputs],
        }


def _hashable_value(value: InputValue | None) -> Any:
    if isinstance(value, SecretRef):
        return {"secret": str(value)}
    return value


def compute_spec_hash(server: DesiredServer) -> str:
    """Deterministic short hash of a server's replace-only spec (see ``spec_material``)."""
    blob = json.dumps(server.spec_material(), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def idempotency_token(owner: str, key: str, spec_hash: str, generation: int) -> str:
    """Deterministic creation token (≤ 64 chars): the same create, retried, carries the same token."""
    blob = f"{owner}|{key}|{spec_hash}|{generation}"
    return hashlib.sha256(blob.encode()).hexdigest()[:32]


def server_name(key: str, generation: int) -> str:
    """Name a server from its key: ``shop/web/0`` → ``shop-web-0`` (``shop-web-0-g2`` later on).

    The name is ``name_stem(cluster, member)`` followed by ``-ordinal``: members whose stems
    are equal would give their servers the same names (``resolve`` refuses them).
    """
    base = key.replace("/", "-")
    return base if generation == 0 else f"{base}-g{generation}"


def name_stem(cluster: str, member: str) -> str:
    """What the names of a member's servers (and backups) start with: ``a`` + ``b-c`` → ``a-b-c``,
    the same as ``a-b`` + ``c`` — names may hold '-', so two members can share a stem."""
    return f"{cluster}-{member}"


@dataclass(frozen=True)
class ObservedServer:
    """One owned server as a provider reports it right now (or, from ``describe``, maybe unowned)."""

    provider: str
    resource_id: str
    key: str
    name: str
    owner: str
    status: ServerStatus
    size: Size
    image: str
    spec_hash: str
    generation: int = 0
    token: str = ""
    flavor: str | None = None
    addresses: tuple[str, ...] = ()
    created_at: datetime | None = None
    tags: tuple[tuple[str, str], ...] = ()  # user tags, without the reconciler: marks
    protected: bool = False  # carries the protect mark (TAG_PROTECT)
    backup_policy: str = ""  # the backup policy mark (TAG_SERVER_POLICY); "" when none

    @property
    def cluster(self) -> str:
        return cluster_of(self.key)


@dataclass(frozen=True)
class CreateRequest:
    """Everything a provider needs to create one server. ``user_data`` may hold secrets: never log it."""

    owner: str
    key: str
    name: str
    token: str
    generation: int
    spec_hash: str
    image: str
    size: Size
    flavor: str | None
    user_data: str = field(default="", repr=False)
    tags: tuple[tuple[str, str], ...] = ()
    cluster: str = ""
    member: str = ""
    protect: bool = False  # write the protect mark
    backup_policy: str = ""  # write the backup policy mark ("" writes none)


@dataclass(frozen=True)
class UpdateRequest:
    """An in-place change: new size/flavor/tags, and whether a restart is allowed to get there."""

    size: Size
    flavor: str | None
    tags: tuple[tuple[str, str], ...]
    allow_restart: bool = True
    protect: bool = False  # the guard marks the server carries afterwards (see GUARD_TAGS)
    backup_policy: str = ""


@dataclass(frozen=True)
class SnapshotRequest:
    """What a backup of one server is to be called and marked with, and how it is taken."""

    name: str
    policy: str | None
    tags: tuple[tuple[str, str], ...] = ()
    method: BackupMethod = BackupMethod.SNAPSHOT


@dataclass(frozen=True)
class Snapshot:
    """A backup a cloud holds of one of our servers, as observed."""

    provider: str
    snapshot_id: str
    resource_id: str
    key: str
    owner: str
    name: str
    created_at: datetime
    size_gb: float
    policy: str | None = None
    status: str = "available"


@dataclass(frozen=True)
class MetricSample:
    """Cumulative counters for one server at one instant (for measured billing)."""

    provider: str
    resource_id: str
    key: str
    at: datetime
    cpu_seconds: float
    memory_mb: int
    net_rx_bytes: int
    net_tx_bytes: int
    disk_gb: int = 0


@dataclass(frozen=True)
class ProviderConfig:
    """A ``Provider`` document, as the plan carries it (credentials only by reference)."""

    name: str
    type: str
    spec: Mapping[str, Any] = field(default_factory=dict)
    max_parallel: int = 10
    price_list: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": self.type,
            "spec": dict(self.spec),
            "max_parallel": self.max_parallel,
            "price_list": self.price_list,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ProviderConfig:
        return cls(
            name=str(data["name"]),
            type=str(data["type"]),
            spec=dict(data.get("spec") or {}),
            max_parallel=int(data.get("max_parallel", 10)),
            price_list=data.get("price_list"),
        )


HOURS_PER_MONTH = Decimal(720)  # a 30-day month: what monthly rates and budgets divide by


@dataclass(frozen=True)
class PriceList:
    """Rates to price servers with: a flavor's hourly rate wins, else the unit rates by size."""

    name: str
    currency: str = "USD"
    billing: BillingMode = BillingMode.INSTANCE_HOURS
    flavor_hourly: Mapping[str, Decimal] = field(default_factory=dict)
    vcpu_hour: Decimal = Decimal(0)
    ram_gb_hour: Decimal = Decimal(0)
    disk_gb_month: Decimal = Decimal(0)
    network_gb: Decimal = Decimal(0)
    backup_gb_month: Decimal = Decimal(0)
    location: SourceLocation | None = field(default=None, compare=False)
    granularity: Granularity = Granularity.SECOND
    flat_monthly: Decimal = Decimal(0)  # per server per 30-day month, whatever it does
    network_in_gb: Decimal | None = None  # None: network_gb applies
    network_out_gb: Decimal | None = None  # None: network_gb applies

    def prices(self, flavor: str | None) -> bool:
        """Whether the list can price a server of ``flavor``: it lists the flavor, or has unit rates."""
        if flavor is not None and flavor in self.flavor_hourly:
            return True
        rates = (self.vcpu_hour, self.ram_gb_hour, self.disk_gb_month, self.flat_monthly)
        return any(rate != 0 for rate in rates)


GLOBAL = "global"  # a Budget's scope for every cluster together; the scope of a currency's total


@dataclass(frozen=True)
class Budget:
    """A monthly (30-day) cost ceiling for one cluster or, with scope "global", for everything."""

    name: str
    scope: str  # "global" or a Cluster's name
    monthly: Decimal
    currency: str | None = None  # None: whatever the plan's prices are in
    location: SourceLocation | None = field(default=None, compare=False)


@dataclass(frozen=True)
class Retention:
    """How many backups a policy keeps: the newest ones, and the newest of each day, week, month."""

    keep_last: int = 0
    keep_daily: int = 0
    keep_weekly: int = 0
    keep_monthly: int = 0


@dataclass(frozen=True)
class BackupPolicy:
    """A BackupPolicy document: when to back up (cron), how, whether to quiesce, what to keep."""

    name: str
    schedule: str  # cron expression
    method: BackupMethod = BackupMethod.SNAPSHOT
    quiesce: Quiesce = Quiesce.NONE
    retention: Retention = field(default_factory=Retention)
    max_age_hours: float | None = None
    location: SourceLocation | None = field(default=None, compare=False)


@dataclass(frozen=True)
class Autoscale:
    """A member that scales between ``min`` and ``max`` servers on a metric (daemon only)."""

    member: str  # cluster/member
    min: int
    max: int
    metric: ScaleMetric
    target: float  # percent for cpu and memory, bytes per second for network
    cooldown_seconds: int = 300
    location: SourceLocation | None = field(default=None, compare=False)


@dataclass(frozen=True)
class AlertSink:
    """Where the daemon sends alerts. ``url`` and header values may be secret references."""

    name: str
    type: AlertSinkType
    url: str | SecretRef | None = None
    timeout_seconds: float = 5.0
    retries: int = 3
    events: tuple[AlertEvent, ...] = ()  # empty: every event
    headers: tuple[tuple[str, str | SecretRef], ...] = ()
    location: SourceLocation | None = field(default=None, compare=False)

    def wants(self, event: AlertEvent) -> bool:
        return not self.events or event in self.events


@dataclass(frozen=True)
class DesiredState:
    """Everything a directory of YAML asks for, resolved and validated."""

    deployment: str  # the owner mark put on every resource
    source_path: str
    providers: tuple[ProviderConfig, ...]
    servers: tuple[DesiredServer, ...]
    price_lists: Mapping[str, PriceList] = field(default_factory=dict)
    backup_policies: Mapping[str, BackupPolicy] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()
    budgets: Mapping[str, Budget] = field(default_factory=dict)
    autoscale: Mapping[str, Autoscale] = field(default_factory=dict)  # by cluster/member
    alert_sinks: tuple[AlertSink, ...] = ()
    policies: tuple[Policy, ...] = ()  # sorted by name; checked by ``core.policy``

    def provider(self, name: str) -> ProviderConfig:
        for config in self.providers:
            if config.name == name:
                return config
        raise KeyError(name)

    def price_list_for(self, provider: str) -> PriceList | None:
        """The PriceList a provider names (or the only one declared, when it names none)."""
        return price_list_in_force(self.price_lists, self.provider(provider).price_list)


def price_list_in_force(price_lists: Mapping[str, PriceList], named: str | None) -> PriceList | None:
    """The PriceList of a provider that names ``named``: that one, or the only one declared when it
    names none. With several declared and none named there is none (``config.money`` refuses that)."""
    if named:
        return price_lists.get(named)
    if len(price_lists) == 1:
        return next(iter(price_lists.values()))
    return None
