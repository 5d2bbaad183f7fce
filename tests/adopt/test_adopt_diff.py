"""The adopt decision (core.adoption through core.diff): which server a member's ``adopt:``
entry takes over, what follows it, and every refusal located at the entry."""

from __future__ import annotations

import dataclasses

import pytest

from reconciler.cli.review import render_markdown
from reconciler.core.adoption import MISMATCH
from reconciler.core.diff import diff
from reconciler.core.errors import UserError
from reconciler.core.graph import order_changes
from reconciler.core.model import Action, DesiredServer, ObservedServer, ServerStatus, SourceLocation
from reconciler.core.plan import Plan
from tests.engine.factories import NOW, OWNER, desired, observed, provider_config

WHERE = SourceLocation("shop.yaml", 12)


def _want(**overrides: object) -> DesiredServer:
    fields = {"adopt_id": "sim-0001", "adopt_location": WHERE, **overrides}
    return desired("shop/web/0", **fields)  # type: ignore[arg-type]


def _unowned(want: DesiredServer, **overrides: object) -> ObservedServer:
    server = observed(want, resource_id="sim-0001", name="web-a")
    fields = {"owner": "", "key": "", "spec_hash": "", "token": "", **overrides}
    return dataclasses.replace(server, **fields)  # type: ignore[arg-type]


def _diff(want: DesiredServer, described: list[ObservedServer], owned: list[ObservedServer] | None = None):
    return diff([want], owned or [], owner=OWNER, capabilities={}, last_generation=lambda key: None,
                described=described)


def test_a_matching_server_is_adopted_and_nothing_else() -> None:
    want = _want()
    result = _diff(want, [_unowned(want)])
    [adopt] = result.changes
    assert adopt.action is Action.ADOPT and adopt.id == "adopt:shop/web/0"
    assert adopt.before is not None and adopt.before.resource_id == "sim-0001"
    assert adopt.after == want and adopt.token and adopt.generation == 0


def test_what_differs_follows_as_an_update_after_the_adopt() -> None:
    want = _want(tags=(("role", "web"),))
    server = _unowned(want, status=ServerStatus.STOPPED, size=dataclasses.replace(want.size, cpus=1), tags=())
    changes = order_changes(_diff(want, [server]).changes, [want])
    assert [c.action for c in changes] == [Action.ADOPT, Action.UPDATE]
    update = changes[1]
    assert update.depends_on == ("adopt:shop/web/0",)
    assert update.before is not None and update.before.owner == OWNER  # the server once adopted
    assert {f.name for f in update.fields} >= {"cpus", "status", "tags.role"}


def test_a_needed_replacement_is_refused_unless_allowed() -> None:
    want = _want()
    other_image = _unowned(want, image="centos-7")
    with pytest.raises(UserError) as refused:
        _diff(want, [other_image])
    [problem] = refused.value.diagnostics
    assert (problem.file, problem.line) == ("shop.yaml", 12)
    assert "replacement" in problem.message and "allow_replace_on_adopt: true" in problem.message

    allowed = _want(allow_replace_on_adopt=True)
    changes = _diff(allowed, [_unowned(allowed, image="centos-7")]).changes
    assert [c.action for c in changes] == [Action.ADOPT, Action.REPLACE]
    assert changes[1].before is not None and changes[1].before.spec_hash == MISMATCH


def test_a_protected_member_never_replaces_what_it_adopts() -> None:
    want = _want(allow_replace_on_adopt=True, protect=True)
    with pytest.raises(UserError, match="protect: true"):
        _diff(want, [_unowned(want, image="centos-7")])


@pytest.mark.parametrize(
    ("described", "words"),
    [
        ([], "has no server sim-0001"),
        ("elsewhere", "is on provider other"),
        ("theirs", "owned by deployment 'someone-else'"),
        ("ours", "owns the server already, as shop/db/0"),
    ],
)
def test_refusals_are_located_at_the_entry(described: object, words: str) -> None:
    want = _want()
    servers = {
        "elsewhere": [_unowned(want, provider="other")],
        "theirs": [_unowned(want, owner="someone-else", key="x/y/0")],
        "ours": [_unowned(want, owner=OWNER, key="shop/db/0")],
    }.get(str(described), [])
    with pytest.raises(UserError) as refused:
        _diff(want, servers)
    [problem] = refused.value.diagnostics
    assert str(problem).startswith("shop.yaml:12: shop/web adopt: sim-0001")
    assert words in problem.message


def test_once_owned_the_entry_is_a_no_op_that_can_be_removed() -> None:
    want = _want()
    mine = observed(want, resource_id="sim-0001")
    result = _diff(want, [], [mine])
    assert result.changes == () and result.noop_count == 1
    assert any("adopt: entry is a no-op now and can be removed" in d for d in result.diagnostics)


def test_an_unknown_disk_is_not_a_difference() -> None:
    want = _want()
    server = _unowned(want, size=dataclasses.replace(want.size, disk_gb=0))
    [adopt] = _diff(want, [server]).changes
    assert adopt.action is Action.ADOPT


def test_the_review_markdown_lists_adoptions_in_their_own_section() -> None:
    wants = [desired(f"shop/web/{i}", adopt_id=f"sim-{i:04d}", adopt_location=WHERE) for i in (10, 2)]
    unowned = [_unowned(want, resource_id=want.adopt_id) for want in wants]
    result = diff(wants, [], owner=OWNER, capabilities={}, last_generation=lambda key: None,
                  described=unowned)
    plan = Plan(deployment=OWNER, created_at=NOW, changes=order_changes(result.changes, wants),
                providers=(provider_config(),), basis=(), noop_count=0)
    markdown = render_markdown(plan)
    assert "### Adoptions (2)" in markdown and "Other changes" not in markdown
    section = markdown.split("### Adoptions (2)")[1]
    assert section.index("shop/web/2") < section.index("shop/web/10")  # natural key order
    assert "sim-0002" in section
