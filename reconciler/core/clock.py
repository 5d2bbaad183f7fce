"""core.clock: the one source of "now" for ledgers, usage, schedules and the simulated cloud.

``--now ISO8601`` (or ``RECONCILER_NOW``) fixes the time for a whole invocation so that
tests and reports are deterministic. Everything that reads the time asks a ``Clock``.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from reconciler.core.errors import UserError


def parse_timestamp(text: str, *, what: str = "timestamp") -> datetime:
    """Parse an ISO 8601 timestamp (a date alone means midnight UTC); naive means UTC."""
    try:
        value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise UserError(
            f"{what} {text!r} is not an ISO 8601 time; write it like 2026-11-01T00:00:00Z"
        ) from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def isoformat(moment: datetime) -> str:
    """Render a UTC timestamp the way every ledger and plan stores it."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


@dataclass
class Clock:
    """Wall clock, or a fixed instant when ``fixed`` is set."""

    fixed: datetime | None = None

    def now(self) -> datetime:
        if self.fixed is not None:
            return self.fixed
        return datetime.now(UTC)

    def wall(self) -> datetime:
        """The real time even under ``--now``: for leases, which other processes judge by it."""
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return time.monotonic()

    @classmethod
    def from_env(cls, override: str | None = None) -> Clock:
        text = override if override is not None else os.environ.get("RECONCILER_NOW")
        if text:
            return cls(fixed=parse_timestamp(text, what="--now"))
        return cls()
