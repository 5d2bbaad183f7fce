"""cli.review: the plan as a pull-request comment, written for its reviewer.

What a reviewer must not miss comes first, and is never dropped to make room:

1. a hidden marker on the first line (``<!-- reconciler-plan: DEPLOYMENT -->``), by which CI
   finds its own comment to update (``marker``);
2. the summary and cost delta, then — only when something did not fit — how much was left
   out and where the full plan is;
3. policy violations and open change windows, then the budgets the plan breaks;
4. every delete and replace, one line each with its key, provider, resource id and reason;
5. warnings, then updates (each folded in ``<details>``), then adoptions (servers taken over
   in place: marks written, nothing else), then creates grouped by member
   (``+ 500 × shop/web (ordinals 3–502)`` with one folded example of the full spec), then
   the counts and cost tables, then backups.

The comment is never longer than ``limit`` characters (60,000 by default: GitHub takes
65,536). Space is handed out in the order above; a section that does not fit whole is cut
with a note saying how many of its entries are left out, and the first lines say so too.
Keys sort as people read them (``web/2`` before ``web/10``, ``core.keys.natural_key``).
Secrets are scrubbed as in ``cli.render``.
"""

from __future__ import annotations

import html
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC

from reconciler.cli.render import (
    NO_CHANGES,
    _backup_size,
    _backup_what,
    _counted,
    _duplicate_suffix,
    _field_value,
    _input_rows,
    _over_budget,
    _scrub,
    _secrets,
    backup_summary,
    budget_line,
    cost_notes,
    format_hourly,
    format_money,
    open_holds,
    plan_summary,
    policy_head,
    uncounted,
    window_line,
)
from reconciler.core.backups import BackupAction
from reconciler.core.changes import Change
from reconciler.core.cost import CostLine
from reconciler.core.keys import ServerKey, member_of, natural_key
from reconciler.core.model import Action
from reconciler.core.plan import Plan

MARKDOWN_LIMIT = 60_000
MARKER_PREFIX = "<!-- reconciler-plan: "
DEFAULT_WHERE = "the plan.json of this run (`reconciler plan --format json`)"
_DESTRUCTIVE = (Action.DELETE, Action.REPLACE)
_NOTE_RESERVE = 600  # room kept for the first-lines note and the sections' "… N more" lines
_TRAILER_RESERVE = 200


def marker(deployment: str) -> str:
    """``<!-- reconciler-plan: shop -->``: the first line of every comment for ``deployment``.

    Characters that would end the HTML comment early (``--``, ``>``) are replaced.
    """
    safe = deployment.replace("--", "-\u2010").replace(">", "\u203a").replace("\n", " ")
    return f"{MARKER_PREFIX}{safe} -->"


# --- small pieces -----------------------------------------------------------------------------------
def _esc(text: str) -> str:
    """Text safe inside HTML and inside a markdown table cell."""
    return html.escape(text, quote=False).replace("|", "&#124;").replace("\n", " ")


def _code(text: str) -> str:
    return f"<code>{_esc(text)}</code>" if text else ""


def _md_summary(plan: Plan) -> str:
    line = f"**{plan_summary(plan)}**"
    figures = [
        f"{format_money(total.delta_monthly, total.currency, signed=True)} per 30-day month "
        f"({format_money(total.before_monthly, total.currency)} → "
        f"{format_money(total.after_monthly, total.currency)})"
        for total in plan.cost.totals
    ]
    if figures:
        line += f" Cost: {'; '.join(figures)}."
    return line


def _md_cells(line: CostLine) -> tuple[str, str, str, str]:
    cur = line.currency
    return (
        format_money(line.before_monthly, cur),
        format_money(line.after_monthly, cur),
        format_hourly(line.delta_hourly, cur, signed=True),
        format_money(line.delta_monthly, cur, signed=True),
    )


def _ordinals(numbers: Sequence[int]) -> str:
    """``0–2, 5, 7–9``: sorted ordinals as ranges."""
    runs: list[tuple[int, int]] = []
    for n in sorted(numbers):
        if runs and n == runs[-1][1] + 1:
            runs[-1] = (runs[-1][0], n)
        else:
            runs.append((n, n))
    return ", ".join(str(a) if a == b else f"{a}–{b}" for a, b in runs)


