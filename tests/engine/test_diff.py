"""Diff rules: one test (or a few) per rule, with hand-built desired and observed servers."""

from __future__ import annotations

import dataclasses

import pytest

from reconciler.core.changes import ChangeCause, FieldChange
from reconciler.core.errors import UserError
from reconciler.core.model import (
    Action,
    DesiredServer,
    DriftMode,
    FailoverMode,
    ResolvedInput,
    ServerStatus,
    UpdateStrategy,
    idempotency_token,
)
from reconciler.core.provider import Capabilities
from tests.engine.factories import OWNER, desired, observed, run_diff


def fields_of(change_fields: tuple[FieldChange, ...]) -> dict[str, tuple[str, str]]:
    return {f.name: (f.before, f.after) for f in change_fields}


# --- create / delete ------------------------------------------------------------------------
def test_desired_without_observed_is_created_with_generation_zero_and_its_token() -> None:
    want = desired("shop/web/0")
    result = run_diff([want], [])
    (change,) = result.changes
    assert change.id == "create:shop/web/0"
    assert change.action is Action.CREATE
    assert change.reason == "not present"
    assert change.generation == 0
    assert change.token == idempotency_token(OWNER, "shop/web/0", want.spec_hash, 0)
    assert change.after == want and change.before is None
    assert change.depends_on == ()
    assert fields_of(change.fields)["cpus"] == ("", "2")
    assert result.noop_count == 0


def test_create_after_a_previous_lifetime_takes_the_next_generation() -> None:
    want = desired("shop/web/0")
    (change,) = run_diff([want], [], last={"shop/web/0": 3}).changes
    assert change.generation == 4
    assert change.token == idempotency_token(OWNER, "shop/web/0", want.spec_hash, 4)


def test_owned_but_no_longer_desired_is_deleted() -> None:
    gone = observed(desired("shop/old/0"), resource_id="i-9")
    result = run_diff([], [gone])
    (change,) = result.changes
    assert (change.id, change.action, change.reason) == ("delete:shop/old/0", Action.DELETE,
                                                         "no longer in the configuration")
    assert change.before == gone and change.provider == gone.provider
    assert fields_of(change.fields)["resource_id"] == ("i-9", "")


def test_protected_member_passed_in_is_not_deleted() -> None:
    gone = observed(desired("shop/db/1"))
    result = run_diff([], [gone], protected=frozenset({"shop/db"}))
    assert result.changes == ()
    assert result.diagnostics == (
        "shop/db/1 is protected (protect: true); it was not deleted — set protect: false and apply first",
    )


def test_protection_is_derived_from_desired_when_the_count_shrinks() -> None:
    keep = desired("shop/db/0", protect=True)
    extra = observed(desired("shop/db/1"))
    result = run_diff([keep], [observed(keep), extra])
    assert result.changes == ()
    assert result.noop_count == 1
    assert "shop/db/1 is protected (protect: true)" in result.diagnostics[0]


def test_servers_of_another_owner_are_left_alone() -> None:
    stranger = observed(desired("shop/web/0"), owner="someone-else")
    result = run_diff([], [stranger])
    assert result.changes == ()
    assert "owned by 'someone-else'" in result.diagnostics[0]


def test_duplicate_desired_keys_are_a_user_error() -> None:
    with pytest.raises(UserError, match="shop/web/0"):
        run_diff([desired("shop/web/0"), desired("shop/web/0")], [])


# --- duplicates -----------------------------------------------------------------------------
def test_duplicates_keep_the_one_matching_the_spec_and_delete_the_others() -> None:
    want = desired("shop/web/0", image="ubuntu-24.04")
    old = observed(want, resource_id="i-old", generation=1, image="ubuntu-22.04", spec_hash="stale")
    new = observed(want, resource_id="i-new", generation=0)
    result = run_diff([want], [old, new])
    (change,) = result.changes
    assert change.id == "delete:shop/web/0#i-old"
    assert change.action is Action.DELETE
    assert change.reason == "duplicate of i-new"
    assert change.before == old
    assert result.noop_count == 1


def test_duplicates_prefer_running_then_the_highest_generation() -> None:
    want = desired("shop/web/0")
    broken = observed(want, resource_id="i-a", status=ServerStatus.ERROR, generation=5)
    older = observed(want, resource_id="i-b", generation=1)
    newer = observed(want, resource_id="i-c", generation=2)
    result = run_diff([want], [broken, older, newer])
    ids = [c.id for c in result.changes]
    assert ids == ["delete:shop/web/0#i-a", "delete:shop/web/0#i-b"]
    assert {c.reason for c in result.changes} == {"duplicate of i-c"}


