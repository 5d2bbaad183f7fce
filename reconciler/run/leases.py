"""run.leases: keeping provider-scope leases alive during an apply, and fencing writes with them.

A reconciler applies to a provider only while it holds that provider's lease
(``provider/<name>``, see ``acquire_leases``). Holding it has three parts, all here:

* **Renewal.** ``LeaseKeeper`` renews every lease of the run from a background thread, a
  third of the time-to-live before it would lapse, so an apply longer than the TTL keeps
  its leases while a killed holder's lease still expires within one TTL.
* **Fencing.** While the keeper runs, the store's writes are fenced by the leases
  (``Store.fenced``): once another reconciler took a lease over (a higher epoch), every
  ledger write of this run is refused with ``LeaseLostError`` — also the writes of a
  replica that was paused and wakes up after its lease expired.
* **Stopping.** When a renewal finds the lease gone (taken over, or lapsed and so moved
  to a new epoch) the keeper sets ``lost``; the executor then starts no new change, and
  ``check()`` turns the loss into a ``LeaseLostError`` for the caller.

Fencing protects the ledgers, not the clouds: a provider call already in flight when the
lease is lost still completes. Idempotency tokens make a retried create by the next holder
find that server instead of making a second one, when it reuses the same token.

``RECONCILER_HOSTNAME`` overrides the host part of a holder's name (tests simulate several
hosts on one machine with it); ``RECONCILER_LEASE_TTL`` sets the lease time-to-live in
seconds (default ``LEASE_TTL_SECONDS``).
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Iterable, Sequence
from contextlib import ExitStack
from datetime import datetime

from reconciler.core.clock import Clock
from reconciler.core.errors import LeaseLostError, UserError
from reconciler.core.model import ProviderConfig
from reconciler.core.records import Lease
from reconciler.run.audit import RunContext
from reconciler.run.logger import get_logger
from reconciler.store.base import Store

log = get_logger("reconciler.run.leases")

HOSTNAME_ENV = "RECONCILER_HOSTNAME"
TTL_ENV = "RECONCILER_LEASE_TTL"
RENEWALS_PER_TTL = 3
LEASE_TTL_SECONDS = 120.0  # renewed every third of it during an apply; RECONCILER_LEASE_TTL overrides


def hostname() -> str:
    """This host's name as lease holders spell it (``RECONCILER_HOSTNAME`` overrides it)."""
    return os.environ.get(HOSTNAME_ENV, "").strip() or socket.gethostname()


def lease_ttl(default: float) -> float:
    """The lease time-to-live in seconds: ``RECONCILER_LEASE_TTL`` if set, else ``default``."""
    text = os.environ.get(TTL_ENV, "").strip()
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0 or value == float("inf"):
        raise UserError(f"{TTL_ENV}={text!r} is not a number of seconds greater than 0; write it like 120")
    return value


