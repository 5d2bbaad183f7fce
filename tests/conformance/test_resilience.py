"""Conformance: listing cost (pagination) and the error contract (transient is retried, permanent not)."""

from __future__ import annotations

import math

import pytest

from reconciler.core.errors import PermanentError, TransientError
from reconciler.core.provider import Provider
from reconciler.core.retry import call_with_retry
from tests.conformance.backend import Backend
from tests.conformance.helpers import RetryLog, make_request, no_sleep_policy


def test_observe_pages_through_many_servers(backend: Backend, provider: Provider, owner: str) -> None:
    if backend.pagination_skip:
        pytest.skip(backend.pagination_skip)
    count = 2 * backend.page_size + 1
    requests = [make_request(backend, owner, f"big/node/{i}") for i in range(count)]
    backend.make_many(provider, requests)
    provider.calls.clear()

    seen = provider.observe(owner)

    assert sorted(s.key for s in seen) == sorted(r.key for r in requests)
    assert len({s.resource_id for s in seen}) == count
    pages = math.ceil(count / backend.page_size)
    assert provider.calls[backend.listing_operation] == pages
    per_server = count * backend.observe_calls_per_server
    assert provider.total_calls == pages + backend.observe_overhead_calls + per_server


def test_create_retried_through_transient_errors(backend: Backend, provider: Provider, owner: str) -> None:
    request = make_request(backend, owner, "web/front/0")
    backend.inject_transient(provider, 2)
    log = RetryLog()

    server = call_with_retry(lambda: provider.create(request), no_sleep_policy(), on_retry=log.record)

    # call_with_retry retries only TransientError: anything else would have escaped above
    assert len(log.errors) == 2
    assert all(str(error) for error in log.errors)
    assert [s.resource_id for s in provider.observe(owner)] == [server.resource_id]  # no duplicate


def test_observe_raises_transient_error_then_recovers(
    backend: Backend, provider: Provider, owner: str
) -> None:
    created = provider.create(make_request(backend, owner, "web/front/0"))
    backend.inject_transient(provider, 1)
    with pytest.raises(TransientError):
        provider.observe(owner)
    assert [s.resource_id for s in provider.observe(owner)] == [created.resource_id]


def test_permanent_error_is_reported_not_retried(backend: Backend, provider: Provider, owner: str) -> None:
    request = make_request(backend, owner, "web/front/0")
    backend.inject_permanent(provider)
    log = RetryLog()
    attempts = 0

    def create() -> object:
        nonlocal attempts
        attempts += 1
        return provider.create(request)

    with pytest.raises(PermanentError) as caught:
        call_with_retry(create, no_sleep_policy(), on_retry=log.record)

    assert not isinstance(caught.value, TransientError)
    assert str(caught.value).strip()  # a message the audit log and the user can read
    assert attempts == 1 and log.errors == []
    assert provider.lookup(owner, request.token) is None
    assert provider.observe(owner) == []
