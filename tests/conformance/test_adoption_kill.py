"""Conformance: a kill -9 in the middle of an adoption converges, on every backend a second
process can reach.

A forked process plans and applies the adoption of a server made by hand through the whole
engine (the workspace, its ledger, the provider made from the Provider YAML) and is killed
with SIGKILL right before the provider's ``adopt`` call (the intent is written, nothing
else) or right after it (the marks are on the server, no outcome is written). The next apply,
in this process, settles what was left open — abandoned before the call, found done by the
adoption's token after it — and converges: the same server, adopted once, under its key; a
plan afterwards is empty; every intent in the ledger has its outcome.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

import pytest

from reconciler.core.clock import Clock
from reconciler.core.model import ServerStatus
from reconciler.core.provider import AdoptRequest, Provider
from reconciler.core.records import Outcome
from reconciler.run.apply import apply_plan
from reconciler.run.audit import new_run
from reconciler.run.planning import plan_path
from reconciler.run.workspace import Workspace
from tests.conformance.backend import FIXED_NOW, Backend
from tests.conformance.test_adoption import _folder, _hand_made

KILLED_EXIT = 3  # the child's exit status when it was not killed (it must always be)


def _workspace(tmp_path: Path) -> Workspace:
    return Workspace(state_dir=tmp_path, clock=Clock(fixed=FIXED_NOW))


def _adopt_and_die(provider: Provider, folder: Path, owner: str, tmp_path: Path, moment: str) -> None:
    """In a forked child: apply the adoption, killed by SIGKILL before or after the provider call."""
    cls: Any = type(provider)
    original = cls.adopt

    def adopt(self: Provider, server: Any, request: AdoptRequest) -> Any:
        if moment == "before":
            os.kill(os.getpid(), signal.SIGKILL)
        adopted = original(self, server, request)
        os.kill(os.getpid(), signal.SIGKILL)
        return adopted

    cls.adopt = adopt  # in the child only: the fork has its own copy of the class
    ws = _workspace(tmp_path)
    apply_plan(plan_path(folder, ws, deployment=owner), ws, new_run("conformance", None))


@pytest.mark.parametrize("moment", ["before", "after"])
def test_a_kill_during_adoption_converges(backend: Backend, provider: Provider, owner: str, tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch, moment: str) -> None:
    if type(provider).describe is Provider.describe:
        pytest.skip(f"provider type {provider.type_name} does not take over servers yet")
    if backend.kill_skip:
        pytest.skip(backend.kill_skip)
    for name, value in backend.engine_environment(tmp_path).items():
        monkeypatch.setenv(name, value)
    server = _hand_made(backend, provider, f"{owner}-web-a")
    [described] = provider.describe([server.resource_id])
    folder = _folder(tmp_path, provider, [described])

    child = os.fork()
    if child == 0:  # pragma: no cover - runs in the forked process, which never returns
        try:
            _adopt_and_die(provider, folder, owner, tmp_path, moment)
        finally:
            os._exit(KILLED_EXIT)
    _, status = os.waitpid(child, 0)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL, status

    left = provider.observe(owner)
    assert [s.resource_id for s in left] == ([] if moment == "before" else [server.resource_id])

    ws = _workspace(tmp_path)
    try:
        report = apply_plan(plan_path(folder, ws, deployment=owner), ws, new_run("conformance", None))
        assert report.ok, report
        [recovered] = report.recovered  # the open intent, settled: abandoned, or done by its token
        assert ("abandoned" in recovered) is (moment == "before"), recovered
        [adopted] = provider.observe(owner)
        assert adopted.resource_id == server.resource_id and adopted.key.startswith("fleet/")
        assert adopted.status is ServerStatus.RUNNING and adopted.size == server.size
        assert server.resource_id in {s.resource_id for s in provider.describe([server.resource_id])}
        assert all(s.resource_id != server.resource_id for s in provider.list_unowned())
        assert plan_path(folder, ws, deployment=owner).changes == ()
        entries = list(ws.store().audit_log(deployment=owner))
        intents = {e.seq for e in entries if e.record.outcome is Outcome.INTENT}
        settled = {e.record.intent_seq for e in entries if e.record.intent_seq is not None}
        assert intents and intents <= settled
    finally:
        ws.close()