def test_duplicates_of_a_key_no_longer_desired_all_go_with_unique_ids() -> None:
    gone = desired("shop/old/0")
    result = run_diff([], [observed(gone, resource_id="i-1"), observed(gone, resource_id="i-2")])
    ids = [c.id for c in result.changes]
    assert len(set(ids)) == 2
    assert "delete:shop/old/0" in ids and all(c.action is Action.DELETE for c in result.changes)


def test_duplicates_of_a_protected_member_are_reported_not_deleted() -> None:
    want = desired("shop/db/0", protect=True)
    result = run_diff([want], [observed(want, resource_id="i-1"), observed(want, resource_id="i-2")])
    assert result.changes == ()
    assert "duplicate i-2 was not deleted" in result.diagnostics[0]


# --- replace on spec change -----------------------------------------------------------------
@pytest.mark.parametrize(
    ("changed", "expected"),
    [
        ({"image": "debian-13"}, "spec changed: image"),
        ({"disk_gb": 80}, "spec changed: disk"),
        ({"inputs": (ResolvedInput("port", 8080, "member inputs"),)}, "spec changed: scripts/inputs"),
    ],
)
def test_spec_hash_change_is_a_replace_naming_what_changed(changed: dict[str, object], expected: str) -> None:
    before = desired("shop/web/0")
    after = desired("shop/web/0", **changed)  # type: ignore[arg-type]
    have = observed(before, generation=2)
    (change,) = run_diff([after], [have], last={"shop/web/0": 1}).changes
    assert change.id == "replace:shop/web/0"
    assert change.action is Action.REPLACE
    assert change.reason == expected
    assert change.generation == 3
    assert change.token == idempotency_token(OWNER, "shop/web/0", after.spec_hash, 3)
    assert fields_of(change.fields)["spec_hash"] == (before.spec_hash, after.spec_hash)


def test_a_protected_member_is_never_replaced() -> None:
    before = desired("shop/db/0", protect=True)
    failed = desired("shop/db/1", protect=True, failover=FailoverMode.REPLACE)
    after = desired("shop/db/0", protect=True, image="debian-13")
    result = run_diff([after, failed], [observed(before), observed(failed, status=ServerStatus.ERROR)])
    assert result.changes == ()
    assert result.diagnostics == (
        "shop/db/0 is protected (protect: true); it needs replacing (spec changed: image) but i-shop-db-0 "
        "was not replaced — set protect: false and apply first, or undo the change",
        "shop/db/1 is protected (protect: true); it needs replacing (server is in error state) but "
        "i-shop-db-1 was not replaced — set protect: false and apply first, or undo the change",
    )
    resized = desired("shop/db/0", protect=True, cpus=4)  # in place: protection does not hold it
    (change,) = run_diff([resized], [observed(before)]).changes
    assert change.action is Action.UPDATE


# --- the guard marks: what the server carries holds, whatever the YAML says now ------------------
@pytest.mark.parametrize(
    "want",
    [
        [],  # member or cluster removed, or destroy
        [desired("shop/db/1")],  # count lowered: shop/db/0 no longer desired
    ],
    ids=["removed", "count-lowered"],
)
def test_a_server_carrying_the_protect_mark_is_never_deleted(want: list[DesiredServer]) -> None:
    marked = observed(desired("shop/db/0"), protected=True)
    result = run_diff(want, [marked, *(observed(w) for w in want)])
    assert [c for c in result.changes if c.action is Action.DELETE] == []
    assert result.diagnostics == (
        "shop/db/0 is protected (its server carries the protect mark); it was not deleted — declare it "
        "again with protect: false and apply, then remove it",
    )


def test_the_protect_mark_holds_duplicates_moves_and_replaces() -> None:
    want = desired("shop/db/0", image="debian-13")  # protect: false in the YAML, spec changed
    marked = observed(desired("shop/db/0"), protected=True)
    twin = observed(desired("shop/db/0"), resource_id="i-twin", protected=True)
    result = run_diff([want], [marked, twin])
    assert [c.action for c in result.changes] == [Action.UPDATE]  # only the marks are rewritten
    (change,) = result.changes
    assert change.cause is ChangeCause.MARKS_CHANGED
    assert fields_of(change.fields) == {"protect": ("true", "false")}
    assert change.after is not None and change.after.size == marked.size and change.after.image == "debian-13"
    assert any("duplicate i-twin was not deleted" in d for d in result.diagnostics)
    assert any("was not replaced" in d and "apply protect: false first" in d for d in result.diagnostics)
    moved = desired("shop/db/0", provider="other")
    result = run_diff([moved], [marked])
    assert [c.action for c in result.changes] == [Action.CREATE]
    assert "on provider sim was not deleted" in result.diagnostics[0]


