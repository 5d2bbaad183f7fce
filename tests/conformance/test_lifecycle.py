"""Conformance: a server's life through the contract — create, observe, no-op, update, replace, delete."""

from __future__ import annotations

import dataclasses

import pytest

from reconciler.core.errors import PermanentError
from reconciler.core.model import ServerStatus, server_name
from reconciler.core.provider import Provider
from tests.conformance.backend import Backend
from tests.conformance.helpers import TAGS, USER_DATA, make_request, observe_sorted, update_request


def test_observe_empty_scope(backend: Backend, provider: Provider, owner: str) -> None:
    assert provider.observe(owner) == []
    assert provider.calls[backend.listing_operation] == 1
    assert provider.total_calls == 1 + backend.observe_overhead_calls


def test_create_then_observe(backend: Backend, provider: Provider, owner: str) -> None:
    request = make_request(backend, owner, "web/front/0")
    created = provider.create(request)

    [seen] = provider.observe(owner)
    for server in (created, seen):
        assert server.resource_id
        assert server.provider == provider.name
        assert server.owner == owner
        assert server.key == "web/front/0"
        assert server.name == server_name("web/front/0", 0)
        assert server.cluster == "web"
        assert server.status is ServerStatus.RUNNING
        assert server.size == backend.small.size
        assert server.flavor == backend.small.flavor
        assert server.image == backend.image
        assert server.spec_hash == request.spec_hash
        assert server.generation == 0
        assert server.token == request.token
        assert server.tags == tuple(sorted(TAGS))  # user tags only, sorted, without reconciler: marks
    assert seen.resource_id == created.resource_id
    assert seen.created_at is not None
    assert USER_DATA not in repr(seen)  # user data may hold secrets: never reported back


def test_observe_twice_is_a_no_op(backend: Backend, provider: Provider, owner: str) -> None:
    for ordinal in range(3):
        provider.create(make_request(backend, owner, f"app/api/{ordinal}"))
    first = observe_sorted(provider, owner)
    calls_before = provider.total_calls
    second = observe_sorted(provider, owner)
    assert first == second
    assert [s.key for s in first] == ["app/api/0", "app/api/1", "app/api/2"]
    per_server = 3 * backend.observe_calls_per_server
    assert provider.total_calls - calls_before == 1 + backend.observe_overhead_calls + per_server  # read-only


def test_lookup_finds_only_what_was_created(backend: Backend, provider: Provider, owner: str) -> None:
    request = make_request(backend, owner, "db/main/0")
    assert provider.lookup(owner, request.token) is None
    created = provider.create(request)
    found = provider.lookup(owner, request.token)
    assert found is not None
    assert (found.resource_id, found.key, found.token) == (created.resource_id, "db/main/0", request.token)


def test_create_is_idempotent_by_token(backend: Backend, provider: Provider, owner: str) -> None:
    """A create retried after a crash (same token) must not make a second server."""
    request = make_request(backend, owner, "db/main/0")
    first = provider.create(request)
    again = provider.create(request)
    assert again.resource_id == first.resource_id
    assert [s.resource_id for s in provider.observe(owner)] == [first.resource_id]
    found = provider.lookup(owner, request.token)
    assert found is not None and found.resource_id == first.resource_id


def test_resize_in_place(backend: Backend, provider: Provider, owner: str) -> None:
    if not provider.capabilities.resize_in_place:
        pytest.skip(f"{provider.type_name} resizes by replacement only")
    server = provider.create(make_request(backend, owner, "app/worker/0"))
    updated = provider.update(server, update_request(backend.large))
    [seen] = provider.observe(owner)
    for after in (updated, seen):
        assert after.resource_id == server.resource_id
        assert after.size == backend.large.size
        assert after.flavor == backend.large.flavor
        assert after.status is ServerStatus.RUNNING
        assert (after.key, after.token, after.spec_hash) == (server.key, server.token, server.spec_hash)


def test_update_tags_keeps_ownership(backend: Backend, provider: Provider, owner: str) -> None:
    if not provider.capabilities.update_tags:
        pytest.skip(f"{provider.type_name} cannot change tags in place")
    server = provider.create(make_request(backend, owner, "app/worker/0"))
    new_tags = (("team", "blue"), ("cost-centre", "42"))
    provider.update(server, update_request(backend.small, tags=new_tags))
    [seen] = provider.observe(owner)
    assert seen.tags == tuple(sorted(new_tags))
    assert (seen.resource_id, seen.owner, seen.key, seen.token) == (
        server.resource_id,
        owner,
        server.key,
        server.token,
    )
    found = provider.lookup(owner, server.token)
    assert found is not None and found.resource_id == server.resource_id


def test_replace_creates_new_generation_before_deleting_old(
    backend: Backend, provider: Provider, owner: str
) -> None:
    old = provider.create(make_request(backend, owner, "web/front/0", spec="spec-a"))
    new_request = make_request(backend, owner, "web/front/0", generation=1, spec="spec-b")
    new = provider.create(new_request)
    assert new.resource_id != old.resource_id
    assert new.name == server_name("web/front/0", 1)

    both = observe_sorted(provider, owner)
    assert [(s.key, s.generation, s.spec_hash) for s in both] == [
        ("web/front/0", 0, old.spec_hash),
        ("web/front/0", 1, new_request.spec_hash),
    ]
    provider.delete(old)
    [left] = provider.observe(owner)
    assert (left.resource_id, left.generation, left.token) == (new.resource_id, 1, new_request.token)


def test_delete_then_delete_again_is_a_no_op(backend: Backend, provider: Provider, owner: str) -> None:
    request = make_request(backend, owner, "web/front/0")
    keep = provider.create(make_request(backend, owner, "web/front/1"))
    server = provider.create(request)
    provider.delete(server)
    assert [s.resource_id for s in provider.observe(owner)] == [keep.resource_id]
    assert provider.lookup(owner, request.token) is None
    provider.delete(server)  # already gone: no error
    assert [s.resource_id for s in provider.observe(owner)] == [keep.resource_id]


def test_update_of_a_gone_server_is_a_permanent_error(
    backend: Backend, provider: Provider, owner: str
) -> None:
    server = provider.create(make_request(backend, owner, "web/front/0"))
    provider.delete(server)
    with pytest.raises(PermanentError) as caught:
        provider.update(server, update_request(backend.large))
    assert str(caught.value)


def test_refuses_to_change_a_server_it_does_not_own(backend: Backend, provider: Provider, owner: str) -> None:
    """Handed a server whose marks name another owner, the provider must refuse, not act by id."""
    server = provider.create(make_request(backend, owner, "web/front/0"))
    impostor = dataclasses.replace(server, owner=owner + "-other")
    with pytest.raises(PermanentError):
        provider.delete(impostor)
    with pytest.raises(PermanentError):
        provider.update(impostor, update_request(backend.large))
    [still] = provider.observe(owner)
    assert (still.resource_id, still.size) == (server.resource_id, backend.small.size)
