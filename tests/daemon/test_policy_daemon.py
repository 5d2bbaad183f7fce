"""Policy in the daemon, in this process on a fixed clock: a commit a deny Policy refuses is rejected
like an invalid one (audited, alerted as policy-denied, the last good commit kept converged) —
whether its desired state alone breaks the policy or its first plan does; the good commit's plan
denied later is refused once; change windows hold applies, heals pass when the window allows."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from providers.simcloud.admin import admin_list
from reconciler.core.audit_detail import PolicyDenied, decode_detail
from reconciler.core.clock import Clock
from reconciler.core.records import AuditAction, AuditEntry
from reconciler.daemon.context import CycleOutcome, CycleReport, DaemonOptions
from reconciler.daemon.loop import Daemon
from reconciler.run.workspace import Workspace
from tests.daemon.conftest import GitRepo, cluster
from tests.e2e.conftest import Cli

MONDAY = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)
SATURDAY = datetime(2026, 11, 7, 10, 0, tzinfo=UTC)  # inside the window (Friday 18:00 to Monday 08:00)
NEXT_MONDAY = datetime(2026, 11, 9, 10, 0, tzinfo=UTC)
NEXT_SATURDAY = datetime(2026, 11, 14, 10, 0, tzinfo=UTC)
LAST_MONDAY = datetime(2026, 11, 16, 10, 0, tzinfo=UTC)


def policy(body: str, name: str = "limits") -> str:
    head = f"apiVersion: reconciler/v1\nkind: Policy\nmetadata: {{name: {name}}}\n"
    return f"{head}spec:\n  scope: shop\n{body}"


QUOTA = policy("  quotas: {servers: 3}\n")  # line 6
NO_DELETES = policy(
    "  rules:\n"
    "    - {name: no-deletes, expr: \"change.action != 'delete'\", message: servers are never deleted}\n"
)
NO_FAILOVER = policy(
    "  rules:\n"
    "    - {name: hands-off, expr: \"change.cause != 'failed'\", message: failed servers wait for a person}\n"
)
WEEKEND = policy('  windows:\n    - {deny: "0 18 * * 5", duration_hours: 62, message: no weekend changes}\n')


class Loop:
    def __init__(self, repo: GitRepo, state_dir: Path) -> None:
        self.ws = Workspace(state_dir=state_dir, clock=Clock(fixed=MONDAY))
        self.daemon = Daemon(DaemonOptions(source=str(repo.path), path="clusters", once=True), self.ws)

    def cycle(self, at: datetime = MONDAY) -> CycleReport:
        self.ws.clock.fixed = at
        return self.daemon.cycle(self.daemon._fetch())

    def web(self) -> dict[str, dict[str, object]]:
        return {s["key"]: s for s in admin_list(self.ws.state_dir) if s["key"].startswith("shop/web/")}

    def entries(self, action: AuditAction) -> list[AuditEntry]:
        return list(reversed(self.ws.store().recent_audit("clusters", [action], limit=1000)))

    def alerts(self) -> list[tuple[str, str]]:
        return [
            (json.loads(e.record.detail)["event"], json.loads(e.record.detail)["summary"])
            for e in self.entries(AuditAction.ALERT)
        ]

    def close(self) -> None:
        self.daemon.finish(clean=True)
        self.ws.close()


@pytest.fixture
def loop(repo: GitRepo, state_dir: Path) -> Iterator[Loop]:
    running = Loop(repo, state_dir)
    yield running
    running.close()


def test_a_commit_whose_desired_state_a_policy_denies_is_rejected(
    repo: GitRepo, loop: Loop, state_dir: Path
) -> None:
    good = repo.git("rev-parse", "HEAD")
    assert loop.cycle().outcome is CycleOutcome.CONVERGED and len(loop.web()) == 2
    bad = repo.commit({"limits.yaml": QUOTA, "shop.yaml": cluster(3)}, "a third web server, over quota")
    report = loop.cycle()
    assert report.outcome is CycleOutcome.CONVERGED and loop.daemon.good is not None
    assert loop.daemon.good.sha == good and len(loop.web()) == 2  # the last good state, kept converged
    (rejected,) = loop.entries(AuditAction.REJECTED)
    detail = decode_detail(rejected.record)
    assert isinstance(detail, PolicyDenied) and detail.kept == good and rejected.record.commit == bad
    assert detail.violations == (
        "clusters/limits.yaml:6: policy limits, rule quotas.servers: the desired state asks for 4 servers in "
        "cluster shop, over the quota of 3 — shop/db/0, shop/web/0, shop/web/1, shop/web/2",
    )
    ((event, summary),) = loop.alerts()
    assert event == "policy-denied"
    author = "Ada Lovelace <ada@example.com>"
    assert summary.startswith(f"commit {bad[:12]} by {author} is denied by policy: clusters/limits.yaml:6:")
    assert summary.endswith(f"; still reconciling {good[:12]}")
    loop.close()
    again = Loop(repo, state_dir)  # a restart onto the denied tip: not recorded twice, the good one resumed
    try:
        assert again.cycle().outcome is CycleOutcome.CONVERGED
        assert again.daemon.good is not None and again.daemon.good.sha == good
        assert len(again.entries(AuditAction.REJECTED)) == 1
    finally:
        again.close()
    loop.daemon.good = None  # already finished above


def test_a_commit_whose_first_plan_a_policy_denies_is_rejected_and_the_last_good_kept(
    repo: GitRepo, loop: Loop
) -> None:
    good = repo.git("rev-parse", "HEAD")
    assert loop.cycle().outcome is CycleOutcome.CONVERGED
    bad = repo.commit({"limits.yaml": NO_DELETES, "shop.yaml": cluster(1)}, "one web server is enough")
    report = loop.cycle()  # the plan would delete shop/web/1: denied; the last good commit is reconciled
    assert report.outcome is CycleOutcome.CONVERGED
    assert loop.daemon.good is not None and loop.daemon.good.sha == good
    assert sorted(loop.web()) == ["shop/web/0", "shop/web/1"]
    (rejected,) = loop.entries(AuditAction.REJECTED)
    detail = decode_detail(rejected.record)
    assert isinstance(detail, PolicyDenied) and rejected.record.commit == bad and detail.kept == good
    assert detail.violations == (
        "clusters/limits.yaml:7: policy limits, rule no-deletes: servers are never deleted — shop/web/1",
    )
    assert [event for event, _ in loop.alerts()] == ["policy-denied"]
    assert loop.cycle().outcome is CycleOutcome.CONVERGED  # and it stays that way
    fixed = repo.commit({"limits.yaml": "# no policy\n", "shop.yaml": cluster(1)}, "drop the policy")
    assert loop.cycle().outcome is CycleOutcome.CONVERGED
    assert loop.daemon.good is not None and loop.daemon.good.sha == fixed
    assert sorted(loop.web()) == ["shop/web/0"]


def test_the_good_commits_plan_denied_later_is_refused_once(repo: GitRepo, loop: Loop, cli: Cli) -> None:
    repo.commit({"limits.yaml": NO_FAILOVER}, "failed servers wait for a person")
    assert loop.cycle().outcome is CycleOutcome.CONVERGED
    assert cli("simcloud", "fail", "shop/web/0").code == 0
    for _ in range(2):
        report = loop.cycle()
        assert report.outcome is CycleOutcome.DENIED
        assert report.message == (
            f"{loop.daemon.source.checkout(loop.daemon.good)}/limits.yaml:7: policy limits, rule hands-off: "  # type: ignore[arg-type]
            "failed servers wait for a person — shop/web/0"
        )
    assert loop.web()["shop/web/0"]["status"] == "error"  # nothing applied
    (refused,) = loop.entries(AuditAction.REJECTED)
    assert refused.record.error == (
        "clusters/limits.yaml:7: policy limits, rule hands-off: failed servers wait for a person — shop/web/0"
    )
    assert [event for event, _ in loop.alerts()] == ["policy-denied"]


def test_a_window_holds_applies_and_lets_heals_through(repo: GitRepo, loop: Loop, cli: Cli) -> None:
    repo.commit({"weekend.yaml": WEEKEND}, "no weekend changes")
    assert loop.cycle(SATURDAY).outcome is CycleOutcome.PROGRESSING  # the first servers wait for Monday
    assert loop.web() == {}
    assert loop.cycle(NEXT_MONDAY).outcome is CycleOutcome.CONVERGED and len(loop.web()) == 2
    repo.commit({"shop.yaml": cluster(3)}, "a third web server")
    held = loop.cycle(NEXT_SATURDAY)
    assert (held.outcome, held.applied, held.held) == (CycleOutcome.PROGRESSING, 0, 1)
    assert sorted(loop.web()) == ["shop/web/0", "shop/web/1"]
    before = loop.web()["shop/web/0"]["resource_id"]
    assert cli("simcloud", "fail", "shop/web/0").code == 0
    healed = loop.cycle(NEXT_SATURDAY)  # the failed server is replaced inside the window; the create waits
    assert (healed.outcome, healed.applied, healed.held) == (CycleOutcome.PROGRESSING, 1, 1)
    assert loop.web()["shop/web/0"]["resource_id"] != before and "shop/web/2" not in loop.web()
    assert loop.cycle(LAST_MONDAY).outcome is CycleOutcome.CONVERGED and len(loop.web()) == 3


def test_a_window_without_allow_heal_holds_heals_too(repo: GitRepo, loop: Loop, cli: Cli) -> None:
    strict = WEEKEND.replace("changes}", "changes, allow_heal: false}")
    repo.commit({"weekend.yaml": strict}, "no weekend changes, not even heals")
    assert loop.cycle(MONDAY).outcome is CycleOutcome.CONVERGED
    assert cli("simcloud", "fail", "shop/web/0").code == 0
    held = loop.cycle(SATURDAY)
    assert (held.outcome, held.applied, held.held) == (CycleOutcome.PROGRESSING, 0, 1)
    assert loop.web()["shop/web/0"]["status"] == "error"
    assert loop.cycle(NEXT_MONDAY).outcome is CycleOutcome.CONVERGED
    assert loop.web()["shop/web/0"]["status"] == "running"