def test_marks_follow_the_yaml_in_place() -> None:
    plain = desired("shop/db/0")
    guarded = desired("shop/db/0", protect=True, backup_policy="nightly")
    (write,) = run_diff([guarded], [observed(plain, protected=False, backup_policy="")]).changes
    assert (write.action, write.cause) == (Action.UPDATE, ChangeCause.MARKS_CHANGED)
    assert fields_of(write.fields) == {"protect": ("false", "true"), "backup_policy": ("(none)", "nightly")}
    (drop,) = run_diff([plain], [observed(guarded)]).changes
    assert fields_of(drop.fields) == {"protect": ("true", "false"), "backup_policy": ("nightly", "(none)")}
    assert run_diff([guarded], [observed(guarded)]).changes == ()
    # a server made before marks were written is still held by the YAML's protect: true
    (mark,) = run_diff([], [observed(plain)], protected=frozenset({"shop/db"})).diagnostics
    assert "protect: true" in mark


def test_replace_generation_respects_a_ledger_ahead_of_what_is_observed() -> None:
    before, after = desired("shop/web/0"), desired("shop/web/0", image="debian-13")
    (change,) = run_diff([after], [observed(before, generation=0)], last={"shop/web/0": 7}).changes
    assert change.generation == 8


# --- failover -------------------------------------------------------------------------------
def test_error_state_with_failover_replace_is_replaced() -> None:
    want = desired("shop/web/0", failover=FailoverMode.REPLACE)
    (change,) = run_diff([want], [observed(want, status=ServerStatus.ERROR)]).changes
    assert change.action is Action.REPLACE
    assert change.reason == "server is in error state"
    assert change.generation == 1


def test_error_state_with_failover_restart_is_an_update_that_starts_it() -> None:
    want = desired("shop/web/0", failover=FailoverMode.RESTART)
    (change,) = run_diff([want], [observed(want, status=ServerStatus.ERROR)]).changes
    assert change.action is Action.UPDATE
    assert fields_of(change.fields)["status"] == ("error", "running")
    assert change.token is None


def test_error_state_with_failover_none_is_only_a_diagnostic() -> None:
    want = desired("shop/web/0", failover=FailoverMode.NONE)
    result = run_diff([want], [observed(want, status=ServerStatus.ERROR)])
    assert result.changes == ()
    assert result.diagnostics == ("shop/web/0 is in error state (failover: none); left alone",)
    assert result.noop_count == 1


def test_stopped_server_gets_an_update_that_starts_it() -> None:
    want = desired("shop/web/0")
    (change,) = run_diff([want], [observed(want, status=ServerStatus.STOPPED)]).changes
    assert change.id == "update:shop/web/0"
    assert change.reason == "server is stopped"
    assert change.fields == (FieldChange("status", "stopped", "running"),)


# --- resize ---------------------------------------------------------------------------------
def test_resize_in_place_when_the_provider_can_and_restart_is_allowed() -> None:
    want = desired("shop/web/0", cpus=4, memory_mb=4096)
    (change,) = run_diff([want], [observed(want, cpus=2, memory_mb=2048)]).changes
    assert change.action is Action.UPDATE
    assert change.fields == (FieldChange("cpus", "2", "4"), FieldChange("memory_mb", "2048", "4096"))
    assert change.reason == "resize cpus 2 → 4, memory_mb 2048 → 4096"
    assert change.generation == 0 and change.token is None


@pytest.mark.parametrize(
    ("strategy", "caps", "allow_restart", "why"),
    [
        (UpdateStrategy.REPLACE, Capabilities(), True, "update policy is replace"),
        (
            UpdateStrategy.IN_PLACE,
            Capabilities(resize_in_place=False),
            True,
            "provider cannot resize in place",
        ),
        (
            UpdateStrategy.IN_PLACE,
            Capabilities(resize_needs_restart=True),
            False,
            "resize needs a restart and allow_restart is false",
        ),
    ],
)
def test_resize_is_a_replace_when_it_cannot_happen_in_place(
    strategy: UpdateStrategy, caps: Capabilities, allow_restart: bool, why: str
) -> None:
    want = desired("shop/web/0", cpus=4, update_strategy=strategy, allow_restart=allow_restart)
    (change,) = run_diff([want], [observed(want, cpus=2)], caps=caps).changes
    assert change.action is Action.REPLACE
    assert change.reason == f"resize cpus 2 → 4: {why}"
    assert change.token is not None


