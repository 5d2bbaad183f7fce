"""core.errors: the typed error tree every layer raises and the CLI and executor act on.

Three branches, each telling the caller what to do next:

* ``UserError`` — the input is wrong (bad YAML, a dangling reference, a stale plan:
  ``StalePlanError``, a deny Policy's violation: ``PolicyDeniedError``).
  Never retried; reported as ``file:line: message`` with exit code 1, no traceback.
* ``TransientError`` — the cloud hiccupped (throttling, timeout, connection reset).
  Retried with exponential backoff and jitter.
* ``PermanentError`` — the cloud said no (quota, unknown image, capacity).
  Recorded, the action fails, its dependents are skipped, the rest goes on.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Diagnostic:
    """One problem in the user's input, located as precisely as we can."""

    file: str
    line: int | None
    message: str

    def __str__(self) -> str:
        if self.line is None:
            return f"{self.file}: {self.message}"
        return f"{self.file}:{self.line}: {self.message}"


class ReconcilerError(Exception):
    """Root of every error the reconciler raises on purpose."""


class UserError(ReconcilerError):
    """Bad input: carries every diagnostic found, so all of them are reported together."""

    def __init__(self, diagnostics: list[Diagnostic] | Diagnostic | str) -> None:
        if isinstance(diagnostics, str):
            diags = [Diagnostic(file="reconciler", line=None, message=diagnostics)]
        elif isinstance(diagnostics, Diagnostic):
            diags = [diagnostics]
        else:
            diags = list(diagnostics)
        self.diagnostics: tuple[Diagnostic, ...] = tuple(diags)
        super().__init__("\n".join(str(d) for d in self.diagnostics))


class StalePlanError(UserError):
    """The clouds changed since the plan was made: make a new plan (a daemon simply plans again)."""


class PolicyDeniedError(UserError):
    """A deny Policy refuses the desired state or the plan: one diagnostic per violation, at its policy."""


class ProviderError(ReconcilerError):
    """A provider call failed; subclasses say whether retrying can help."""

    def __init__(self, message: str, *, code: str | None = None) -> None:
        self.code = code
        super().__init__(message)


class TransientError(ProviderError):
    """Throttling, timeouts, connection loss: worth retrying with backoff."""


class PermanentError(ProviderError):
    """The cloud refused for good (quota, bad image, capacity): record and move on."""


class NotFoundError(PermanentError):
    """The resource named in a call does not exist (any more)."""


class LeaseLostError(ReconcilerError):
    """Another reconciler holds the lease for this provider scope, or ours expired."""
