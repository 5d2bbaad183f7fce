"""The pull-request markdown is written for its reviewer: what destroys comes first and is never lost.

A plan of 500 creates, one replace and one delete — whose destructive changes come last in
graph order — shows the replace and the delete near the top, under 60,000 characters, with
the marker CI finds its comment by on the first line. Keys sort as people read them.
"""

from __future__ import annotations

from reconciler.cli.review import MARKDOWN_LIMIT, create_groups, marker, render_markdown
from reconciler.core.graph import order_changes
from reconciler.core.model import Action
from reconciler.core.plan import Plan
from tests.engine.factories import NOW, OWNER, desired, observed, provider_config, run_diff


def _plan(creates: int, *, deletes: int = 1) -> Plan:
    want = [desired(f"shop/web/{i}", tags=(("role", "web"),)) for i in range(3, 3 + creates)]
    kept = desired("zz/db/0", image="debian-13")  # "zz" sorts after "shop": last in graph order
    want.append(kept)
    have = [observed(desired("zz/db/0"), resource_id="i-db-0")]
    have += [observed(desired(f"zz/old/{i}"), resource_id=f"i-old-{i}") for i in range(deletes)]
    result = run_diff(want, have)
    return Plan(
        deployment=OWNER, created_at=NOW, changes=order_changes(result.changes, want),
        providers=(provider_config(),), basis=tuple(have), noop_count=result.noop_count,
    )


def test_500_creates_a_replace_and_a_delete_show_the_destructive_pair_first() -> None:
    plan = _plan(500)
    actions = [c.action for c in plan.changes]
    assert actions.count(Action.CREATE) == 500
    assert actions[-2:] == [Action.REPLACE, Action.DELETE]  # last in graph order
    markdown = render_markdown(plan)
    assert len(markdown) < MARKDOWN_LIMIT
    lines = markdown.splitlines()
    assert lines[0] == "<!-- reconciler-plan: acme -->"
    replace = next(i for i, line in enumerate(lines) if "**replace** <code>zz/db/0</code>" in line)
    delete = next(i for i, line in enumerate(lines) if "**delete** <code>zz/old/0</code>" in line)
    creates = next(i for i, line in enumerate(lines) if line.startswith("### Creates"))
    assert replace < delete < creates < 12
    assert "on <code>sim</code>, resource <code>i-db-0</code>: spec changed: image" in lines[replace]
    assert "resource <code>i-old-0</code>: no longer in the configuration" in lines[delete]
    assert "- <code>+</code> **500 ×** <code>shop/web</code> (ordinals 3–502) on <code>sim</code>" in markdown
    assert markdown.count("<details>") == 1  # one folded example of the full spec
    assert "example: <code>shop/web/3</code>" in markdown and "tags.role" in markdown
    assert "not shown" not in markdown


def test_deletes_that_cannot_all_fit_are_counted_in_the_first_lines() -> None:
    plan = _plan(10, deletes=3000)
    markdown = render_markdown(plan, where="https://ci.example/run/7")
    assert len(markdown) <= MARKDOWN_LIMIT
    lines = markdown.splitlines()
    assert lines[0] == marker(OWNER)
    shown = markdown.count("**delete** <code>zz/old/") + markdown.count("**replace** <code>zz/db/0")
    assert 100 < shown < 3001
    left = 3001 - shown
    assert lines[3].startswith(f"> **{left} of the deletes and replaces do not fit in this comment**: ")
    assert lines[3].endswith("The full plan is https://ci.example/run/7.")
    note = f"… {left} more deletes and replaces not shown (the full plan: https://ci.example/run/7)"
    assert note in markdown


def test_keys_sort_naturally_in_the_graph_and_the_markdown() -> None:
    want = [desired(f"shop/web/{i}") for i in (10, 2, 1)]
    have = [observed(desired(f"shop/old/{i}"), resource_id=f"i-{i}") for i in (10, 9)]
    result = run_diff(want, have)
    changes = order_changes(result.changes, want)
    keys = ["shop/old/9", "shop/old/10", "shop/web/1", "shop/web/2", "shop/web/10"]
    assert [c.key for c in changes] == keys
    plan = Plan(deployment=OWNER, created_at=NOW, changes=changes, providers=(provider_config(),), basis=())
    markdown = render_markdown(plan)
    assert markdown.index("shop/old/9") < markdown.index("shop/old/10")
    assert "(ordinals 1–2, 10)" in markdown


def test_create_groups_split_by_member_and_provider() -> None:
    want = [desired("a/web/0"), desired("a/web/1", provider="eu"), desired("a/db/0"), desired("a/web/2")]
    groups = create_groups(run_diff(want, []).changes)
    assert [(g.member, g.provider, len(g.changes)) for g in groups] == [
        ("a/db", "sim", 1), ("a/web", "eu", 1), ("a/web", "sim", 2),
    ]


def test_the_marker_cannot_end_its_comment_early() -> None:
    assert marker("evil --> <b>x</b>").count("-->") == 1
