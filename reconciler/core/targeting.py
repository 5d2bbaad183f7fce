"""core.targeting: ``--target SELECTOR`` — plan (apply, destroy, show) only some keys.

A selector is a cluster (``shop``), a member (``shop/web``) or one server key
(``shop/web/0``). A targeted plan holds the changes of the keys selected and, walking
``depends_on`` back, every change they must wait for (a dependency that must change first
comes along); the changes that wait for them — dependents — are left alone. For a destroy,
the graph deletes dependents before what they depend on, so those deletes come along too.

The cost of a targeted plan is the cost after *its* changes: servers of keys left out count
as they run now. Scheduled backups and prunes of keys left out are left out too. The plan
records its selectors (``Plan.targets``, signed with the rest of a plan file).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal

from reconciler.core.backups import BackupAction
from reconciler.core.changes import Change
from reconciler.core.cost import CostLine, CostSummary
from reconciler.core.errors import Diagnostic, UserError
from reconciler.core.model import DesiredServer, ObservedServer, PriceList
from reconciler.core.pricing import plan_cost

_PART = re.compile(r"[a-z][a-z0-9-]{0,62}")
_ORDINAL = re.compile(r"0|[1-9][0-9]{0,8}")
HINT = "write a cluster (shop), a member (shop/web) or a server key (shop/web/0)"


@dataclass(frozen=True, order=True)
class Selector:
    """One ``--target``: a cluster, a member of it, or one of the member's servers."""

    cluster: str
    member: str | None = None
    ordinal: int | None = None

    def matches(self, key: str) -> bool:
        parts = key.split("/")
        if len(parts) != 3 or parts[0] != self.cluster:
            return False
        if self.member is not None and parts[1] != self.member:
            return False
        return self.ordinal is None or parts[2] == str(self.ordinal)

    def __str__(self) -> str:
        parts = [self.cluster, self.member, None if self.ordinal is None else str(self.ordinal)]
        return "/".join(p for p in parts if p is not None)


def parse_selector(text: str) -> Selector:
    """``shop``, ``shop/web`` or ``shop/web/0``; a ``UserError`` saying how to write one otherwise."""
    parts = text.strip().split("/")
    names, ordinal = (parts[:2], parts[2]) if len(parts) == 3 else (parts, None)
    good = 1 <= len(parts) <= 3 and all(_PART.fullmatch(p) for p in names)
    if not good or (ordinal is not None and not _ORDINAL.fullmatch(ordinal)):
        raise UserError(Diagnostic("--target", None, f"{text!r} is not a selector; {HINT}"))
    member = names[1] if len(names) > 1 else None
    return Selector(names[0], member, None if ordinal is None else int(ordinal))


def parse_selectors(texts: Iterable[str]) -> tuple[Selector, ...]:
    """Every ``--target`` given, parsed, without repeats, in order."""
    return tuple(sorted(set(map(parse_selector, texts))))


def check_selectors(selectors: Sequence[Selector], keys: Iterable[str]) -> None:
    """Refuse a selector that matches none of ``keys`` (the desired and the owned ones): a typo."""
    known = list(keys)
    unknown = [s for s in selectors if not any(s.matches(k) for k in known)]
    if unknown:
        raise UserError([
            Diagnostic("--target", None, f"{s} matches no server of the desired state or of this deployment")
            for s in unknown
        ])


def select_changes(changes: Sequence[Change], selectors: Sequence[Selector]) -> tuple[Change, ...]:
    """The changes of the selected keys and, transitively, the changes they depend on (in order)."""
    by_id = {c.id: c for c in changes}
    kept: set[str] = set()
    todo = [c.id for c in changes if any(s.matches(c.key) for s in selectors)]
    while todo:
        cid = todo.pop()
        if cid in kept or cid not in by_id:
            continue
        kept.add(cid)
        todo.extend(by_id[cid].depends_on)
    return tuple(c for c in changes if c.id in kept)


def targeted_notes(notes: Iterable[str], selectors: Sequence[Selector]) -> tuple[str, ...]:
    """The diagnostics of a targeted plan: those about a key left out (they start with it) go."""
    def about_another(note: str) -> bool:
        first = note.split(" ", 1)[0]
        return first.count("/") == 2 and not any(s.matches(first) for s in selectors)

    return tuple(n for n in notes if not about_another(n))


def targeted_backups(actions: Sequence[BackupAction], kept: Sequence[Change]) -> tuple[BackupAction, ...]:
    """The backup actions of the keys a targeted plan changes (final backups of its deletes too)."""
    keys, ids = {c.key for c in kept}, {c.id for c in kept}
    return tuple(a for a in actions if a.key in keys or (a.change_id and a.change_id in ids))


def targeted_cost(
    desired: Sequence[DesiredServer],
    observed: Sequence[ObservedServer],
    kept: Sequence[Change],
    every: Sequence[Change],
    price_list_for: Callable[[str], PriceList | None],
) -> CostSummary:
    """Cost before and after a targeted plan: the keys it leaves out cost after what they cost now."""
    left_out = {c.key for c in every} - {c.key for c in kept}
    inside = plan_cost(
        [s for s in desired if s.key not in left_out],
        [s for s in observed if s.key not in left_out],
        price_list_for,
    )
    outside = plan_cost((), [s for s in observed if s.key in left_out], price_list_for)
    lines: dict[tuple[str, str], tuple[Decimal, Decimal]] = {}  # (currency, cluster) → before, after
    for line in inside.by_cluster:
        lines[(line.currency, line.scope)] = (line.before_hourly, line.after_hourly)
    for line in outside.by_cluster:  # left out: after costs what it costs now, in its own currency
        before, after = lines.get((line.currency, line.scope), (Decimal(0), Decimal(0)))
        lines[(line.currency, line.scope)] = (before + line.before_hourly, after + line.before_hourly)
    return CostSummary(
        by_cluster=tuple(CostLine(scope, cur, b, a) for (cur, scope), (b, a) in sorted(lines.items())),
        unpriced=tuple(sorted({*inside.unpriced, *outside.unpriced})),
        measured=inside.measured,
    )
