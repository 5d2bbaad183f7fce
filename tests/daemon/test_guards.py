"""What holds a change back in the daemon: per-key backoff, failover grace and hourly cap, leases,
and how a plan is cut down without breaking its dependencies. Drift modes, as diff applies them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from reconciler.core.graph import order_changes
from reconciler.core.model import DesiredServer, DriftMode, ObservedServer, ProviderConfig, ServerStatus
from reconciler.core.plan import Plan
from reconciler.core.records import AuditAction
from reconciler.daemon.backoff import KeyBackoff, restrict_plan
from reconciler.daemon.failover import FailoverGuard, Verdict, held, is_failover, record, record_sighting
from reconciler.run.audit import RunContext
from reconciler.store.base import Store
from reconciler.store.sqlite import SQLiteStore
from tests.engine.factories import OWNER, desired, observed, run_diff

T0 = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)


def _plan(want: list[DesiredServer], have: list[ObservedServer]) -> Plan:
    result = run_diff(want, have)
    return Plan(
        deployment=OWNER,
        created_at=T0,
        changes=order_changes(result.changes, want),
        providers=(
            ProviderConfig(name="sim", type="simcloud"),
            ProviderConfig(name="other", type="simcloud"),
        ),
        basis=tuple(have),
        noop_count=result.noop_count,
        diagnostics=result.diagnostics,
    )


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return SQLiteStore(tmp_path / "state.db")


def test_backoff_doubles_up_to_the_cap_and_clears_on_success() -> None:
    backoff = KeyBackoff(base_seconds=15, cap_seconds=600)
    delays = [backoff.failed("shop/web/0", 1000.0) for _ in range(8)]
    assert delays == [15, 30, 60, 120, 240, 480, 600, 600]
    assert backoff.waiting("shop/web/0", 1599.0) and not backoff.waiting("shop/web/0", 1600.0)
    assert not backoff.waiting("shop/web/1", 1000.0) and backoff.held(1000.0) == ["shop/web/0"]
    backoff.succeeded("shop/web/0")
    assert not backoff.waiting("shop/web/0", 1000.0) and backoff.failures("shop/web/0") == 0


def test_restrict_plan_drops_dependents_and_other_providers() -> None:
    db = desired("shop/db/0")
    app = desired("shop/app/0", depends_on=("shop/db/0",))
    web = desired("shop/web/0", depends_on=("shop/app/0",))
    cache = desired("shop/cache/0")
    elsewhere = desired("edge/proxy/0", provider="other")
    seen = [observed(elsewhere, cpus=8)]
    plan = _plan([db, app, web, cache, elsewhere], seen)
    assert {c.key: c.depends_on for c in plan.changes}["shop/web/0"] == ("create:shop/app/0",)

    kept, out = restrict_plan(plan, lambda c: c.key == "shop/db/0")
    assert [c.key for c in out] == ["shop/db/0", "shop/app/0", "shop/web/0"]  # in plan (dependency) order
    assert sorted(c.key for c in kept.changes) == ["edge/proxy/0", "shop/cache/0"]
    assert kept.basis == plan.basis and kept.providers == plan.providers

    kept, out = restrict_plan(plan, lambda c: False, providers={"sim"})
    assert [c.key for c in out] == ["edge/proxy/0"]
    assert [p.name for p in kept.providers] == ["sim"] and kept.basis == ()  # basis of "other" left out too


def test_failover_waits_for_grace_then_goes(store: Store) -> None:
    want = desired("shop/web/0", failover_grace_seconds=120, failover_max_per_hour=3)
    failed = observed(want, status=ServerStatus.ERROR)
    plan = _plan([want], [failed])
    (change,) = plan.changes
    assert is_failover(change) and change.action.value == "replace"
    guard = FailoverGuard()
    first = guard.review(plan, store, T0)
    assert [(f.verdict, f.mode) for f in first] == [(Verdict.GRACE, "replace")]
    assert "error for 0s of a 120s grace period" in first[0].reason
    assert held(first) == {change.id}
    assert guard.review(plan, store, T0 + timedelta(seconds=119))[0].verdict is Verdict.GRACE
    assert guard.review(plan, store, T0 + timedelta(seconds=120))[0].verdict is Verdict.GO
    # healed in between: a new failure starts a new grace period
    guard.review(_plan([want], [observed(want)]), store, T0 + timedelta(seconds=130))
    assert guard.review(plan, store, T0 + timedelta(seconds=140))[0].verdict is Verdict.GRACE


def test_failover_grace_survives_a_restart_through_the_ledger(store: Store) -> None:
    want = desired("shop/web/0", failover_grace_seconds=120)
    plan = _plan([want], [observed(want, status=ServerStatus.ERROR)])
    run = RunContext(run_id="r1", actor="daemon", commit="abc")
    (first,) = FailoverGuard().review(plan, store, T0)
    assert (first.verdict, first.first_seen) == (Verdict.GRACE, T0)  # a new sighting: to be recorded
    record_sighting(store, OWNER, run, first)
    (seen,) = store.recent_audit(OWNER, [AuditAction.FAILURE_SEEN])
    assert (seen.record.key, seen.record.resource_id, seen.at) == ("shop/web/0", "i-shop-web-0", T0)

    restarted = FailoverGuard()  # a new daemon process (or the replica that took the lease over)
    (later,) = restarted.review(plan, store, T0 + timedelta(seconds=100))
    assert later.verdict is Verdict.GRACE and later.first_seen is None  # continues; nothing new to record
    assert "error for 100s of a 120s grace period" in later.reason
    assert restarted.review(plan, store, T0 + timedelta(seconds=120))[0].verdict is Verdict.GO
    # a sighting older than the grace period is a past failure: a fresh guard starts a new grace
    (fresh,) = FailoverGuard().review(plan, store, T0 + timedelta(hours=2))
    assert (fresh.verdict, fresh.first_seen) == (Verdict.GRACE, T0 + timedelta(hours=2))


def test_failovers_per_member_are_capped_per_hour_from_the_ledger(store: Store) -> None:
    servers = [desired(f"shop/web/{i}", failover_max_per_hour=2) for i in range(3)]
    stopped = [observed(s, status=ServerStatus.STOPPED) for s in servers]
    plan = _plan(servers, stopped)
    assert all(is_failover(c) and c.action.value == "update" for c in plan.changes)
    run = RunContext(run_id="r1", actor="daemon", commit="abc")
    verdicts = FailoverGuard().review(plan, store, T0)
    assert [v.verdict for v in verdicts] == [Verdict.GO, Verdict.GO, Verdict.CAPPED]
    assert (
        verdicts[0].mode == "start"
        and "had 2 failovers in the last hour (max_per_hour: 2)" in verdicts[2].reason
    )
    for verdict in verdicts[:2]:
        record(store, OWNER, run, verdict, T0)
    (entry, _) = store.recent_audit(OWNER, [AuditAction.FAILOVER])
    assert entry.record.key == "shop/web/1" and entry.record.resource_id == "i-shop-web-1"
    # the ledger remembers across daemons: a fresh guard still sees the cap for an hour
    later = FailoverGuard().review(plan, store, T0 + timedelta(minutes=59))
    assert {v.verdict for v in later} == {Verdict.CAPPED}
    an_hour_later = FailoverGuard().review(plan, store, T0 + timedelta(minutes=61))
    assert [v.verdict for v in an_hour_later] == [Verdict.GO, Verdict.GO, Verdict.CAPPED]


def test_recent_audit_query_agrees_with_the_generic_walk(store: Store) -> None:
    run = RunContext(run_id="r", actor="a", commit="c")
    plan = _plan(
        [desired("shop/web/0", failover_max_per_hour=None)],
        [observed(desired("shop/web/0"), status=ServerStatus.ERROR)],
    )
    for minute in range(5):
        (verdict,) = FailoverGuard().review(plan, store, T0 + timedelta(minutes=minute))
        record(store, OWNER, run, verdict, T0 + timedelta(minutes=minute))
    args = (OWNER, [AuditAction.FAILOVER])
    since = T0 + timedelta(minutes=2)
    fast = store.recent_audit(*args, since=since, key="shop/web/0", limit=2)
    slow = Store.recent_audit(store, *args, since=since, key="shop/web/0", limit=2)
    assert [e.seq for e in fast] == [e.seq for e in slow] == [5, 4]
    assert store.recent_audit(OWNER, []) == [] and store.recent_audit("nobody", [AuditAction.FAILOVER]) == []


@pytest.mark.parametrize(
    ("mode", "changes", "note"),
    [(DriftMode.HEAL, 1, False), (DriftMode.WARN, 0, True), (DriftMode.IGNORE, 0, False)],
)
def test_drift_modes_as_diff_applies_them(mode: DriftMode, changes: int, note: bool) -> None:
    want = desired("shop/web/0", drift=mode)
    result = run_diff([want], [observed(want, cpus=8)])
    assert len(result.changes) == changes
    assert (
        any(d.startswith("drift on shop/web/0: cpus 8 → 2 (drift: warn)") for d in result.diagnostics) is note
    )
