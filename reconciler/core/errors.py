"""core.errors: the typed error tree every layer raises and the CLI and executor act on.

Three branches, each telling the caller what to do next:

* ``UserError`` — the input is wrong (bad YAML, a dangling reference, a stale plan:
  ``StalePlanError``, a plan made from another git tree: ``PlanTreeError``, a deny Policy's
  violation: ``PolicyDeniedError``).
  Never retried; reported as ``file:line: message`` with exit code 1, no traceback.
* ``TransientError`` — the cloud hiccupped (throttling, timeout, connection reset).
  Retried with exponential backoff and jitter.
* ``PermanentError`` — the cloud said no (quota, unknown image, capacity).
  Recorded, the action fails, its dependents are skipped, the rest goes on.

A bad environment is a ``UserError`` too: ``NoSpaceError`` when a write is refused for want
of room (a full disk, a quota, a file-size limit: ``NO_SPACE_ERRNOS``), and the other
refused writes ``write_refused`` names (a read-only folder, no permission). Wherever one is
raised, what was being written is left as it was before (temp files, SQLite transactions),
so freeing the space and running again converges.
"""

from __future__ import annotations

import errno
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


class NoSpaceError(UserError):
    """A write was refused for want of room (disk full, quota, file-size limit): free space, run again."""

    def __init__(self, path: object, detail: str = "") -> None:
        self.path = str(path)
        why = f" ({detail})" if detail else ""
        super().__init__(f"no space left writing {path}{why}: free space and run again")


# ENOSPC: the disk is full; EDQUOT: a quota is reached; EFBIG: the file would pass a size limit
# (RLIMIT_FSIZE, the filesystem's largest file).
NO_SPACE_ERRNOS = frozenset(
    code for code in (errno.ENOSPC, errno.EFBIG, getattr(errno, "EDQUOT", None)) if code is not None
)
_READ_ONLY_ERRNOS = frozenset({errno.EROFS, errno.EACCES, errno.EPERM})


def write_refused(path: object, exc: OSError, what: str = "") -> UserError:
    """The one error for a file write the operating system refused: ``NoSpaceError`` for want of
    room, else a ``UserError`` naming the file, the reason and what to do."""
    if exc.errno in NO_SPACE_ERRNOS:
        return NoSpaceError(path)
    label = f"the {what} {path}" if what else str(path)
    reason = exc.strerror or str(exc)
    if exc.errno in _READ_ONLY_ERRNOS:
        folder = str(path).rpartition("/")[0] or "."
        return UserError(f"cannot write {label}: {reason}; this needs write access to {folder}")
    return UserError(f"cannot write {label}: {reason}")


class StalePlanError(UserError):
    """The clouds changed since the plan was made: make a new plan (a daemon simply plans again)."""


class PlanTreeError(UserError):
    """A saved plan was reviewed for another desired state (git tree) than the one being applied."""


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