def _resource(change: Change) -> str:
    return change.before.resource_id if change.before is not None else ""


# --- the sections ------------------------------------------------------------------------------------
def _policy_items(plan: Plan) -> list[str]:
    head = policy_head(plan)
    items: list[str] = []
    if head is not None:
        items.append((f"> **{_esc(head)}**" if plan.denied else _esc(head)) + "\n\n")
        items += [f"- **{'deny' if v.denies else 'warn'}**: {_esc(str(v))}\n" for v in plan.violations]
        items.append("\n")
    items += [f"> {_esc(window_line(hold))}\n\n" for hold in open_holds(plan)]
    return items


def _broken_budget_items(plan: Plan) -> list[str]:
    cost = plan.cost
    return [f"> **{_esc(budget_line(c, uncounted(cost, c)))}**\n\n" for c in cost.budgets if c.broken]


def destructive_line(change: Change, mark: str = "") -> str:
    """One line for a delete or replace: symbol, action, key, provider, resource id, reason."""
    resource = _resource(change)
    where = f" on {_code(change.provider)}" + (f", resource {_code(resource)}" if resource else "")
    flag = f" <b>{_esc(mark.strip())}</b>" if mark else ""
    return (
        f"- <code>{_esc(change.action.symbol)}</code> **{change.action.value}** {_code(change.key)}"
        f"{_esc(_duplicate_suffix(change))}{where}: {_esc(change.reason)}{flag}\n"
    )


def _field_rows(change: Change) -> list[str]:
    rows = [
        f"| {_esc(f.name)} | {_code(_field_value(change, f, f.before))} "
        f"| {_code(_field_value(change, f, f.after))} |"
        for f in change.fields
    ]
    rows += [f"| input.{_esc(i.name)} |  | {_code(i.display())} |" for i in _input_rows(change)]
    return ["| field | before | after |", "|:--|:--|:--|", *rows] if rows else ["_no field changes_"]


def _details(summary: str, change: Change) -> str:
    body = _field_rows(change)
    return "\n".join([f"<details><summary>{summary}</summary>", "", *body, "", "</details>", ""]) + "\n"


def md_change(change: Change, mark: str = "") -> str:
    """One change folded in ``<details>``: its summary line, and the table of its fields."""
    summary = (
        f"<code>{_esc(change.action.symbol)}</code> {change.action.value} {_code(change.key)}"
        f"{_esc(_duplicate_suffix(change))}: {_esc(change.reason)}"
        + (f" <b>{_esc(mark.strip())}</b>" if mark else "")
    )
    return _details(summary, change)


@dataclass(frozen=True)
class CreateGroup:
    """The creates of one member on one provider for one cause, shown as one line and one example."""

    member: str
    provider: str
    changes: tuple[Change, ...]

    def ordinals(self) -> list[int]:
        return [k.ordinal for c in self.changes if (k := ServerKey.try_parse(c.key)) is not None]


def create_groups(changes: Sequence[Change]) -> list[CreateGroup]:
    """The creates by member, provider and cause, in natural member order; keys in natural order."""
    groups: dict[tuple[str, str, str], list[Change]] = defaultdict(list)
    for change in changes:
        groups[(member_of(change.key), change.provider, change.cause.value)].append(change)
    ordered = sorted(groups.items(), key=lambda item: (natural_key(item[0][0]), item[0][1], item[0][2]))
    return [
        CreateGroup(member, provider, tuple(sorted(found, key=lambda c: natural_key(c.key))))
        for (member, provider, _), found in ordered
    ]


def _group_item(plan: Plan, group: CreateGroup) -> str:
    first = group.changes[0]
    count = len(group.changes)
    numbers = group.ordinals()
    span = f" (ordinals {_ordinals(numbers)})" if len(numbers) == count and count > 1 else ""
    what = _code(group.member) + span if count > 1 else _code(first.key)
    marks = sorted({m.strip() for c in group.changes if (m := _over_budget(plan, c))})
    flag = f" <b>{_esc(' '.join(marks))}</b>" if marks else ""
    head = (
        f"- <code>+</code> **{count} ×** {what} on {_code(group.provider)}: {_esc(first.reason)}{flag}\n"
        if count > 1
        else f"- <code>+</code> **create** {what} on {_code(group.provider)}: {_esc(first.reason)}{flag}\n"
    )
    label = f"example: {_code(first.key)}" if count > 1 else f"spec of {_code(first.key)}"
    return head + "\n" + _details(label, first)


