"""Conformance: a provider sees only what its owner made — never hand-made servers, never another owner's."""

from __future__ import annotations

from reconciler.core.provider import Provider
from tests.conformance.backend import Backend
from tests.conformance.helpers import make_request, observe_sorted


def test_unowned_server_is_never_observed(backend: Backend, provider: Provider, owner: str) -> None:
    backend.create_unowned(provider, "handmade-0")
    request = make_request(backend, owner, "web/front/0")
    assert provider.observe(owner) == []
    assert provider.lookup(owner, request.token) is None

    ours = provider.create(request)
    backend.create_unowned(provider, "handmade-1")
    assert [s.resource_id for s in provider.observe(owner)] == [ours.resource_id]
    found = provider.lookup(owner, request.token)
    assert found is not None and found.resource_id == ours.resource_id


def test_another_owners_servers_are_invisible(backend: Backend, provider: Provider, owner: str) -> None:
    other = owner + "-neighbour"
    mine = provider.create(make_request(backend, owner, "web/front/0"))
    theirs_request = make_request(backend, other, "web/back/0")
    theirs = provider.create(theirs_request)

    assert [s.resource_id for s in provider.observe(owner)] == [mine.resource_id]
    assert [s.resource_id for s in provider.observe(other)] == [theirs.resource_id]
    assert provider.lookup(owner, theirs_request.token) is None
    provider.delete(theirs)
    assert provider.observe(other) == []
    assert [s.resource_id for s in observe_sorted(provider, owner)] == [mine.resource_id]
