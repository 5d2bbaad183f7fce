"""run.workspace: where one invocation keeps local state — state dir, store, clock, retries, call counts."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from reconciler.config import resolve_secret
from reconciler.core.clock import Clock
from reconciler.core.provider import ProviderContext
from reconciler.core.retry import RetryPolicy
from reconciler.store import open_store, store_exists
from reconciler.store.base import Store

STATE_DB = "state.db"


@dataclass
class Workspace:
    """Where local state lives and how the engine reaches it; one per invocation."""

    state_dir: Path
    clock: Clock = field(default_factory=Clock)
    store_url: str | None = None
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    calls: Counter[str] = field(default_factory=Counter)  # provider API calls, by operation
    _store: Store | None = None
    _reader: Store | None = None  # opened only to read, until something needs to write

    def store(self) -> Store:
        """The store, opened to write and created on first use (only commands that write call this)."""
        if self._store is None:
            if self._reader is not None:  # the same invocation planned first, and now applies
                self._reader.close()
                self._reader = None
            self._store = open_store(self.state_dir, self.store_url)
        return self._store

    def existing_store(self) -> Store | None:
        """The store if one exists already, for reading: planning and reports never create one, and
        open a SQLite file read-only (so they work where the state dir may not be written)."""
        if self._store is not None:
            return self._store
        if self._reader is None:
            if not store_exists(self.state_dir, self.store_url):
                return None
            self._reader = open_store(self.state_dir, self.store_url, read_only=True)
        return self._reader

    def store_location(self) -> str:
        """Where the store lives, as its anchor file is named: the SQLite file's absolute path,
        or the store URL without its password."""
        if self.store_url is None or not self.store_url.strip():
            return str((self.state_dir / STATE_DB).resolve())
        scheme, sep, rest = self.store_url.strip().partition("://")
        userinfo, at, host = rest.rpartition("@")
        return f"{scheme}{sep}{userinfo.split(':', 1)[0]}{at}{host}" if at else self.store_url.strip()

    def provider_context(self) -> ProviderContext:
        return ProviderContext(state_dir=self.state_dir, clock=self.clock, resolve_secret=resolve_secret)

    def close(self) -> None:
        for opened in (self._store, self._reader):
            if opened is not None:
                opened.close()
        self._store = self._reader = None