def _overview(plan: Plan) -> str:
    """Deployment, commit and time; counts; cost by cluster; every budget; what the cost leaves out."""
    meta = f"Deployment {_code(plan.deployment)}"
    if plan.commit:
        meta += f" · commit {_code(plan.commit)}"
    meta += f" · planned {plan.created_at.astimezone(UTC).strftime('%Y-%m-%d %H:%M UTC')}"
    parts = ["### Counts and cost", "", meta, ""]
    counts = plan.summary()
    shown = _counted(plan)
    parts += ["| action | count |", "|:--|--:|"]
    parts += [f"| <code>{a.symbol}</code> {a.value} | {counts[a.value]} |" for a in shown]
    parts += [f"| unchanged | {counts[Action.NOOP.value]} |", ""]
    cost = plan.cost
    if cost.by_cluster:
        several = len(cost.currencies) > 1
        parts += [
            "| cluster | before /month | after /month | change /hour | change /month |",
            "|:--|--:|--:|--:|--:|",
        ]
        for total in cost.totals:
            lines = sorted(cost.lines_in(total.currency), key=lambda line: natural_key(line.scope))
            parts += [f"| {_code(line.scope)} | {' | '.join(_md_cells(line))} |" for line in lines]
            label = f"total {total.currency}" if several else "total"
            parts.append(f"| **{label}** | " + " | ".join(f"**{cell}**" for cell in _md_cells(total)) + " |")
        parts.append("")
    for check in cost.budgets:
        if not check.broken:  # a broken budget is listed at the top
            parts += [_esc(budget_line(check, uncounted(cost, check))), ""]
    parts += [line for note in cost_notes(cost) for line in (_esc(note), "")]
    return "\n".join(parts) + "\n"


def _backups(actions: Sequence[BackupAction]) -> str:
    rows = [
        f"| <code>{a.kind.symbol}</code> {a.kind.value} | {_code(a.key)} | {_esc(_backup_what(a))} "
        f"| {_esc(a.reason)} | {_esc(_backup_size(a))} |"
        for a in sorted(actions, key=lambda a: natural_key(a.key))
    ]
    head = ["### Backups", "", f"**{_esc(backup_summary(actions))}**", ""]
    table = ["| | key | backup | why | size, storage |", "|:--|:--|:--|:--|--:|", *rows]
    return "\n".join([*head, *table]) + "\n"


# --- fitting -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Section:
    """Entries shown under one heading; ``noun`` names them in a "left out" note."""

    name: str
    heading: str
    items: tuple[str, ...]
    noun: str  # "updates"; for one entry, ``one``
    one: str
    tail: str = ""  # after the items, e.g. the blank line that ends a list

    def count(self, n: int, more: str = "") -> str:
        return f"{n} {more}{self.one if n == 1 else self.noun}"


@dataclass(frozen=True)
class _Fitted:
    shown: tuple[str, ...]
    left_out: int


def _fit(section: _Section, budget: int, where: str) -> tuple[_Fitted, int]:
    """As many leading items as fit in ``budget`` (with the heading), and the characters used."""
    if not section.items:
        return _Fitted((), 0), 0
    frame = len(section.heading) + len(section.tail)
    whole = frame + sum(map(len, section.items))
    if whole <= budget:
        return _Fitted(section.items, 0), whole
    room = budget - frame - _TRAILER_RESERVE - len(where)
    shown: list[str] = []
    used = 0
    for item in section.items:
        if used + len(item) > room:
            break
        shown.append(item)
        used += len(item)
    left = len(section.items) - len(shown)
    return _Fitted(tuple(shown), left), frame + used + _TRAILER_RESERVE + len(where)


