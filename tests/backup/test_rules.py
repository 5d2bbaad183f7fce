"""The pure backup rules: retention (against a separately written rule), due ticks, and plan_backups."""

from __future__ import annotations

import json
import random
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from reconciler.core.backups import BackupAction, BackupKind, due_tick, latest_tick, plan_backups, retained
from reconciler.core.changes import Change, ChangeCause
from reconciler.core.model import (
    Action,
    BackupPolicy,
    DesiredServer,
    ObservedServer,
    PriceList,
    Retention,
    ServerStatus,
    Size,
    Snapshot,
)
from reconciler.core.plan import Plan
from reconciler.core.plan_codec import action_from_dict, action_to_dict, dump_plan, load_plan, plan_to_dict
from reconciler.core.provider import Capabilities

UTC_2 = datetime(2026, 11, 2, 2, 0, tzinfo=UTC)  # a Monday, 02:00
OWNER = "vault"
PRICES = PriceList(name="standard", backup_gb_month=Decimal("0.05"))
KEEP_TWO = Retention(keep_last=2)


# --- a retention rule written separately: group by bucket, keep the newest of the newest N buckets
def expected_kept(times: list[datetime], r: Retention) -> set[datetime]:
    kept = set(sorted(times)[-r.keep_last :]) if r.keep_last else set()
    for count, bucket in (
        (r.keep_daily, lambda t: t.date()),
        (r.keep_weekly, lambda t: tuple(t.isocalendar())[:2]),
        (r.keep_monthly, lambda t: (t.year, t.month)),
    ):
        newest: dict[object, datetime] = {}
        for moment in times:
            slot = bucket(moment)
            newest[slot] = max(newest.get(slot, moment), moment)
        for slot in sorted(newest, key=lambda s: newest[s])[-count:] if count else []:
            kept.add(newest[slot])
    return kept


def _ids(times: list[datetime]) -> list[tuple[str, datetime]]:
    return [(f"snap-{i:04d}", t) for i, t in enumerate(times)]


def test_sixty_nightly_backups_keep_three_seven_daily_four_weekly() -> None:
    times = [UTC_2 + timedelta(days=n) for n in range(60)]  # 2026-11-02 .. 2026-12-31
    policy = Retention(keep_last=3, keep_daily=7, keep_weekly=4)
    kept_ids = retained(_ids(times), policy)
    kept = {t for ident, t in _ids(times) if ident in kept_ids}
    assert kept == expected_kept(times, policy)
    # by hand: the last 7 days, and the newest of each of the 3 ISO weeks before (Sundays)
    days = [date(2026, 12, d) for d in (13, 20, 25, 26, 27, 28, 29, 30, 31)]
    assert sorted(t.date() for t in kept) == days


@pytest.mark.parametrize("seed", range(40))
def test_retention_matches_the_separate_rule_on_random_histories(seed: int) -> None:
    rng = random.Random(seed)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    times = sorted(
        {start + timedelta(minutes=rng.randrange(0, 60 * 24 * 200)) for _ in range(rng.randrange(1, 80))}
    )
    policy = Retention(*(rng.randrange(0, 6) for _ in range(4)))
    kept_ids = retained(_ids(times), policy)
    assert {t for ident, t in _ids(times) if ident in kept_ids} == expected_kept(times, policy)


def test_due_ticks() -> None:
    schedule = "0 2 * * *"
    assert due_tick(schedule, None, UTC_2) is None
    assert due_tick(schedule, UTC_2 - timedelta(hours=1), UTC_2) == UTC_2  # a tick exactly at now counts
    assert due_tick(schedule, UTC_2, UTC_2 + timedelta(hours=23)) is None
    three_days_later = UTC_2 + timedelta(days=3, hours=5)
    assert due_tick(schedule, UTC_2, three_days_later) == UTC_2 + timedelta(
        days=3
    )  # one backup, the latest tick
    assert latest_tick("0 */6 * * *", UTC_2 + timedelta(hours=5)) == UTC_2 + timedelta(hours=4)


# --- plan_backups ----------------------------------------------------------------------------------
def _desired(key: str = "vault/db/0", policy: str | None = "nightly") -> DesiredServer:
    cluster, member, ordinal = key.split("/")
    return DesiredServer(
        key=key,
        name=key.replace("/", "-"),
        cluster=cluster,
        member=member,
        ordinal=int(ordinal),
        provider="sim",
        provider_type="simcloud",
        template="db",
        image="debian-12",
        size=Size(1, 1024, 40),
        flavor=None,
        backup_policy=policy,
    )


def _observed(
    key: str = "vault/db/0", rid: str = "sim-1", created: datetime = UTC_2 - timedelta(hours=1)
) -> ObservedServer:
    return ObservedServer(
        provider="sim",
        resource_id=rid,
        key=key,
        name=key.replace("/", "-"),
        owner=OWNER,
        status=ServerStatus.RUNNING,
        size=Size(1, 1024, 40),
        image="debian-12",
        spec_hash="h",
        created_at=created,
    )


def _snap(n: int, at: datetime, key: str = "vault/db/0", size: float = 10.0) -> Snapshot:
    return Snapshot(
        provider="sim",
        snapshot_id=f"snap-{n}",
        resource_id="sim-1",
        key=key,
        owner=OWNER,
        name=f"b{n}",
        created_at=at,
        size_gb=size,
        policy="nightly",
    )


