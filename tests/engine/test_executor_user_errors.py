"""A UserError inside a change (a secret gone since the check, a full disk refusing the ledger write,
a damaged simcloud file) stops the walk and surfaces as itself — never as "internal error: …"."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from reconciler.core.changes import Change, ChangeCause
from reconciler.core.clock import Clock
from reconciler.core.errors import NoSpaceError, UserError
from reconciler.core.model import Action, ProviderConfig
from reconciler.core.plan import Plan
from reconciler.core.records import Outcome
from reconciler.run import executor as executor_module
from reconciler.run.audit import RunContext
from reconciler.run.executor import ChangeStatus, Executor
from reconciler.store.sqlite import SQLiteStore
from tests.conformance.backend_simcloud import SimCloudBackend
from tests.engine.factories import OWNER, desired

T0 = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)
SIM = ProviderConfig(name="sim", type="simcloud", max_parallel=1)


def _create(key: str) -> Change:
    return Change(
        id=f"create:{key}", action=Action.CREATE, key=key, provider="sim", cause=ChangeCause.NOT_PRESENT,
        reason="not present", after=desired(key), token=f"token-{key}".ljust(32, "x"), generation=0,
    )


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[Any, SQLiteStore]]:
    provider = SimCloudBackend(name="simcloud", provider_name="sim").make_provider(tmp_path)
    store = SQLiteStore(tmp_path / "state.db")
    yield provider, store
    store.close()
    provider.close()


def _executor(world: tuple[Any, SQLiteStore], *keys: str) -> Executor:
    provider, store = world
    changes = tuple(_create(key) for key in keys)
    plan = Plan(deployment=OWNER, created_at=T0, changes=changes, providers=(SIM,), basis=())
    return Executor(plan=plan, providers={"sim": provider}, store=store, clock=Clock(fixed=T0),
                    run=RunContext(run_id="r1", actor="test", commit=""))


def test_a_user_error_rendering_a_server_surfaces_as_itself(
    world: tuple[Any, SQLiteStore], monkeypatch: pytest.MonkeyPatch
) -> None:
    def render(*_args: Any) -> str:
        raise UserError("shop.yaml:12: secret env:DB_PASSWORD is not set; set it and apply again")

    monkeypatch.setattr(executor_module, "render_user_data", render)
    with pytest.raises(UserError) as caught:
        _executor(world, "shop/web/0").run_all()
    (message,) = [d.message for d in caught.value.diagnostics]
    assert message == "shop.yaml:12: secret env:DB_PASSWORD is not set; set it and apply again"
    assert "internal error" not in str(caught.value)
    assert world[0].observe(OWNER) == []  # nothing was made


def test_a_full_disk_writing_the_intent_surfaces_and_calls_no_cloud(
    world: tuple[Any, SQLiteStore], monkeypatch: pytest.MonkeyPatch
) -> None:
    provider, store = world

    def full(*_args: Any, **_kwargs: Any) -> Any:
        raise NoSpaceError(store.path)

    monkeypatch.setattr(store, "append", full)
    with pytest.raises(NoSpaceError, match="no space left writing .*state.db: free space and run again"):
        _executor(world, "shop/web/0").run_all()
    assert provider.observe(OWNER) == []  # no intent, so no call


def test_a_user_error_from_the_provider_leaves_the_intent_open_to_settle(
    world: tuple[Any, SQLiteStore], monkeypatch: pytest.MonkeyPatch
) -> None:
    provider, store = world

    def damaged(_request: Any) -> Any:
        raise UserError(f"{provider.path}: simcloud's file is damaged (file is not a database)")

    monkeypatch.setattr(provider, "create", damaged)
    with pytest.raises(UserError, match="simcloud's file is damaged"):
        _executor(world, "shop/web/0").run_all()
    (intent,) = store.unresolved_intents(OWNER)
    assert intent.record.key == "shop/web/0" and intent.record.outcome is Outcome.INTENT


def test_no_change_starts_after_a_user_error(
    world: tuple[Any, SQLiteStore], monkeypatch: pytest.MonkeyPatch
) -> None:
    provider, _store = world
    real = provider.create
    started: list[str] = []
    lock = threading.Lock()

    def create(request: Any) -> Any:
        with lock:
            started.append(request.key)
        if request.key == "shop/web/0":
            raise NoSpaceError(provider.path)
        return real(request)

    monkeypatch.setattr(provider, "create", create)
    monkeypatch.setattr(provider, "config", dataclasses.replace(provider.config, max_parallel=1))
    with pytest.raises(NoSpaceError):
        _executor(world, "shop/web/0", "shop/web/1", "shop/web/2").run_all()  # one at a time (max_parallel 1)
    assert started == ["shop/web/0"]


def test_a_bug_is_still_an_internal_error_result(
    world: tuple[Any, SQLiteStore], monkeypatch: pytest.MonkeyPatch
) -> None:
    provider, _store = world

    def broken(_request: Any) -> Any:
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(provider, "create", broken)
    results = _executor(world, "shop/web/0", "shop/web/1").run_all()
    assert [r.status for r in results] == [ChangeStatus.FAILED, ChangeStatus.FAILED]
    assert all(r.message.startswith("internal error: ZeroDivisionError") for r in results)
