"""run.session: one run's providers — opened once, listed once, leases held and renewed, closed together.

Every command that touches a cloud (plan, apply, destroy, backup run/delete, restore, usage
collect) and every daemon cycle works inside one ``ProviderSession``:

* the providers of a desired state (or of a plan) are created once through the registry
  (``core.provider.create_provider``) and closed once, their API-call counts added to the
  workspace's tally;
* ``observe`` lists each provider once per call (paged), retrying transient errors, and
  ``list_snapshots`` does the same for backups;
* ``hold`` takes a lease of every provider (or adopts the leases a daemon already holds)
  and renews them in the background until the session closes, fencing every ledger
  write made meanwhile (see ``run.leases``);
* ``settle`` resolves, once per session, the intents a killed run left open.

A session is the only place in the engine where a provider object is made.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterable, Mapping, Sequence
from types import TracebackType

from reconciler.core.errors import NoSpaceError, UserError
from reconciler.core.model import ObservedServer, ProviderConfig, Snapshot
from reconciler.core.pricing import PriceListFor
from reconciler.core.provider import Capabilities, Provider, create_provider
from reconciler.core.records import Lease
from reconciler.core.retry import call_with_retry
from reconciler.run import anchor
from reconciler.run.audit import RunContext
from reconciler.run.leases import LEASE_TTL_SECONDS, LeaseKeeper, acquire_leases, lease_ttl
from reconciler.run.logger import get_logger
from reconciler.run.settle import settle_intents
from reconciler.run.workspace import Workspace

log = get_logger("reconciler.run.session")


class ProviderSession:
    """The providers of one run, and the leases it holds on them."""

    def __init__(self, ws: Workspace, configs: Iterable[ProviderConfig]) -> None:
        self.ws = ws
        self.configs = tuple(configs)
        self.providers: dict[str, Provider] = {}
        self.leases: list[Lease] = []
        self._own_leases = False
        self._keeper: LeaseKeeper | None = None
        self._settled: dict[str, list[str]] = {}
        context = ws.provider_context()
        try:
            for config in self.configs:
                self.providers[config.name] = create_provider(config, context)
        except BaseException:
            self.close(failing=True)
            raise

    def __enter__(self) -> ProviderSession:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close(failing=exc is not None)

    @property
    def capabilities(self) -> dict[str, Capabilities]:
        return {name: type(p).capabilities for name, p in self.providers.items()}

    def only(self, names: Iterable[str]) -> dict[str, Provider]:
        """The session's providers of these names (a plan may name fewer than the session opened)."""
        wanted = set(names)
        return {name: p for name, p in self.providers.items() if name in wanted}

    # --- reading the clouds ---------------------------------------------------------------------
    def observe(self, owner: str, providers: Iterable[str] | None = None) -> list[ObservedServer]:
        """One paginated listing per provider (all, or those named), retried on transient errors."""
        chosen = self.providers if providers is None else self.only(providers)
        observed: list[ObservedServer] = []
        for name in sorted(chosen):
            observed.extend(call_with_retry(functools.partial(chosen[name].observe, owner), self.ws.retry))
        return observed

    def describe(self, wanted: Mapping[str, Sequence[str]]) -> list[ObservedServer]:
        """The servers of these ids, per provider name, owned or not (``Provider.describe``): one
        call per provider that has ids to look up, retried on transient errors."""
        described: list[ObservedServer] = []
        for name in sorted(wanted):
            provider = self.providers.get(name)
            if provider is not None and wanted[name]:
                ids = sorted(set(wanted[name]))
                described.extend(call_with_retry(functools.partial(provider.describe, ids), self.ws.retry))
        return described

    def list_unowned(self, name: str) -> list[ObservedServer]:
        """Every server of provider ``name`` carrying no owner mark (paged, retried)."""
        return call_with_retry(self.providers[name].list_unowned, self.ws.retry)

    def list_snapshots(
        self, owner: str, providers: Iterable[str] | None = None
    ) -> tuple[list[Snapshot], frozenset[str]]:
        """Every backup ``owner`` has on the providers (all, or those named) that take snapshots,
        and the providers listed."""
        chosen = self.providers if providers is None else self.only(providers)
        snapshots: list[Snapshot] = []
        listed: set[str] = set()
        for name in sorted(chosen):
            provider = chosen[name]
            if not type(provider).capabilities.snapshots:
                continue
            listing = functools.partial(provider.list_snapshots, owner)
            snapshots.extend(call_with_retry(listing, self.ws.retry))
            listed.add(name)
        return snapshots, frozenset(listed)

    # --- leases ---------------------------------------------------------------------------------
    def hold(
        self,
        run: RunContext,
        *,
        leases: Sequence[Lease] | None = None,
        ttl_seconds: float | None = None,
    ) -> list[Lease]:
        """Take a lease of every provider of the session, renewed in the background until close.

        ``leases``: leases the caller already holds (a daemon renews its own across cycles);
        they are renewed by as long as they had left and neither taken nor released here.
        """
        if self._keeper is not None:
            return self.leases
        store = self.ws.store()
        if leases is None:
            ttl = ttl_seconds if ttl_seconds is not None else lease_ttl(LEASE_TTL_SECONDS)
            self.leases = acquire_leases(store, self.configs, run, self.ws.clock, ttl_seconds=ttl)
            self._own_leases = True
            keeper_ttl: float | None = ttl
        else:
            self.leases = list(leases)
            keeper_ttl = None
        self._keeper = LeaseKeeper(store, self.leases, ttl_seconds=keeper_ttl, clock=self.ws.clock)
        self._keeper.start()
        return self.leases

    @property
    def lease_lost(self) -> threading.Event | None:
        return self._keeper.lost if self._keeper is not None else None

    def check_leases(self) -> None:
        """Raise ``LeaseLostError`` when a lease of this session was lost (nothing more may be written)."""
        if self._keeper is not None:
            self._keeper.check()

    def held_providers(self) -> frozenset[str]:
        return frozenset(lease.scope.split("/", 1)[1] for lease in self.leases)

    def settle(
        self,
        deployment: str,
        run: RunContext,
        observed: Sequence[ObservedServer] | None = None,
        *,
        price_list_for: PriceListFor | None = None,
    ) -> list[str]:
        """Resolve the intents a killed run left open, once per session; the messages saying how.

        ``observed``: the servers as listed in this session, to judge stops, starts and deletes by;
        ``price_list_for``: prices the usage interval of an adoption that is recovered.
        """
        if deployment not in self._settled:
            providers = self.only(self.held_providers()) if self.leases else self.providers
            self._settled[deployment] = settle_intents(
                self.ws.store(), providers, set(self.providers), deployment, run, self.ws.clock, observed,
                price_list_for,
            )
        return self._settled[deployment]

    # --- closing --------------------------------------------------------------------------------
    def _anchor(self) -> UserError | None:
        """A signed checkpoint of the ledgers after a session that held leases (so could write).

        A checkpoint that cannot be written is logged, not raised: what was applied stays
        applied, and ``audit verify`` says how far the newest checkpoint reaches. Only a full
        disk (``NoSpaceError``) is handed back, for ``close`` to raise: it stops the next
        write too, so the run must say so.
        """
        try:
            anchor.checkpoint(self.ws.store(), self.ws.store_location(), self.ws.clock.wall())
        except NoSpaceError as exc:
            return exc
        except (OSError, UserError) as exc:
            log.warning("could not write the audit checkpoint", error=str(exc))
        return None

    def close(self, *, failing: bool = False) -> None:
        """Stop renewing, anchor what this session wrote, release the leases it took, close every
        provider (idempotent). Each step runs even when one before it fails; a full disk met on
        the way is raised at the end, unless the session is closing on an error already
        (``failing``), which it must not hide."""
        problem: UserError | None = None
        if self._keeper is not None:
            self._keeper.stop()
            self._keeper = None
            problem = self._anchor()
        if self._own_leases:
            self._own_leases = False
            try:
                store = self.ws.store()
                for lease in self.leases:
                    store.release_lease(lease)
            except UserError as exc:  # it lapses by itself; a later run here sees this process gone
                if not failing:
                    log.warning("could not release the leases", error=str(exc))
                problem = problem or exc
        for provider in self.providers.values():
            self.ws.calls.update(provider.calls)
            provider.close()
        self.providers = {}
        if problem is not None and not failing:
            raise problem