def test_resize_without_restart_is_in_place_even_when_restarts_are_refused() -> None:
    want = desired("shop/web/0", cpus=4, allow_restart=False)
    caps = Capabilities(resize_needs_restart=False)
    (change,) = run_diff([want], [observed(want, cpus=2)], caps=caps).changes
    assert change.action is Action.UPDATE


def test_flavor_change_is_compared_instead_of_cpus_and_memory_where_flavor_defines_size() -> None:
    caps = Capabilities(flavor_defines_size=True)
    want = desired("shop/web/0", flavor="m5.xlarge")
    have = observed(want, flavor="m5.large", cpus=99)
    (change,) = run_diff([want], [have], caps=caps).changes
    assert change.fields == (FieldChange("flavor", "m5.large", "m5.xlarge"),)
    same = observed(want, flavor="m5.xlarge", cpus=99)
    assert run_diff([want], [same], caps=caps).changes == ()


def test_flavor_as_a_label_still_compares_cpus_and_memory() -> None:
    want = desired("shop/web/0", flavor="sim.small")
    drifted = observed(want, flavor="sim.small", cpus=16)
    (change,) = run_diff([want], [drifted]).changes
    assert change.fields == (FieldChange("cpus", "16", str(want.size.cpus)),)


# --- tags -----------------------------------------------------------------------------------
def test_user_tags_are_updated_in_place() -> None:
    want = desired("shop/web/0", tags=(("env", "prod"), ("team", "web")))
    have = observed(want, tags=(("env", "dev"), ("old", "x")))
    (change,) = run_diff([want], [have]).changes
    assert change.action is Action.UPDATE
    assert fields_of(change.fields) == {
        "tags.env": ("dev", "prod"),
        "tags.old": ("x", "(none)"),
        "tags.team": ("(none)", "web"),
    }


def test_tags_a_provider_cannot_update_are_a_diagnostic() -> None:
    want = desired("shop/web/0", tags=(("env", "prod"),))
    result = run_diff([want], [observed(want, tags=())], caps=Capabilities(update_tags=False))
    assert result.changes == ()
    assert "cannot update tags in place" in result.diagnostics[0]


# --- drift ----------------------------------------------------------------------------------
def test_drift_warn_reports_and_changes_nothing() -> None:
    want = desired("shop/web/0", cpus=4, drift=DriftMode.WARN)
    result = run_diff([want], [observed(want, cpus=2)])
    assert result.changes == ()
    assert result.diagnostics == ("drift on shop/web/0: cpus 2 → 4 (drift: warn)",)
    assert result.noop_count == 1


def test_drift_warn_covers_a_stopped_server() -> None:
    want = desired("shop/web/0", drift=DriftMode.WARN)
    result = run_diff([want], [observed(want, status=ServerStatus.STOPPED)])
    assert result.changes == ()
    assert result.diagnostics == ("drift on shop/web/0: status stopped → running (drift: warn)",)


def test_drift_ignore_is_silent() -> None:
    want = desired("shop/web/0", cpus=4, drift=DriftMode.IGNORE)
    result = run_diff([want], [observed(want, cpus=2, status=ServerStatus.STOPPED)])
    assert (result.changes, result.diagnostics, result.noop_count) == ((), (), 1)


def test_drift_mode_does_not_hide_a_spec_change() -> None:
    before = desired("shop/web/0", drift=DriftMode.IGNORE)
    after = desired("shop/web/0", image="debian-13", drift=DriftMode.IGNORE)
    (change,) = run_diff([after], [observed(before)]).changes
    assert change.action is Action.REPLACE


# --- the whole picture ----------------------------------------------------------------------
def test_matching_servers_are_counted_as_no_ops() -> None:
    servers = [desired(f"shop/web/{i}") for i in range(3)]
    result = run_diff(servers, [observed(s) for s in servers])
    assert (result.changes, result.diagnostics, result.noop_count) == ((), (), 3)


def test_a_server_moving_provider_is_created_there_and_deleted_here() -> None:
    before = desired("shop/web/0", provider="old-cloud")
    after = desired("shop/web/0")
    result = run_diff([after], [observed(before, generation=1)])
    assert [(c.id, c.provider) for c in result.changes] == [
        ("create:shop/web/0", "sim"),
        ("delete:shop/web/0", "old-cloud"),
    ]
    assert result.changes[0].generation == 2


