"""``adopt:`` and ``allow_replace_on_adopt`` in a Cluster member: parsed into the desired model,
and every mistake a located error — a bad ordinal, an ordinal past the count, one id twice."""

from __future__ import annotations

import pytest

from reconciler.config import load_desired_state
from reconciler.core.errors import UserError
from tests.adopt.conftest import Write

CLUSTER = """\
apiVersion: reconciler/v1
kind: Cluster
metadata: {{name: shop}}
spec:
  provider: sim
  members:
    web:
      template: web
      count: 2
      adopt:
        {web}
    db:
      template: db
      count: 1
      allow_replace_on_adopt: true
      adopt: {{0: {db}}}
"""


def _errors(folder: Write, web: str, db: str = "sim-0000000c") -> list[str]:
    with pytest.raises(UserError) as refused:
        load_desired_state(folder(CLUSTER.format(web=web, db=db)))
    return [str(d) for d in refused.value.diagnostics]


def test_entries_reach_the_desired_servers(folder: Write) -> None:
    state = load_desired_state(folder(CLUSTER.format(web="0: sim-0000000a", db="sim-0000000c")))
    by_key = {s.key: s for s in state.servers}
    assert by_key["shop/web/0"].adopt_id == "sim-0000000a"
    assert by_key["shop/web/1"].adopt_id == ""
    assert by_key["shop/db/0"].adopt_id == "sim-0000000c" and by_key["shop/db/0"].allow_replace_on_adopt
    location = by_key["shop/web/0"].adopt_location
    assert location is not None and location.file.endswith("cluster.yaml") and location.line == 11


def test_an_ordinal_past_the_count(folder: Write) -> None:
    [error] = _errors(folder, "2: sim-0000000a")
    assert error.endswith(
        "cluster.yaml:11: spec.members.web.adopt names ordinal 2 but the member has 2 server(s) (count); "
        "raise count or remove the entry"
    )


def test_a_key_that_is_no_ordinal(folder: Write) -> None:
    [error] = _errors(folder, "first: sim-0000000a")
    assert "cluster.yaml:11:" in error and "is not an ordinal" in error


def test_a_value_that_is_no_resource_id(folder: Write) -> None:
    [error] = _errors(folder, '0: "two words"')
    assert "cluster.yaml:11:" in error and "is not a resource id" in error


def test_one_server_under_two_keys(folder: Write) -> None:
    [error] = _errors(folder, "0: sim-0000000a", db="sim-0000000a")
    assert error.endswith(
        "cluster.yaml:11: adopt: sim-0000000a is already adopted as shop/db/0 (at line 16); one server "
        "can be adopted under one key only — remove one of the entries"
    )
