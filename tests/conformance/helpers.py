"""Helpers shared by the conformance tests: requests built the way the engine builds them."""

from __future__ import annotations

import hashlib

from reconciler.core.errors import TransientError
from reconciler.core.model import CreateRequest, ObservedServer, UpdateRequest, idempotency_token, server_name
from reconciler.core.provider import Provider
from reconciler.core.retry import RetryPolicy
from tests.conformance.backend import Backend, Shape

USER_DATA = "#!/bin/sh\necho conformance-user-data-marker > /etc/motd\n"
TAGS = (("env", "conformance"), ("team", "red"))


def spec_hash(label: str) -> str:
    """A spec hash shaped like ``compute_spec_hash``'s (16 hex digits)."""
    return hashlib.sha256(label.encode()).hexdigest()[:16]


def make_request(
    backend: Backend,
    owner: str,
    key: str,
    *,
    generation: int = 0,
    spec: str = "spec-a",
    shape: Shape | None = None,
    tags: tuple[tuple[str, str], ...] = TAGS,
) -> CreateRequest:
    """The CreateRequest the engine would send for ``key`` at ``generation``."""
    cluster, member, _ordinal = key.split("/")
    chosen = shape or backend.small
    digest = spec_hash(spec)
    return CreateRequest(
        owner=owner,
        key=key,
        name=server_name(key, generation),
        token=idempotency_token(owner, key, digest, generation),
        generation=generation,
        spec_hash=digest,
        image=backend.image,
        size=chosen.size,
        flavor=chosen.flavor,
        user_data=USER_DATA,
        tags=tags,
        cluster=cluster,
        member=member,
    )


def update_request(shape: Shape, tags: tuple[tuple[str, str], ...] = TAGS) -> UpdateRequest:
    return UpdateRequest(size=shape.size, flavor=shape.flavor, tags=tags, allow_restart=True)


def observe_sorted(provider: Provider, owner: str) -> list[ObservedServer]:
    """Observed servers in a stable order (providers may list in any order)."""
    return sorted(provider.observe(owner), key=lambda s: (s.key, s.generation, s.resource_id))


def no_sleep_policy(attempts: int = 5) -> RetryPolicy:
    """A retry policy that never sleeps, so retry tests run instantly."""
    return RetryPolicy(attempts=attempts, base_delay=0.0, max_delay=0.0, sleep=lambda _seconds: None)


class RetryLog:
    """Records every retry ``call_with_retry`` makes (pass ``log.record`` as ``on_retry``)."""

    def __init__(self) -> None:
        self.errors: list[TransientError] = []

    def record(self, attempt: int, error: TransientError, wait: float) -> None:
        self.errors.append(error)
