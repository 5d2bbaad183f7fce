"""core.records: the ledgers' value types — audit entries, usage and backup intervals, leases.

They are the words the run, billing and daemon layers speak with a store; the store
package (``store.base``) only defines how they are kept."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from reconciler.core.keys import cluster_of, member_of
from reconciler.core.model import BillingMode, Granularity, Size


class AuditAction(StrEnum):
    """What an audit entry records (closed set)."""

    RUN_START = "run.start"
    RUN_END = "run.end"
    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"
    START = "start"
    STOP = "stop"
    SNAPSHOT = "snapshot"
    DELETE_SNAPSHOT = "delete-snapshot"
    OBSERVE_GONE = "observe.gone"  # a server vanished behind our back
    REJECTED = "rejected"  # desired state refused (invalid commit, guard tripped)
    ALERT = "alert"
    SCALE = "scale"
    FAILOVER = "failover"  # a failed server is being replaced or restarted by the daemon
    FAILURE_SEEN = "failure.seen"  # the daemon first saw a server failed: its failover grace starts
    COMMIT = "commit"  # the daemon adopted a new commit of the desired state
    WINDOW_OVERRIDE = "window.override"  # apply --override-window passed a Policy's change window
    ADOPT = "adopt"  # a server that already ran was taken over: our marks written on it
    FORGET = "forget"  # a server was let go: our marks removed, the server left running
    CONSOLE = "console"  # a request made in the web console (sync now, retry, backups, acknowledge)


class Outcome(StrEnum):
    INTENT = "intent"  # about to call the provider
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"  # an upstream change failed
    RECOVERED = "recovered"  # an unresolved intent settled by lookup after a crash
    ABANDONED = "abandoned"  # an unresolved intent whose resource never came to be
    INFO = "info"


@dataclass(frozen=True)
class AuditRecord:
    """What a caller appends; the store adds seq, time and the hash chain.

    ``actor`` is the operator — who ran it: ``--actor``, else the CI job, else the daemon's or
    the OS user's identity. ``author`` and ``committer`` are of the change — the commit behind
    it ("" when there is none); None in entries written before they were recorded (state schema
    version 2 and older): unknown.
    """

    deployment: str
    run_id: str
    actor: str
    action: AuditAction
    outcome: Outcome
    key: str = ""
    provider: str = ""
    resource_id: str = ""
    token: str = ""
    commit: str = ""
    detail: str = ""  # human text or JSON; never a secret value
    error: str = ""
    intent_seq: int | None = None  # for an outcome: the intent it settles
    author: str | None = None  # "Name <email>" of the commit's author
    committer: str | None = None


@dataclass(frozen=True)
class AuditQuery:
    """Which audit entries to list (``audit log``'s filters); None or () leaves a field unfiltered.

    ``key`` matches that key and every key below it (``shop/web`` → ``shop/web/0``…); ``actor``
    matches, ignoring case, part of the operator or of the author; ``commit`` is a sha prefix;
    ``since`` inclusive, ``until`` exclusive; ``limit`` keeps the newest N, still in seq order.
    """

    deployment: str | None = None
    key: str | None = None
    actions: tuple[AuditAction, ...] = ()
    actor: str | None = None
    commit: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    limit: int | None = None


@dataclass(frozen=True)
class AuditEntry:
    """One audit record as the ledger holds it: its sequence number, time, and place in the hash chain."""

    seq: int
    at: datetime
    record: AuditRecord
    prev_hash: str
    hash: str


@dataclass(frozen=True)
class AuditVerification:
    """What checking the audit ledger's hash chain found: whether it holds, and where it breaks."""

    ok: bool
    entries: int
    first_bad_seq: int | None = None
    problem: str = ""


@dataclass(frozen=True)
class UsageInterval:
    """One server at one size for a span of time; ``end`` is None while it still runs."""

    deployment: str
    provider: str
    resource_id: str
    key: str
    flavor: str | None
    size: Size
    start: datetime
    end: datetime | None = None
    # The price in force when the interval opened (from the provider's PriceList), so a
    # report can price history without the YAML of that day; None when nothing priced it.
    hourly_rate: Decimal | None = None
    currency: str = ""
    price_list: str = ""
    id: int | None = None
    # The billing terms of that PriceList, recorded with the rate so a report bills the
    # interval as the list did: how time is counted, and the billing mode. None when nothing
    # priced it, or when it opened before terms were recorded (state schema 1): such an
    # interval is billed by the second, as it always was (``terms_recorded``).
    granularity: Granularity | None = None
    billing: BillingMode | None = None

    @property
    def terms_recorded(self) -> bool:
        """Whether the billing terms are known: always, for an interval opened with a rate since schema 2."""
        return self.hourly_rate is None or self.granularity is not None

    @property
    def billed_granularity(self) -> Granularity:
        """How the recorded rate bills time: the recorded granularity, else by the second."""
        return self.granularity or Granularity.SECOND

    @property
    def cluster(self) -> str:
        return cluster_of(self.key)

    @property
    def member(self) -> str:
        return member_of(self.key)


@dataclass(frozen=True)
class BackupInterval:
    """One backup's storage for a span of time (size × time, priced by ``backup_gb_month``).

    ``end`` is None while the backup exists; the rate is the one in force when it opened.
    """

    deployment: str
    provider: str
    snapshot_id: str
    key: str
    policy: str
    size_gb: float
    start: datetime
    end: datetime | None = None
    gb_month_rate: Decimal | None = None
    currency: str = ""
    price_list: str = ""
    id: int | None = None


@dataclass(frozen=True)
class Lease:
    """Who holds the apply lease of a scope, in which epoch, until when."""

    scope: str
    holder: str
    epoch: int
    expires_at: datetime
