"""store.base: the small interface behind which the audit ledger, usage ledger and leases live.

SQLite (``store.sqlite``) is the default; a PostgreSQL implementation satisfies the same
interface. The engine talks only to ``Store``.

Audit ledger: append-only, each entry hash-chained to the previous one. The intent log is
part of it: an entry with ``outcome=intent`` is written *before* a mutating provider call,
and an entry whose ``intent_seq`` names it settles it afterwards. An intent with no settling
entry is "unresolved" and is looked up at the next start.

Usage ledger: one interval per server lifetime and size; measured samples beside it.

Fencing: a writer that holds provider-scope leases runs its writes inside
``store.fenced(leases)``. Every ledger write (``append``, ``open_interval``,
``close_interval``, ``add_samples``) made through that store object then checks, in the
same transaction as the write, that each lease is still the current one of its scope
(same holder, same epoch) and raises ``LeaseLostError`` otherwise — so a replica that was
paused past its lease's expiry cannot write once a new holder took over (a new holder
always gets a higher epoch). Lease operations themselves are never fenced.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import datetime, timedelta
from typing import TypeVar

from reconciler.core.model import MetricSample
from reconciler.core.records import (
    AuditAction,
    AuditEntry,
    AuditQuery,
    AuditRecord,
    AuditVerification,
    BackupInterval,
    Lease,
    UsageInterval,
)

T = TypeVar("T")


class Store(ABC):
    """Ledgers and leases; every method is safe to call from several threads."""

    _fences: tuple[Lease, ...] = ()

    # --- fencing -----------------------------------------------------------------------
    @contextmanager
    def fenced(self, leases: Iterable[Lease]) -> Iterator[None]:
        """Inside the block, every ledger write through this object carries these leases' epochs.

        A write is refused with ``LeaseLostError`` (and nothing of it lands) once any of
        the leases is no longer the current one of its scope. Implementations check
        ``self.fences`` inside each write's transaction.
        """
        previous = self._fences
        self._fences = tuple(leases)
        try:
            yield
        finally:
            self._fences = previous

    @property
    def fences(self) -> tuple[Lease, ...]:
        """The leases every write is currently fenced by (empty: unfenced)."""
        return self._fences

    # --- audit -------------------------------------------------------------------------
    def durably(self, write: Callable[[], T]) -> T:
        """``write()`` (calls of this store's write methods) in one transaction, durable when
        this returns. Implementations may commit the writes of several threads at once
        (``store.group_commit``); each write still lands whole or not at all. ``write`` may
        run more than once (only its last run counts): it must do nothing but call this
        store's write methods."""
        with self.transaction():
            return write()

    @abstractmethod
    def append(self, record: AuditRecord, *, at: datetime) -> AuditEntry:
        """Append one entry durably (it is on disk when this returns)."""

    @abstractmethod
    def audit_log(self, *, deployment: str | None = None, since_seq: int = 0) -> Iterator[AuditEntry]:
        """Entries in sequence order."""

    @abstractmethod
    def audit_search(self, query: AuditQuery) -> Iterator[AuditEntry]:
        """The entries ``query`` selects (``audit log``'s filters), in sequence order."""

    @abstractmethod
    def verify(self) -> AuditVerification:
        """Walk the hash chain; report the first entry edited, removed or reordered."""

    @abstractmethod
    def check_integrity(self) -> None:
        """Raise ``UserError`` when the database finds itself damaged (pages, indexes).

        ``reconciler audit verify`` runs this before walking the chain: damage outside the
        audit rows (an index, a usage page) leaves the chain readable yet the state unsound.
        """

    @abstractmethod
    def unresolved_intents(self, deployment: str) -> list[AuditEntry]:
        """Intent entries that no later entry settles (``intent_seq``)."""

    @abstractmethod
    def max_generation(self, deployment: str, key: str) -> int | None:
        """Highest server generation the ledger has seen for ``key`` (from intents)."""

    def recent_audit(
        self,
        deployment: str,
        actions: Iterable[AuditAction],
        *,
        key: str | None = None,
        since: datetime | None = None,
        limit: int = 100,
    ) -> list[AuditEntry]:
        """The newest entries (newest first) with one of ``actions``, for ``key`` and at or after
        ``since`` when given; at most ``limit``. The daemon reads its last scale decisions,
        failovers and adopted commits this way.

        This default walks the whole ledger; implementations should override it with a query.
        """
        wanted = set(actions)
        found = [
            entry
            for entry in self.audit_log(deployment=deployment)
            if entry.record.action in wanted
            and (key is None or entry.record.key == key)
            and (since is None or entry.at >= since)
        ]
        return found[::-1][:limit]

    # --- usage -------------------------------------------------------------------------
    @abstractmethod
    def open_interval(self, interval: UsageInterval) -> UsageInterval:
        """Start an interval; a second open interval for the same resource is not created."""

    @abstractmethod
    def close_interval(self, provider: str, resource_id: str, *, end: datetime) -> UsageInterval | None:
        """Close the open interval of a resource (None if it had none)."""

    @abstractmethod
    def open_intervals(self, deployment: str) -> list[UsageInterval]: ...

    @abstractmethod
    def intervals(
        self, *, start: datetime | None = None, end: datetime | None = None, deployment: str | None = None
    ) -> list[UsageInterval]:
        """Intervals overlapping [start, end)."""

    @abstractmethod
    def closed_intervals(self, *, by: datetime) -> int:
        """How many intervals were closed by ``by`` (what a checkpoint's usage digest covers)."""

    @abstractmethod
    def add_samples(self, deployment: str, samples: list[MetricSample]) -> None: ...

    @abstractmethod
    def samples(
        self, *, start: datetime | None = None, end: datetime | None = None, deployment: str | None = None
    ) -> list[MetricSample]: ...

    def window_samples(
        self, *, start: datetime, end: datetime, deployment: str | None = None
    ) -> list[MetricSample]:
        """What a report of [start, end) needs: samples taken in (start, end], and for each
        server sampled there its last sample at or before ``start`` (the baseline its first
        delta in the window counts from), in time order.

        A sample at ``end`` is included (it closes the window's last span). This default
        filters ``samples`` (the reference the SQL stores are tested against); they
        override it with one indexed query (the window by ``at``, each baseline by the
        primary key ``(provider, resource_id, at)``) that never reads an older sample.
        """
        taken = self.samples(end=end + timedelta(microseconds=1), deployment=deployment)
        inside = [s for s in taken if s.at > start]
        sampled = {(s.provider, s.resource_id) for s in inside}
        baseline: dict[tuple[str, str], MetricSample] = {}
        for s in taken:
            ident = (s.provider, s.resource_id)
            if s.at <= start and ident in sampled and (ident not in baseline or baseline[ident].at < s.at):
                baseline[ident] = s
        return sorted([*baseline.values(), *inside], key=lambda s: (s.at, s.provider, s.resource_id))

    # --- backup storage ----------------------------------------------------------------
    @abstractmethod
    def open_backup_interval(self, interval: BackupInterval) -> BackupInterval:
        """Start a backup's interval (fenced); a second open one for the same backup is not created."""

    @abstractmethod
    def close_backup_interval(
        self, provider: str, snapshot_id: str, *, end: datetime
    ) -> BackupInterval | None:
        """Close a backup's open interval (fenced; None if it had none)."""

    @abstractmethod
    def backup_intervals(
        self, *, start: datetime | None = None, end: datetime | None = None, deployment: str | None = None
    ) -> list[BackupInterval]:
        """Backup intervals overlapping [start, end) (open ones included), oldest first."""

    # --- leases ------------------------------------------------------------------------
    @abstractmethod
    def acquire_lease(self, scope: str, holder: str, *, ttl_seconds: float, now: datetime) -> Lease | None:
        """Take or renew the lease of ``scope``; None while another live holder has it."""

    @abstractmethod
    def release_lease(self, lease: Lease) -> None: ...

    @abstractmethod
    def current_lease(self, scope: str) -> Lease | None:
        """The lease row of ``scope`` as stored (live or expired), or None if never taken."""

    # --- transactions ------------------------------------------------------------------
    @abstractmethod
    def transaction(self) -> AbstractContextManager[None]:
        """Group several writes so they land together or not at all."""

    @abstractmethod
    def close(self) -> None: ...