def test_changes_come_sorted_by_key_with_unique_ids_whatever_the_input_order() -> None:
    keep = [desired(f"shop/web/{i}") for i in range(4)]
    gone = [observed(desired(f"shop/old/{i}")) for i in range(3)]
    have = [observed(keep[1], cpus=1), *gone]
    first = run_diff(keep, have)
    second = run_diff(list(reversed(keep)), list(reversed(have)))
    assert first == second
    keys = [c.key for c in first.changes]
    assert keys == sorted(keys)
    assert len({c.id for c in first.changes}) == len(first.changes)
    assert all(c.id.startswith(f"{c.action.value}:{c.key}") for c in first.changes)


def test_an_empty_spec_hash_on_desired_is_computed() -> None:
    want = desired("shop/web/0")
    unhashed = dataclasses.replace(want, spec_hash="")
    assert run_diff([unhashed], [observed(want)]).changes == ()


# --- causes: what code decides on (reason and fields are for people) --------------------------
def _cause(want: list, have: list, **kwargs: object) -> list[tuple[str, ChangeCause]]:
    return [(c.id, c.cause) for c in run_diff(want, have, **kwargs).changes]  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("have", "want_kw", "expected"),
    [
        ({"status": ServerStatus.ERROR}, {}, (Action.REPLACE, ChangeCause.FAILED)),
        ({"status": ServerStatus.ERROR}, {"failover": FailoverMode.RESTART},
         (Action.UPDATE, ChangeCause.FAILED)),
        ({"status": ServerStatus.STOPPED}, {}, (Action.UPDATE, ChangeCause.STOPPED)),
        ({"status": ServerStatus.STOPPED, "cpus": 8}, {}, (Action.UPDATE, ChangeCause.STOPPED)),
        ({"status": ServerStatus.ERROR, "cpus": 8}, {}, (Action.REPLACE, ChangeCause.FAILED)),
        ({"cpus": 8}, {}, (Action.UPDATE, ChangeCause.SIZE_CHANGED)),
        ({"cpus": 8}, {"update_strategy": UpdateStrategy.REPLACE},
         (Action.REPLACE, ChangeCause.SIZE_CHANGED)),
        ({"cpus": 8, "tags": (("team", "a"),)}, {}, (Action.UPDATE, ChangeCause.SIZE_CHANGED)),
        ({"tags": (("team", "a"),)}, {}, (Action.UPDATE, ChangeCause.TAGS_CHANGED)),
        ({"image": "debian-12", "spec_hash": "old"}, {}, (Action.REPLACE, ChangeCause.SPEC_CHANGED)),
        ({"status": ServerStatus.ERROR, "spec_hash": "old"}, {}, (Action.REPLACE, ChangeCause.SPEC_CHANGED)),
    ],
)
def test_each_change_to_a_running_key_names_its_cause(
    have: dict[str, object], want_kw: dict[str, object], expected: tuple[Action, ChangeCause]
) -> None:
    want = desired(**want_kw)
    (change,) = run_diff([want], [observed(want, **have)]).changes  # type: ignore[arg-type]
    assert (change.action, change.cause) == expected
    # the daemon's failover guards apply exactly to servers being brought back
    assert change.cause.is_failover == (expected[1] in (ChangeCause.FAILED, ChangeCause.STOPPED))


def test_creates_and_deletes_name_their_cause() -> None:
    web0, web1 = desired("shop/web/0"), desired("shop/web/1")
    gone = observed(desired("shop/old/0"), resource_id="i-gone")
    dup = observed(web0, resource_id="i-dup", generation=1, spec_hash="stale")
    causes = _cause([web0, web1], [observed(web0), dup, gone])
    assert causes == [
        ("delete:shop/old/0", ChangeCause.NO_LONGER_DECLARED),
        ("delete:shop/web/0#i-dup", ChangeCause.DUPLICATE),
        ("create:shop/web/1", ChangeCause.NOT_PRESENT),
    ]
    moved = desired("shop/web/0", provider="other")
    assert {c for _, c in _cause([moved], [observed(web0)], caps=Capabilities())} == {ChangeCause.MOVED}


def test_failover_is_decided_on_the_cause_never_on_display_fields() -> None:
    from reconciler.daemon.failover import is_failover

    want = desired()
    (change,) = run_diff([want], [observed(want, status=ServerStatus.ERROR)]).changes
    assert is_failover(change)
    relabelled = dataclasses.replace(change, fields=(), reason="anything at all")
    assert is_failover(relabelled)  # what people read does not change the decision
    resized = dataclasses.replace(change, cause=ChangeCause.SIZE_CHANGED)
    assert not is_failover(resized)  # nor does a status field the display may still show