def _sections(plan: Plan, secrets: set[str]) -> list[_Section]:
    """Every section, in the order space is handed out."""

    def clean(items: Sequence[str]) -> tuple[str, ...]:
        return tuple(_scrub(item, secrets) for item in items)

    changes = plan.changes
    destructive = sorted((c for c in changes if c.action in _DESTRUCTIVE), key=lambda c: natural_key(c.key))
    updates = sorted((c for c in changes if c.action is Action.UPDATE), key=lambda c: natural_key(c.key))
    adoptions = sorted((c for c in changes if c.action is Action.ADOPT), key=lambda c: natural_key(c.key))
    creates = [c for c in changes if c.action is Action.CREATE]
    warnings = [f"> **Warning:** {_esc(d)}\n>\n" for d in plan.diagnostics]
    backups = [_backups(plan.backups)] if plan.backups else []
    sections = [
        _Section("policy", "", clean(_policy_items(plan)), "policy lines", "policy line"),
        _Section("budgets", "", clean(_broken_budget_items(plan)), "broken budgets", "broken budget"),
        _Section(
            "destructive",
            f"### Deletes and replaces ({len(destructive)})\n\n",
            clean([destructive_line(c, _over_budget(plan, c)) for c in destructive]),
            "deletes and replaces",
            "delete or replace",
            "\n",
        ),
        _Section("overview", "", clean([_overview(plan)]), "count and cost tables", "count and cost table"),
        _Section("warnings", "", clean(warnings), "warnings", "warning", "\n"),
        _Section(
            "updates",
            f"### Updates ({len(updates)})\n\n",
            clean([md_change(c, _over_budget(plan, c)) for c in updates]),
            "updates",
            "update",
        ),
        _Section(
            "adoptions",
            f"### Adoptions ({len(adoptions)})\n\n",
            clean([md_change(c, _over_budget(plan, c)) for c in adoptions]),
            "adoptions",
            "adoption",
        ),
        _Section(
            "creates",
            f"### Creates ({len(creates)})\n\n",
            clean([_group_item(plan, g) for g in create_groups(creates)]),
            "groups of creates",
            "group of creates",
        ),
        _Section("backups", "", clean(backups), "backup tables", "backup table"),
    ]
    return sections


_DISPLAY = (  # the order people read the sections in
    "policy", "budgets", "destructive", "warnings", "updates", "adoptions", "creates", "overview", "backups",
)


def render_markdown(plan: Plan, *, limit: int = MARKDOWN_LIMIT, where: str = DEFAULT_WHERE) -> str:
    """The plan as a pull-request comment, reviewer first, never over ``limit`` characters.

    ``where``: where the full plan is, named whenever something is left out (in CI, the run
    that uploaded plan.json).
    """
    secrets = _secrets(c.after for c in plan.changes)
    top = marker(plan.deployment) + "\n" + _scrub(_md_summary(plan), secrets) + "\n\n"
    calm = "" if plan.changes else NO_CHANGES + "\n\n"
    top_len = len(top) + len(calm)
    sections = _sections(plan, secrets)
    whole = top_len + sum(len(s.heading + s.tail) + sum(map(len, s.items)) for s in sections if s.items)
    budget = limit - top_len - (0 if whole <= limit else _NOTE_RESERVE + len(where))
    fitted: dict[str, _Fitted] = {}
    for section in sections:
        fitted[section.name], used = _fit(section, max(0, budget), where)
        budget -= used
    by_name = {s.name: s for s in sections}
    out = top + _first_note(sections, fitted, where) + calm
    for name in _DISPLAY:
        section, fit = by_name[name], fitted[name]
        if not section.items:
            continue
        if fit.shown:
            out += section.heading + "".join(fit.shown) + section.tail
        if fit.left_out:
            out += f"\n… {section.count(fit.left_out, 'more ')} not shown (the full plan: {where})\n\n"
    if len(out) > limit:  # only when even the first lines are over the cap: cut, never exceed it
        out = out[: limit - 1] + "…" if limit > 0 else ""
    return out


def _first_note(sections: Sequence[_Section], fitted: dict[str, _Fitted], where: str) -> str:
    """In the first lines: what was left out, and where the full plan is (empty when all fits)."""
    left = [(s, fitted[s.name].left_out) for s in sections if fitted[s.name].left_out]
    if not left:
        return ""
    listed = ", ".join(s.count(n) for s, n in left)
    destructive = fitted["destructive"].left_out
    lead = (
        f"**{destructive} of the deletes and replaces do not fit in this comment**"
        if destructive
        else "Not everything fits in this comment"
    )
    return f"> {lead}: left out are {listed}. The full plan is {where}.\n\n"
