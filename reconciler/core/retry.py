"""core.retry: exponential backoff with full jitter for TransientError, shared by engine and providers.

Only ``TransientError`` is retried; ``PermanentError`` and everything else propagate at once.
The sleep function and random source are injectable so tests run instantly and
deterministically.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from reconciler.core.errors import TransientError

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to retry a transient cloud error: capped exponential backoff with jitter."""

    attempts: int = 6  # total tries, including the first
    base_delay: float = 0.2  # seconds before the first retry
    max_delay: float = 10.0
    sleep: Callable[[float], None] = field(default=time.sleep, compare=False)
    rng: random.Random = field(default_factory=random.Random, compare=False)

    def delay(self, attempt: int) -> float:
        """Full-jitter delay before retry number ``attempt`` (1-based)."""
        ceiling = min(self.max_delay, self.base_delay * (2 ** (attempt - 1)))
        return self.rng.uniform(0, ceiling)


def call_with_retry(
    fn: Callable[[], T],
    policy: RetryPolicy,
    *,
    on_retry: Callable[[int, TransientError, float], None] | None = None,
) -> T:
    """Call ``fn``; on TransientError wait and try again, up to ``policy.attempts`` tries."""
    attempt = 1
    while True:
        try:
            return fn()
        except TransientError as exc:
            if attempt >= policy.attempts:
                raise
            wait = policy.delay(attempt)
            if on_retry is not None:
                on_retry(attempt, exc, wait)
            policy.sleep(wait)
            attempt += 1
