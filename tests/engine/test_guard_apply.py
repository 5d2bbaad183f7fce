"""The protect mark holds at apply time too, whatever the plan says: ``apply --plan`` re-checks
what it observes, and the executor never deletes or replaces a server carrying the mark."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from pathlib import Path

import pytest

from reconciler.core.changes import Change, ChangeCause
from reconciler.core.clock import Clock
from reconciler.core.errors import UserError
from reconciler.core.model import Action, ObservedServer, ProviderConfig
from reconciler.core.plan import Plan
from reconciler.run.apply import check_against_observed
from reconciler.run.audit import RunContext
from reconciler.run.executor import ChangeStatus, Executor
from reconciler.store.sqlite import SQLiteStore
from tests.conformance.backend_simcloud import SimCloudBackend
from tests.conformance.helpers import make_request
from tests.engine.factories import OWNER, desired, observed

T0 = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)
SIM = ProviderConfig(name="sim", type="simcloud")


def _plan(change: Change, basis: tuple[ObservedServer, ...]) -> Plan:
    return Plan(deployment=OWNER, created_at=T0, changes=(change,), providers=(SIM,), basis=basis)


def _delete(server: ObservedServer) -> Change:
    return Change(
        id=f"delete:{server.key}", action=Action.DELETE, key=server.key, provider=server.provider,
        cause=ChangeCause.NO_LONGER_DECLARED, reason="edited plan", before=server,
    )


def _replace(server: ObservedServer) -> Change:
    want = desired(server.key, image="debian-13")
    return Change(
        id=f"replace:{server.key}", action=Action.REPLACE, key=server.key, provider=server.provider,
        cause=ChangeCause.SPEC_CHANGED, reason="edited plan", before=server, after=want,
        token="t" * 32, generation=1,
    )


@pytest.mark.parametrize("make", [_delete, _replace], ids=["delete", "replace"])
def test_apply_plan_refuses_a_server_protected_now(make: object) -> None:
    now = observed(desired("shop/db/0"), protected=True)
    claimed = dataclasses.replace(now, protected=False)  # what an old or edited plan says
    change = make(claimed)  # type: ignore[operator]
    with pytest.raises(UserError, match="carry the protect mark.*nothing was applied"):
        check_against_observed(_plan(change, (claimed,)), [now])
    check_against_observed(_plan(change, (claimed,)), [claimed])  # unprotected: passes


@pytest.mark.parametrize("make", [_delete, _replace], ids=["delete", "replace"])
def test_the_executor_never_deletes_or_replaces_a_marked_server(tmp_path: Path, make: object) -> None:
    backend = SimCloudBackend(name="simcloud", provider_name="sim")
    provider = backend.make_provider(tmp_path)
    server = provider.create(dataclasses.replace(make_request(backend, OWNER, "shop/db/0"), protect=True))
    store = SQLiteStore(tmp_path / "state.db")
    try:
        change = make(server)  # type: ignore[operator]
        executor = Executor(
            plan=_plan(change, (server,)),
            providers={"sim": provider},
            store=store,
            clock=Clock(fixed=T0),
            run=RunContext(run_id="r1", actor="test", commit=""),
        )
        (result,) = executor.run_all()
        assert result.status is ChangeStatus.FAILED and result.permanent
        assert "carries the protect mark" in result.message
        # nothing was made, nothing was lost
        assert [s.resource_id for s in provider.observe(OWNER)] == [server.resource_id]
    finally:
        store.close()
        provider.close()
