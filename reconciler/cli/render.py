"""cli.render: a Plan for people — Terraform-like text for terminals — and JSON; the pieces
``cli.review`` builds the pull-request markdown from.

Rendering reads only the Plan. It never shows an input's value except through
``ResolvedInput.display()``, so a sensitive input is always ``(sensitive)``; as a second
line of defence, literal values of sensitive inputs are scrubbed from every piece of text
before it is emitted. Money is a ``Decimal`` throughout: hourly figures keep up to four
decimals (small rates stay visible), monthly figures two.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence
from decimal import ROUND_HALF_UP, Decimal

from reconciler.core.backups import BackupAction, BackupKind, monthly_totals
from reconciler.core.budgets import scope_lines
from reconciler.core.changes import Change, FieldChange
from reconciler.core.cost import BudgetCheck, CostLine, CostSummary
from reconciler.core.model import GLOBAL, SENSITIVE, Action, DesiredServer, ResolvedInput
from reconciler.core.plan import Plan
from reconciler.core.plan_codec import dump_signed_plan
from reconciler.core.policy import WindowHold, window_holds

NO_CHANGES = "No changes. Your infrastructure matches the configuration."
CURRENCY_SYMBOLS = {"USD": "$", "EUR": "€", "GBP": "£"}
_MIN_SECRET_LENGTH = 4  # shorter literals would scrub ordinary words; display() still hides them
_ANSI = {
    Action.CREATE: "32",
    Action.UPDATE: "33",
    Action.DELETE: "31",
    Action.REPLACE: "35",
    Action.ADOPT: "36",
    Action.NOOP: "0",
}
_COUNTED = (Action.CREATE, Action.UPDATE, Action.REPLACE, Action.DELETE)


# --- money ----------------------------------------------------------------------------------
def format_money(amount: Decimal, currency: str, *, places: int = 2, signed: bool = False) -> str:
    """``$1,080.40``, ``-€0.27``, ``+CHF 3.10``: symbol for USD/EUR/GBP, else the code."""
    quantum = Decimal(1).scaleb(-places)
    value = amount.quantize(quantum, rounding=ROUND_HALF_UP)
    sign = "-" if value < 0 else ("+" if signed else "")
    number = f"{abs(value):,.{places}f}"
    symbol = CURRENCY_SYMBOLS.get(currency.upper())
    if symbol:
        return f"{sign}{symbol}{number}"
    return f"{sign}{currency} {number}" if currency else f"{sign}{number}"


def format_hourly(amount: Decimal, currency: str, *, signed: bool = False) -> str:
    """An hourly figure: up to four decimals, but no more than it needs beyond two."""
    four = amount.quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP)
    places = next(p for p in (2, 3, 4) if four == four.quantize(Decimal(1).scaleb(-p)))
    return format_money(four, currency, places=places, signed=signed)


def _figures(line: CostLine) -> str:
    """``$1.23/h → $1.50/h (+$0.27/h, +$194.40 per 30-day month)``"""
    cur = line.currency
    return (
        f"{format_hourly(line.before_hourly, cur)}/h → {format_hourly(line.after_hourly, cur)}/h "
        f"({format_hourly(line.delta_hourly, cur, signed=True)}/h, "
        f"{format_money(line.delta_monthly, cur, signed=True)} per 30-day month)"
    )


def cost_line(cost: CostSummary) -> str | None:
    """``Cost: $1.23/h → $1.50/h (+$0.27/h, +$194.40 per 30-day month)``, or None when unpriced.

    Priced in several currencies, one line each (``Cost in EUR: …`` then ``Cost in USD: …``),
    joined by newlines: amounts in different currencies are never added.
    """
    totals = cost.totals
    lines = [f"{_cost_label(totals, total)}: {_figures(total)}" for total in totals]
    return "\n".join(lines) if lines else None


def _cost_label(totals: Sequence[CostLine], total: CostLine) -> str:
    return "Cost" if len(totals) == 1 else f"Cost in {total.currency}"


def cost_lines(cost: CostSummary) -> list[str]:
    """The cost line of each currency, each followed by the clusters whose cost the plan changes in it."""
    totals = cost.totals
    out: list[str] = []
    for total in totals:
        out.append(f"{_cost_label(totals, total)}: {_figures(total)}")
        out.extend(cluster_cost_lines(cost, total.currency))
    return out


def cluster_cost_lines(cost: CostSummary, currency: str | None = None) -> list[str]:
    """One line per cluster whose cost the plan changes (in ``currency``, or every currency)."""
    lines = cost.by_cluster if currency is None else cost.lines_in(currency)
    changed = [line for line in lines if line.delta_hourly != 0]
    if not changed:
        return []
    width = max(len(line.scope) for line in changed) + 1
    return [f"  {(line.scope + ':').ljust(width)} {_figures(line)}" for line in changed]


def uncounted(cost: CostSummary, check: BudgetCheck) -> list[str]:
    """Currencies the budget's scope is also priced in, which a budget in its currency does not count."""
    return sorted({line.currency for line in scope_lines(cost, check.scope)} - {check.currency})