class LeaseKeeper:
    """Renews a run's leases in the background and fences the store's writes with them.

    ``start()`` … ``stop()`` brackets the writes to fence; ``lost`` is set (and stays set)
    when a lease could not be renewed under its epoch. Each renewal extends a lease by
    ``ttl_seconds``; None means by as long as it had left when the keeper started (leases
    a daemon took with its own time-to-live just before applying).
    """

    def __init__(
        self, store: Store, leases: Sequence[Lease], *, ttl_seconds: float | None, clock: Clock
    ) -> None:
        self.store = store
        self.leases = tuple(leases)
        now = clock.wall()
        self._ttl = {
            lease.scope: ttl_seconds if ttl_seconds is not None
            else max(1.0, (lease.expires_at - now).total_seconds())
            for lease in self.leases
        }
        self.clock = clock
        self.lost = threading.Event()
        self.problem = ""
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._fence = ExitStack()
        self._expires = {lease.scope: lease.expires_at for lease in self.leases}

    def start(self) -> LeaseKeeper:
        self._fence.enter_context(self.store.fenced(self.leases))
        if self.leases:
            self._thread = threading.Thread(target=self._run, name="lease-keeper", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop renewing and unfence the store (idempotent; the leases are not released here)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self._fence.close()

    def check(self) -> None:
        """Raise ``LeaseLostError`` if a lease was lost."""
        if self.lost.is_set():
            raise LeaseLostError(self.problem)

    # --- the renewal thread --------------------------------------------------------------
    def _interval(self) -> float:
        """Renew a third of the way: of the TTL, or sooner if a lease lapses sooner than that."""
        now = self.clock.wall()
        remaining = min((expires - now).total_seconds() for expires in self._expires.values())
        return max(0.05, min(min(self._ttl.values()), remaining) / RENEWALS_PER_TTL)

    def _run(self) -> None:
        while not self._stop.wait(self._interval()):
            for lease in self.leases:
                if self._stop.is_set() or not self._renew(lease):
                    return

    def _renew(self, lease: Lease) -> bool:
        """Renew one lease; False (and ``lost`` set) when it is gone."""
        now = self.clock.wall()
        try:
            renewed = self.store.acquire_lease(
                lease.scope, lease.holder, ttl_seconds=self._ttl[lease.scope], now=now
            )
        except Exception as exc:  # the store is unreachable: keep trying until the lease lapses
            if now < self._expires[lease.scope]:
                log.warning("could not renew a lease; retrying", scope=lease.scope, error=str(exc))
                return True
            return self._lose(lease, f"it lapsed while the store was unreachable ({exc})", now)
        if renewed is None:
            current = self.store.current_lease(lease.scope)
            who = f"{current.holder} (epoch {current.epoch})" if current is not None else "another holder"
            return self._lose(lease, f"{who} took it over", now)
        if renewed.epoch != lease.epoch:  # it lapsed and we re-took it: what we did may have raced
            self.store.release_lease(renewed)
            return self._lose(lease, "it lapsed before it could be renewed", now)
        self._expires[lease.scope] = renewed.expires_at
        return True

    def _lose(self, lease: Lease, why: str, now: datetime) -> bool:
        self.problem = (
            f"lost the lease of {lease.scope} (epoch {lease.epoch}) during the apply: {why}; "
            "no further change was started and nothing more was written"
        )
        self.lost.set()  # first: nothing that follows (logging included) may keep writers going
        log.error("lease lost", scope=lease.scope, epoch=lease.epoch, reason=why, at=now.isoformat())
        return False


def lease_holder(run: RunContext) -> str:
    """``run@host:pid``: lets a later run on the same host see that a holder died."""
    return f"{run.run_id}@{hostname()}:{os.getpid()}"


def _holder_is_dead(holder: str) -> bool:
    """True when the holder ran on this host and its process no longer exists."""
    _, _, where = holder.partition("@")
    host, _, pid = where.rpartition(":")
    if host != hostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def acquire_leases(
    store: Store,
    configs: Iterable[ProviderConfig],
    run: RunContext,
    clock: Clock,
    *,
    holder: str | None = None,
    ttl_seconds: float = LEASE_TTL_SECONDS,
    partial: bool = False,
) -> list[Lease]:
    """One lease per provider scope, so two reconcilers never apply to the same cloud at once.

    Leases are judged by the real time (not ``--now``); a holder that was killed on this
    host is recognised at once instead of after the lease's time-to-live. ``holder``
    defaults to this run; a daemon passes its own, stable identity to renew its leases
    cycle after cycle. With ``partial`` the leases that could be taken are returned (a
    daemon applies only to those providers) instead of raising ``LeaseLostError``.
    """
    leases: list[Lease] = []
    holder = holder or lease_holder(run)
    for config in configs:
        scope = f"provider/{config.name}"
        lease = store.acquire_lease(scope, holder, ttl_seconds=ttl_seconds, now=clock.wall())
        if lease is None:
            held = store.current_lease(scope)
            if held is not None and _holder_is_dead(held.holder):
                log.warning("taking over the lease of a dead holder", scope=scope, holder=held.holder)
                store.release_lease(held)
                lease = store.acquire_lease(scope, holder, ttl_seconds=ttl_seconds, now=clock.wall())
        if lease is None and partial:
            continue
        if lease is None:
            for taken in leases:
                store.release_lease(taken)
            held = store.current_lease(scope)
            by = f" ({held.holder}, lease until {held.expires_at:%H:%M:%S} UTC)" if held is not None else ""
            raise LeaseLostError(
                f"another reconciler{by} is applying to provider {config.name!r}; try again later"
            )
        leases.append(lease)
    return leases
