"""run.gate: what the plan's policies say before anything is applied.

``check_policy`` refuses (a located ``UserError``, nothing applied):

* a plan with a violation of a deny Policy — each violation at its policy's ``file:line``;
* a plan with changes that a deny Policy's change window, open *now* (the apply's clock, not
  the plan's), holds back, unless ``--override-window REASON`` is given. A failed or stopped
  server's heal passes a window whose ``allow_heal`` is true (the default).

It returns what passes anyway — windows overridden (the caller records them in the audit
ledger, ``run.apply`` does), warn windows open now — for the caller to show.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from reconciler.core.errors import Diagnostic, PolicyDeniedError, UserError
from reconciler.core.plan import Plan
from reconciler.core.policy import WindowHold, window_holds
from reconciler.core.policy_model import Violation

MAX_REASON_CHARS = 500


@dataclass(frozen=True)
class Gate:
    """The change windows an apply went through: overridden deny windows, open warn windows, why."""

    overridden: tuple[WindowHold, ...] = ()  # deny windows passed with --override-window
    warned: tuple[WindowHold, ...] = ()  # warn policies' windows open now (never block)
    reason: str = ""

    def notes(self) -> list[str]:
        """What to tell the person applying."""
        lines = [f"Window overridden ({self.reason}): {hold.describe()}" for hold in self.overridden]
        lines += [f"Warning: inside a warn policy's change window: {hold.describe()}" for hold in self.warned]
        return lines


def override_reason(text: str | None) -> str | None:
    """``--override-window REASON``: one line of text, not empty, at most 500 characters."""
    if text is None:
        return None
    reason = text.strip()
    control = any(ord(c) < 32 or 127 <= ord(c) < 160 for c in reason)
    if not reason or len(reason) > MAX_REASON_CHARS or control:
        raise UserError(
            Diagnostic(
                "--override-window",
                None,
                f"give the reason for passing the change window: one line of 1 to {MAX_REASON_CHARS} "
                "characters, such as --override-window 'incident 4711: restore the checkout'",
            )
        )
    return reason


def denial(violations: Sequence[Violation], suffix: str = "") -> PolicyDeniedError:
    """The error of deny violations: one diagnostic each, at its policy's ``file:line``."""
    return PolicyDeniedError(
        [Diagnostic(v.where.file, v.where.line, v.summary() + suffix) for v in violations]
    )


def check_policy(plan: Plan, now: datetime, override: str | None = None) -> Gate:
    """Refuse a plan its deny policies forbid now (see the module); what passes anyway, to show."""
    if plan.denied:
        raise denial(plan.denied, "; the plan is denied, nothing was applied")
    reason = override_reason(override)
    holds = window_holds(plan.windows, plan.changes, now)
    blocking = tuple(h for h in holds if h.blocks)
    warned = tuple(h for h in holds if not h.blocks)
    if blocking and reason is None:
        raise UserError(
            [
                Diagnostic(
                    h.opened.window.where.file,
                    h.opened.window.where.line,
                    f"{h.opened.describe()} holds back {_keys(h.keys)}; nothing was applied — apply after "
                    f"{h.opened.closes.strftime('%Y-%m-%d %H:%M')} UTC, or pass --override-window REASON",
                )
                for h in blocking
            ]
        )
    return Gate(overridden=blocking, warned=warned, reason=reason or "")


def _keys(keys: tuple[str, ...], shown: int = 10) -> str:
    more = f" and {len(keys) - shown} more" if len(keys) > shown else ""
    return ", ".join(keys[:shown]) + more