def budget_line(check: BudgetCheck, others: Sequence[str] = ()) -> str:
    """``Budget shop-cap (cluster shop): $669.60 → $936.00 per 30-day month, ceiling $800.00: …``

    ``others``: currencies of the scope the budget does not count (``uncounted``), named in it.
    """
    currency = check.currency
    scope = "all clusters" if check.scope == GLOBAL else f"cluster {check.scope}"
    if others:
        scope += f", {currency} only; {' and '.join(others)} not counted"
    text = (
        f"Budget {check.name} ({scope}): {format_money(check.before_monthly, currency)} → "
        f"{format_money(check.after_monthly, currency)} per 30-day month, ceiling "
        f"{format_money(check.limit_monthly, currency)}"
    )
    over = format_money(check.after_monthly - check.limit_monthly, currency)
    if check.broken:
        return f"{text}: EXCEEDED by {over}; this plan breaks the budget"
    if check.over:
        return f"{text}: over by {over}, but this plan does not raise it"
    return f"{text}: within"


def _over_budget(plan: Plan, change: Change) -> str:
    """`` [over budget: a, b]`` for a change that raises the cost of a scope whose budget it breaks."""
    names = [c.name for c in plan.cost.budgets if c.broken and change.key in c.keys]
    return f" [over budget: {', '.join(names)}]" if names else ""


def _keys(keys: Sequence[str], shown: int = 10) -> str:
    more = f" and {len(keys) - shown} more" if len(keys) > shown else ""
    return ", ".join(keys[:shown]) + more


def cost_notes(cost: CostSummary) -> list[str]:
    """What the cost figures leave out or only estimate: unpriced servers, measured billing."""
    notes = []
    if cost.unpriced:
        notes.append(f"Not priced (no PriceList covers them): {_keys(cost.unpriced)}")
    if cost.measured:
        notes.append(
            f"Estimated (billed by measured use): {_keys(cost.measured)} — priced at the flavor's hourly "
            "rate, or with every vCPU and all memory busy (a ceiling for CPU and RAM); network "
            "and backup storage are billed on top"
        )
    return notes


# --- policy (listed first) -------------------------------------------------------------------
def policy_head(plan: Plan) -> str | None:
    """``Policy: this plan is denied (1 deny violation, 2 warnings); apply refuses it.``, or None."""
    if not plan.violations:
        return None
    denied = len(plan.denied)
    warned = len(plan.violations) - denied
    warnings = f"{warned} warning{'' if warned == 1 else 's'}"
    if denied:
        counts = f"{denied} deny violation{'' if denied == 1 else 's'}" + (f", {warnings}" if warned else "")
        return f"Policy: this plan is denied ({counts}); apply refuses it."
    return f"Policy: {warnings}, nothing denied."


def open_holds(plan: Plan) -> tuple[WindowHold, ...]:
    """The change windows open when the plan was made that hold some of its changes back."""
    return window_holds(plan.windows, plan.changes, plan.created_at)


def window_line(hold: WindowHold) -> str:
    if hold.blocks:
        return (
            f"Window: {hold.describe()}; apply is refused until it closes, unless given "
            "--override-window REASON"
        )
    return f"Window (warn): {hold.describe()}; apply goes ahead"


def _text_policy(plan: Plan, color: bool) -> list[str]:
    head = policy_head(plan)
    holds = open_holds(plan)
    if head is None and not holds:
        return []
    lines: list[str] = []
    if head is not None:
        lines.append(_paint(head, "1;31", color) if plan.denied else head)
        for violation in plan.violations:
            label = _paint("deny", "1;31", color) if violation.denies else _paint("warn", "1;33", color)
            lines.append(f"  {label}: {violation}")
    lines.extend(window_line(hold) for hold in holds)
    return [*lines, ""]


# --- shared pieces --------------------------------------------------------------------------
def _counted(plan: Plan) -> tuple[Action, ...]:
    """The actions a summary counts: adopt only in a plan that adopts."""
    adopts = any(c.action is Action.ADOPT for c in plan.changes)
    return (Action.CREATE, Action.ADOPT, *_COUNTED[1:]) if adopts else _COUNTED


def plan_summary(plan: Plan) -> str:
    """``Plan: 2 to create, 1 to update, 0 to replace, 1 to delete, 5 unchanged.`` (with
    ``N to adopt`` after the creates when the plan adopts, and the targets of a targeted plan)"""
    counts = plan.summary()
    done = ", ".join(f"{counts[a.value]} to {a.value}" for a in _counted(plan))
    targeted = f" Targeted: {', '.join(plan.targets)} (other keys were not planned)." if plan.targets else ""
    return f"Plan: {done}, {counts[Action.NOOP.value]} unchanged.{targeted}"


def _secrets(servers: Iterable[DesiredServer | None]) -> set[str]:
    found: set[str] = set()
    for server in servers:
        if server is None:
            continue
        for item in server.inputs:
            if item.sensitive and item.value is not None and not isinstance(item.value, bool):
                text = str(item.value)
                if len(text) >= _MIN_SECRET_LENGTH:
                    found.add(text)
    return found


