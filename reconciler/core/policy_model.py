"""core.policy_model: the values of a ``Policy`` — quotas, allowed lists, required tags, CEL rules,
change windows — and the ``Violation`` a check finds.

Kept apart from ``core.policy`` (the checks) so that ``core.model.DesiredState`` and
``core.plan.Plan`` can carry these values without an import cycle: this module imports
nothing of ours. A rule's compiled program is opaque here (``RuleProgram``): ``config.cel``
compiles the expression with cel-python when the YAML is loaded, and core only calls it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from typing import Protocol

GLOBAL_SCOPE = "global"


class Enforcement(StrEnum):
    """What a violation does: ``deny`` is an error (nothing applied), ``warn`` is shown and never blocks."""

    DENY = "deny"
    WARN = "warn"


class Subject(StrEnum):
    """What a CEL rule is evaluated over, from the variables it names: each change when it names
    ``change``, else each desired server when it names ``server``, else the plan once."""

    SERVER = "server"
    CHANGE = "change"
    PLAN = "plan"


class QuotaResource(StrEnum):
    SERVERS = "servers"
    VCPUS = "vcpus"
    MEMORY_GB = "memory_gb"
    DISK_GB = "disk_gb"
    MONTHLY_COST = "monthly_cost"  # the plan's cost after it, per 30-day month, in the plan's currency


class AllowedField(StrEnum):
    PROVIDERS = "providers"  # the Provider document's name
    FLAVORS = "flavors"
    IMAGES = "images"


class ViolationKind(StrEnum):
    """Which part of a Policy a violation comes from (closed set)."""

    QUOTA = "quota"
    ALLOWED = "allowed"
    REQUIRED_TAGS = "required-tags"
    RULE = "rule"  # a CEL rule was false
    EVALUATION = "evaluation"  # a CEL rule could not be evaluated (a missing key, a type error)


class RuleFailure(Exception):
    """A rule could not be evaluated; the message says why (it never holds a secret's value)."""


class RuleProgram(Protocol):
    """A compiled CEL rule: true or false for the variables given, or ``RuleFailure``."""

    def __call__(self, variables: Mapping[str, object]) -> bool: ...


@dataclass(frozen=True)
class Where:
    """A place in the desired state's YAML."""

    file: str
    line: int | None = None

    def __str__(self) -> str:
        return self.file if self.line is None else f"{self.file}:{self.line}"


@dataclass(frozen=True)
class Quota:
    """A ceiling on one resource (servers, vCPUs, memory, disk, monthly cost) within a Policy's scope."""

    resource: QuotaResource
    limit: Decimal
    where: Where


@dataclass(frozen=True)
class AllowList:
    """Glob patterns (``fnmatch``, case-sensitive) one field of every server must match."""

    field: AllowedField
    patterns: tuple[str, ...]
    where: Where


@dataclass(frozen=True)
class PolicyRule:
    """A CEL rule of a Policy: the expression, the message when it fails, what it is evaluated on."""

    name: str
    expr: str
    message: str
    subject: Subject
    where: Where
    uses_plan: bool = False  # names ``plan``: evaluated only when there is a plan
    program: RuleProgram | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class ChangeWindow:
    """A time when a policy's scope may not be changed: from each tick of ``deny`` (five-field cron,
    UTC) for ``duration_hours``. A plan carries it; apply decides on it against the clock then."""

    policy: str
    scope: str
    enforcement: Enforcement
    deny: str
    duration_hours: int
    message: str
    allow_heal: bool
    where: Where


@dataclass(frozen=True)
class Policy:
    """A Policy document: quotas, allowed values, required tags, rules and change windows, for a scope."""

    name: str
    scope: str  # GLOBAL_SCOPE or a Cluster's name
    enforcement: Enforcement
    quotas: tuple[Quota, ...] = ()
    allowed: tuple[AllowList, ...] = ()
    required_tags: tuple[str, ...] = ()
    required_tags_where: Where | None = None
    rules: tuple[PolicyRule, ...] = ()
    windows: tuple[ChangeWindow, ...] = ()
    where: Where | None = None

    def covers(self, cluster: str) -> bool:
        return self.scope == GLOBAL_SCOPE or self.scope == cluster


@dataclass(frozen=True)
class Violation:
    """One thing a Policy refuses (``deny``) or warns about, located at the part of the policy saying so."""

    policy: str
    rule: str  # a rule's name, or the part of the policy: quotas.vcpus, allowed.images, required_tags
    kind: ViolationKind
    enforcement: Enforcement
    message: str
    where: Where
    keys: tuple[str, ...] = ()  # the servers (or changes' keys) concerned, sorted

    @property
    def denies(self) -> bool:
        return self.enforcement is Enforcement.DENY

    def summary(self, shown: int = 10) -> str:
        """``policy shop-limits, rule small-servers: servers are at most 16 vCPUs — shop/db/0``"""
        text = f"policy {self.policy}, rule {self.rule}: {self.message}"
        if not self.keys:
            return text
        more = f" and {len(self.keys) - shown} more" if len(self.keys) > shown else ""
        return f"{text} — {', '.join(self.keys[:shown])}{more}"

    def __str__(self) -> str:
        return f"{self.where}: {self.summary()}"