def _plan(
    now: datetime,
    *,
    snaps: list[Snapshot] | None,
    retention: Retention = KEEP_TWO,
    desired: list[DesiredServer] | None = None,
    observed: list[ObservedServer] | None = None,
    changes: tuple[Change, ...] = (),
    snapshots_ok: bool = True,
    **kw: object,
) -> list[BackupAction]:
    policy = BackupPolicy(name="nightly", schedule="0 2 * * *", retention=retention)
    declared = [_desired()] if desired is None else desired
    return list(
        plan_backups(
            deployment=OWNER,
            declared=declared,
            desired=declared,
            observed=[_observed()] if observed is None else observed,
            snapshots=snaps,
            changes=changes,
            policies={"nightly": policy},
            capabilities={"sim": Capabilities(snapshots=snapshots_ok)},
            now=now,
            price_list_for=lambda _: PRICES,
            **kw,  # type: ignore[arg-type]
        ).actions
    )


def test_first_backup_is_due_at_the_first_tick_after_the_server_was_created() -> None:
    assert _plan(UTC_2 - timedelta(minutes=30), snaps=[]) == []
    [take] = _plan(UTC_2 + timedelta(minutes=5), snaps=[])
    assert take.kind is BackupKind.TAKE and take.name == "vault-db-0-20261102T0200Z"
    assert take.size_gb == 40 and take.estimated  # no backup yet: the disk size
    assert take.monthly_cost == Decimal("2.00") and take.currency == "USD"


def test_due_backup_counts_as_newest_so_retention_prunes_the_oldest_with_negative_cost() -> None:
    snaps = [_snap(1, UTC_2 - timedelta(days=2), size=8), _snap(2, UTC_2 - timedelta(days=1), size=12)]
    take, prune = _plan(UTC_2, snaps=snaps)
    assert take.kind is BackupKind.TAKE and take.size_gb == 12  # estimated from the newest backup
    assert prune.kind is BackupKind.PRUNE and prune.snapshot_id == "snap-1"
    assert prune.monthly_cost == Decimal("-0.40")
    assert _plan(UTC_2 - timedelta(hours=1), snaps=snaps) == []  # not due, nothing beyond keep_last 2


def test_force_takes_a_manual_backup_when_none_is_due() -> None:
    snaps = [_snap(1, UTC_2 - timedelta(hours=1))]
    [take] = _plan(UTC_2 - timedelta(minutes=30), snaps=snaps, force=True)
    assert take.name == "vault-db-0-manual-20261102T013000Z"


def _delete_change(key: str = "vault/db/0", action: Action = Action.DELETE) -> Change:
    return Change(
        id=f"{action.value}:{key}",
        action=action,
        key=key,
        provider="sim",
        cause=ChangeCause.NO_LONGER_DECLARED if action is Action.DELETE else ChangeCause.SPEC_CHANGED,
        reason="gone",
        before=_observed(key),
    )


def test_final_backup_before_delete_and_replace_unless_skipped() -> None:
    now = UTC_2 - timedelta(minutes=30)
    for action in (Action.DELETE, Action.REPLACE):
        [final] = _plan(now, snaps=[], changes=(_delete_change(action=action),))
        assert final.kind is BackupKind.FINAL and final.change_id == f"{action.value}:vault/db/0"
        assert final.name == "vault-db-0-final-sim-1"
    assert _plan(now, snaps=[], changes=(_delete_change(),), skip_final_backup=True) == []
    assert _plan(now, snaps=None, changes=(_delete_change(),))[0].kind is BackupKind.FINAL  # even unlisted


def test_a_removed_member_keeps_its_policy_through_its_backups_and_is_never_pruned() -> None:
    snaps = [_snap(n, UTC_2 - timedelta(days=n), key="vault/old/0") for n in range(1, 6)]
    actions = _plan(
        UTC_2,
        snaps=snaps,
        desired=[],
        observed=[_observed("vault/old/0")],
        changes=(_delete_change("vault/old/0"),),
    )
    assert [a.kind for a in actions] == [BackupKind.FINAL]


def test_a_provider_without_snapshots_gets_no_backup_actions() -> None:
    assert _plan(UTC_2, snaps=[], snapshots_ok=False, changes=(_delete_change(),)) == []


def test_backup_actions_survive_the_plan_file_and_old_plans_still_load() -> None:
    [take, prune] = _plan(
        UTC_2, snaps=[_snap(1, UTC_2 - timedelta(days=2)), _snap(2, UTC_2 - timedelta(days=1))]
    )
    assert action_from_dict(json.loads(json.dumps(action_to_dict(prune)))) == prune
    plan = Plan(
        deployment=OWNER,
        created_at=UTC_2,
        changes=(),
        providers=(),
        basis=(),
        backups=(take, prune),
        skip_final_backup=True,
    )
    again = load_plan(dump_plan(plan))
    assert again.backups == (take, prune) and again.skip_final_backup and not again.has_changes
    old = plan_to_dict(plan)
    del old["backups"], old["skip_final_backup"]
    assert load_plan(json.dumps(old)).backups == ()
