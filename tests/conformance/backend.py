"""tests.conformance.backend: what a provider's test backend supplies to the one conformance suite.

Each provider adds ONE file, ``tests/conformance/backend_<type>.py``, defining
``BACKENDS: list[Backend]``; ``conftest.py`` finds it by glob, so nobody edits shared files.
A backend knows how to make a provider on a fresh, empty scope and how to poke the real
backend behind the provider's back (a server made by hand, injected failures). Subclass
``BaseBackend`` and override what your backend can do; what it leaves out is skipped with
a reason, never silently passed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

import pytest

from reconciler.core.clock import Clock
from reconciler.core.model import BackupMethod, CreateRequest, Size
from reconciler.core.provider import Provider, ProviderContext

# The instant every conformance provider's clock is fixed at (tests never read the real time).
FIXED_NOW = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)


def fixed_context(tmp_path: Path) -> ProviderContext:
    """A provider context with its state under ``tmp_path`` and the clock fixed at ``FIXED_NOW``."""
    return ProviderContext(state_dir=tmp_path, clock=Clock(fixed=FIXED_NOW))


@dataclass(frozen=True)
class Shape:
    """A size the backend can create, and the flavor that gives it (None where sizes are free-form).

    Observed servers must report exactly this size and flavor.
    """

    size: Size
    flavor: str | None = None


class Backend(Protocol):
    """One provider configuration the conformance suite runs against."""

    name: str  # test id, e.g. "simcloud" or "aws-moto"
    skip_reason: str | None  # set when this backend cannot run here (missing daemon, SDK…)
    image: str  # an image the backend accepts
    small: Shape  # the size servers are created with
    large: Shape  # the size the in-place resize test grows them to
    page_size: int  # servers per listing page of providers made by make_provider
    listing_operation: str  # the ``provider.calls`` key counted once per listing page
    observe_overhead_calls: int  # fixed extra API calls per observe besides listing pages
    observe_calls_per_server: int  # API calls per owned server in an observe (libvirt reads each one's XML)
    describe_calls: int  # at most this many API calls for one ``describe`` of two servers
    pagination_skip: str | None  # reason to skip the many-servers pagination test, or None
    supports_snapshots: bool
    supports_start_stop: bool
    # The backup methods whose snapshots ``create_from_snapshot`` restores; for any other
    # method the provider must refuse the restore with a PermanentError.
    restore_methods: tuple[BackupMethod, ...]
    # Why a second process cannot work on what this backend holds (its state lives in the test
    # process), so the kill -9 tests cannot run; None when it can.
    kill_skip: str | None

    def make_provider(self, tmp_path: Path) -> Provider:
        """A new provider on a fresh, empty scope (state under ``tmp_path`` where it keeps any)."""
        ...

    def create_unowned(self, provider: Provider, name: str) -> None:
        """Make a server directly on the backend, not through the reconciler (no ownership marks)."""
        ...

    def make_many(self, provider: Provider, requests: Sequence[CreateRequest]) -> None:
        """Create these owned servers by the fastest path the backend offers (for pagination)."""
        ...

    def engine_environment(self, tmp_path: Path) -> dict[str, str]:
        """Environment variables the engine's own providers (made from the Provider YAML) need."""
        ...

    def inject_transient(self, provider: Provider, count: int) -> None:
        """Make the next ``count`` API calls of ``provider`` fail transiently (throttling, timeouts)."""
        ...

    def inject_permanent(self, provider: Provider) -> None:
        """Make the next API call of ``provider`` fail permanently (quota, refused)."""
        ...

    def close(self) -> None:
        """Release what the backend holds (servers, daemons); called once, after its last test."""
        ...


@dataclass
class BaseBackend:
    """Defaults for a ``Backend``: override the fields and the methods your backend supports."""

    name: str
    skip_reason: str | None = None
    image: str = "image-1"
    small: Shape = field(default_factory=lambda: Shape(Size(cpus=1, memory_mb=1024, disk_gb=10)))
    large: Shape = field(default_factory=lambda: Shape(Size(cpus=2, memory_mb=2048, disk_gb=10)))
    page_size: int = 1000
    listing_operation: str = "list_servers"
    observe_overhead_calls: int = 0
    observe_calls_per_server: int = 0
    describe_calls: int = 1
    pagination_skip: str | None = None
    supports_snapshots: bool = True
    supports_start_stop: bool = True
    restore_methods: tuple[BackupMethod, ...] = (BackupMethod.SNAPSHOT, BackupMethod.IMAGE)
    kill_skip: str | None = None

    def make_provider(self, tmp_path: Path) -> Provider:
        raise NotImplementedError(f"backend {self.name} must implement make_provider")

    def create_unowned(self, provider: Provider, name: str) -> None:
        pytest.skip(f"backend {self.name} cannot create servers behind the reconciler's back")

    def make_many(self, provider: Provider, requests: Sequence[CreateRequest]) -> None:
        for request in requests:
            provider.create(request)

    def engine_environment(self, tmp_path: Path) -> dict[str, str]:
        return {}

    def inject_transient(self, provider: Provider, count: int) -> None:
        pytest.skip(f"backend {self.name} cannot inject transient faults")

    def inject_permanent(self, provider: Provider) -> None:
        pytest.skip(f"backend {self.name} cannot inject permanent faults")

    def close(self) -> None:
        return None
