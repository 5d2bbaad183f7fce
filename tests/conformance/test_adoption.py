"""Conformance: taking over a server that already runs, and letting it go.

generate → adopt → no-op plan → forget, on every backend: ``list_unowned`` reports the server
made by hand, ``generate`` writes YAML for it that loads, the plan made from it adopts it and
does nothing else, ``adopt`` writes the marks (and nothing else: same id, same size, still
running) and is idempotent, a plan afterwards is empty, and ``release`` lets it go (idempotent
too). A server another owner holds is never adopted; ``describe`` costs no more calls for two
ids than the listing of one page (plus what the provider reads per server).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from reconciler.config import load_desired_state
from reconciler.core.clock import Clock
from reconciler.core.errors import PermanentError
from reconciler.core.model import Action, ObservedServer
from reconciler.core.provider import AdoptRequest, Provider
from reconciler.core.targeting import parse_selectors
from reconciler.run.planning import make_plan
from tests.adopt.support import generated_folder
from tests.conformance.backend import FIXED_NOW, Backend
from tests.conformance.helpers import make_request


@pytest.fixture(autouse=True)
def _takes_over(provider: Provider) -> None:
    if type(provider).describe is Provider.describe:
        pytest.skip(f"provider type {provider.type_name} does not take over servers yet")


def _hand_made(backend: Backend, provider: Provider, name: str) -> ObservedServer:
    backend.create_unowned(provider, name)
    found = [s for s in provider.list_unowned() if s.name == name]
    assert len(found) == 1, [s.name for s in provider.list_unowned()]
    server = found[0]
    assert (server.owner, server.key, server.spec_hash, server.token) == ("", "", "", "")
    return server


def _folder(tmp_path: Path, provider: Provider, servers: list[ObservedServer]) -> Path:
    return generated_folder(tmp_path / "fleet", provider, servers, "fleet")


def _request(change_after: object, change_token: str, owner: str) -> AdoptRequest:
    want = change_after
    assert want is not None
    return AdoptRequest(
        owner=owner, key=want.key, token=change_token, generation=0,  # type: ignore[attr-defined]
        spec_hash=want.spec_hash, cluster=want.cluster, member=want.member,  # type: ignore[attr-defined]
    )


def test_generate_adopt_no_op_plan_forget(backend: Backend, provider: Provider, owner: str,
                                          tmp_path: Path) -> None:
    server = _hand_made(backend, provider, f"{owner}-web-a")
    [described] = provider.describe([server.resource_id])
    assert described.resource_id == server.resource_id and described.owner == ""

    state = load_desired_state(_folder(tmp_path, provider, [described]), deployment=owner)
    assert [s.adopt_id for s in state.servers] == [server.resource_id]
    plan = make_plan(state, provider.observe(owner), {provider.name: provider}, clock=Clock(fixed=FIXED_NOW),
                     last_generation=lambda key: None, described=[described])
    [adopt] = plan.changes  # the YAML says what the server is: nothing but the adopt
    assert adopt.action is Action.ADOPT and adopt.token is not None

    request = _request(adopt.after, adopt.token, owner)
    adopted = provider.adopt(described, request)
    assert adopted.resource_id == server.resource_id
    assert (adopted.owner, adopted.key, adopted.token) == (owner, request.key, request.token)
    assert provider.adopt(described, request).resource_id == server.resource_id  # idempotent
    [seen] = provider.observe(owner)
    assert (seen.resource_id, seen.key) == (server.resource_id, request.key)
    assert seen.spec_hash == request.spec_hash
    assert (seen.size, seen.flavor, seen.image) == (server.size, server.flavor, server.image)
    assert seen.tags == server.tags
    found = provider.lookup(owner, request.token)
    assert found is not None and found.resource_id == server.resource_id

    after = make_plan(state, [seen], {provider.name: provider}, clock=Clock(fixed=FIXED_NOW),
                      last_generation=lambda key: None, targets=[str(parse_selectors(["fleet"])[0])])
    assert after.changes == () and any("can be removed" in d for d in after.diagnostics)

    provider.release(seen)
    assert provider.observe(owner) == []
    assert server.resource_id in {s.resource_id for s in provider.list_unowned()}
    provider.release(seen)  # released already: a no-op
    assert provider.observe(owner) == []


def test_a_server_another_owner_holds_is_never_adopted(backend: Backend, provider: Provider,
                                                       owner: str) -> None:
    theirs = provider.create(make_request(backend, owner + "-other", "web/front/0"))
    [described] = provider.describe([theirs.resource_id])
    assert described.owner == owner + "-other" and described.key == "web/front/0"
    request = AdoptRequest(owner=owner, key="web/front/0", token="t" * 32, generation=0, spec_hash="x")
    with pytest.raises(PermanentError):
        provider.adopt(described, request)
    assert provider.observe(owner) == []
    provider.release(dataclasses.replace(described, owner=owner))  # not ours: left alone
    assert [s.resource_id for s in provider.observe(owner + "-other")] == [theirs.resource_id]


def test_describe_is_cheap_and_skips_unknown_ids(backend: Backend, provider: Provider, owner: str) -> None:
    first = _hand_made(backend, provider, f"{owner}-a")
    second = _hand_made(backend, provider, f"{owner}-b")
    provider.calls.clear()
    found = provider.describe([first.resource_id, second.resource_id])
    assert {s.resource_id for s in found} == {first.resource_id, second.resource_id}
    assert provider.total_calls <= backend.describe_calls
    assert provider.describe([]) == []
    assert provider.describe(["no-such-server-0"]) == []