def _scrub(text: str, secrets: set[str]) -> str:
    for secret in sorted(secrets, key=len, reverse=True):
        text = text.replace(secret, SENSITIVE).replace(html.escape(secret), SENSITIVE)
    return text


def _input_rows(change: Change) -> list[ResolvedInput]:
    if change.after is None or change.action not in (Action.CREATE, Action.REPLACE):
        return []
    return list(change.after.inputs)


def _field_value(change: Change, item: FieldChange, value: str) -> str:
    """A field's value for display; an input field of a sensitive input shows ``(sensitive)``."""
    if change.after is not None and value:
        for entry in change.after.inputs:
            if item.name == f"input.{entry.name}" and entry.display() == SENSITIVE:
                return SENSITIVE
    return value


def _duplicate_suffix(change: Change) -> str:
    _, sep, resource = change.id.partition("#")
    return f" [{resource}]" if sep else ""


# --- text -----------------------------------------------------------------------------------
def _paint(text: str, code: str, color: bool) -> str:
    return f"\x1b[{code}m{text}\x1b[0m" if color else text


def _text_change(change: Change, color: bool, mark: str = "") -> list[str]:
    symbol = _paint(change.action.symbol, _ANSI[change.action], color)
    head = f"  {symbol} {change.key}{_duplicate_suffix(change)}  ({change.action.value}: {change.reason})"
    lines = [head + (_paint(mark, "1;31", color) if mark else "")]
    for item in change.fields:
        before = _field_value(change, item, item.before)
        after = _field_value(change, item, item.after)
        if not before:
            lines.append(f"      {item.name}: {after}")
        elif not after:
            lines.append(f"      {item.name}: {before}")
        else:
            lines.append(f"      {item.name}: {before} → {after}")
    for entry in _input_rows(change):
        lines.append(f"      input.{entry.name}: {entry.display()}")
    return lines


def render_text(plan: Plan, *, color: bool = False) -> str:
    """The plan for a terminal, Terraform-style; ANSI colours only when ``color`` is true."""
    secrets = _secrets(c.after for c in plan.changes)
    lines: list[str] = _text_policy(plan, color)
    if not plan.changes:
        lines.append(NO_CHANGES)
    else:
        lines.append("The reconciler will perform the following actions:")
        for change in plan.changes:
            lines.append("")
            lines.extend(_text_change(change, color, _over_budget(plan, change)))
        lines.append("")
        lines.append(plan_summary(plan))
        lines.extend(cost_lines(plan.cost))
        lines.extend(cost_notes(plan.cost))
        for check in plan.cost.budgets:
            text = budget_line(check, uncounted(plan.cost, check))
            lines.append(_paint(text, "1;31", color) if check.broken else text)
    lines.extend(_text_backups(plan.backups, color))
    if plan.diagnostics:
        lines.append("")
        warning = _paint("Warning:", "1;33", color)
        lines.extend(f"{warning} {text}" for text in plan.diagnostics)
    return _scrub("\n".join(lines) + "\n", secrets)


# --- backups (after the server changes; nothing at all when there are none) -----------------
def backup_summary(actions: Sequence[BackupAction]) -> str:
    """``Backups: 1 to take, 0 final, 2 to prune; storage -$1.20 per 30-day month.``"""
    counts = {kind: sum(1 for a in actions if a.kind is kind) for kind in BackupKind}
    text = (
        f"Backups: {counts[BackupKind.TAKE]} to take, {counts[BackupKind.FINAL]} final, "
        f"{counts[BackupKind.PRUNE]} to prune"
    )
    totals = monthly_totals(actions)  # one per currency, never added together
    if totals:
        money = " and ".join(format_money(total, currency, signed=True) for total, currency in totals)
        text += f"; storage {money} per 30-day month"
    return text + "."


def _backup_what(action: BackupAction) -> str:
    if action.kind is BackupKind.PRUNE:
        return f"prune {action.snapshot_id} ({action.name})"
    return f"{'final backup' if action.kind is BackupKind.FINAL else 'backup'} {action.name}"


def _backup_size(action: BackupAction) -> str:
    size = f"{'~' if action.estimated else ''}{action.size_gb:g} GB"
    if action.monthly_cost is None:
        return size
    return f"{size}, {format_money(action.monthly_cost, action.currency, signed=True)}/month"


def _text_backups(actions: Sequence[BackupAction], color: bool) -> list[str]:
    if not actions:
        return []
    lines = ["", "Backups (policy schedules and retention):"]
    for action in actions:
        symbol = _paint(action.kind.symbol, "31" if action.kind is BackupKind.PRUNE else "32", color)
        lines.append(
            f"  {symbol} {action.key}  {_backup_what(action)}  ({action.reason})  {_backup_size(action)}"
        )
    return [*lines, "", backup_summary(actions)]


# --- JSON -----------------------------------------------------------------------------------
def render_json(plan: Plan, key: bytes) -> str:
    """The plan file ``apply --plan`` reads: signed with ``key``; sensitive literals are dropped."""
    return dump_signed_plan(plan, key)
