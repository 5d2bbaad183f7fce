"""Conformance: the guard marks (protect, backup policy) live on the server, like the ownership marks.

Written at create, rewritten by every update exactly as the ``UpdateRequest`` says (set,
changed, removed), reported by ``observe`` and ``lookup``, never shown as user tags, and
never disturbing the ownership marks or the user tags around them.
"""

from __future__ import annotations

import dataclasses

import pytest

from reconciler.core.model import ObservedServer, SnapshotRequest
from reconciler.core.provider import Provider
from tests.conformance.backend import Backend
from tests.conformance.helpers import TAGS, make_request, update_request


def _only(provider: Provider, owner: str) -> ObservedServer:
    [server] = provider.observe(owner)
    return server


def test_marks_written_at_create_are_observed(backend: Backend, provider: Provider, owner: str) -> None:
    request = dataclasses.replace(
        make_request(backend, owner, "vault/db/0"), protect=True, backup_policy="nightly"
    )
    created = provider.create(request)
    for seen in (created, _only(provider, owner), provider.lookup(owner, request.token)):
        assert seen is not None
        assert (seen.protected, seen.backup_policy) == (True, "nightly")
        assert seen.tags == tuple(sorted(TAGS))  # the marks are not user tags
        assert (seen.key, seen.owner, seen.token) == ("vault/db/0", owner, request.token)


def test_a_server_without_marks_is_unguarded(backend: Backend, provider: Provider, owner: str) -> None:
    provider.create(make_request(backend, owner, "web/front/0"))
    seen = _only(provider, owner)
    assert (seen.protected, seen.backup_policy) == (False, "")


def test_update_sets_changes_and_removes_marks(backend: Backend, provider: Provider, owner: str) -> None:
    request = make_request(backend, owner, "vault/db/0")
    server = provider.create(request)
    plain = update_request(backend.small)
    steps = [
        dataclasses.replace(plain, protect=True, backup_policy="nightly"),
        dataclasses.replace(plain, protect=True, backup_policy="hourly"),
        dataclasses.replace(plain, protect=False, backup_policy="hourly"),
        plain,  # neither mark: both removed
    ]
    for step in steps:
        server = provider.update(server, step)
        seen = _only(provider, owner)
        assert (server.protected, server.backup_policy) == (step.protect, step.backup_policy)
        assert (seen.protected, seen.backup_policy) == (step.protect, step.backup_policy)
        assert seen.tags == tuple(sorted(TAGS))
        assert (seen.key, seen.spec_hash, seen.token, seen.generation) == (
            request.key, request.spec_hash, request.token, request.generation
        )
    found = provider.lookup(owner, request.token)
    assert found is not None and (found.protected, found.backup_policy) == (False, "")


def test_changing_user_tags_keeps_the_marks(backend: Backend, provider: Provider, owner: str) -> None:
    request = dataclasses.replace(
        make_request(backend, owner, "vault/db/0"), protect=True, backup_policy="nightly"
    )
    server = provider.create(request)
    retagged = dataclasses.replace(
        update_request(backend.small, tags=(("team", "data"),)), protect=True, backup_policy="nightly"
    )
    provider.update(server, retagged)
    seen = _only(provider, owner)
    assert seen.tags == (("team", "data"),)
    assert (seen.protected, seen.backup_policy) == (True, "nightly")


@pytest.mark.parametrize(("protect", "policy"), [(True, "nightly"), (False, "weekly"), (False, "")])
def test_a_restore_carries_the_marks_it_is_asked_for(
    backend: Backend, provider: Provider, owner: str, protect: bool, policy: str
) -> None:
    """A server restored from a backup of a guarded server carries the marks of its own
    request, never those the backed-up server had."""
    if not (provider.capabilities.snapshots and backend.supports_snapshots):
        pytest.skip(f"{backend.name} does not take snapshots")
    method = backend.restore_methods[0] if backend.restore_methods else None
    if method is None:
        pytest.skip(f"{backend.name} restores no backup")
    source = provider.create(dataclasses.replace(
        make_request(backend, owner, "vault/db/0"), protect=True, backup_policy="hourly"
    ))
    ask = SnapshotRequest(name="vault-db-0-hourly-1", policy="hourly", method=method)
    snap = provider.snapshot(source, ask)
    provider.delete(source)
    request = dataclasses.replace(
        make_request(backend, owner, "vault/db/0", generation=1, spec="spec-restored"),
        protect=protect, backup_policy=policy,
    )
    restored = provider.create_from_snapshot(request, snap)
    for seen in (restored, _only(provider, owner), provider.lookup(owner, request.token)):
        assert seen is not None
        assert (seen.protected, seen.backup_policy) == (protect, policy)
        assert seen.tags == tuple(sorted(TAGS))
    provider.delete(restored)
    provider.delete_snapshot(snap)
