"""run.identity: who is acting and from which commit, for the audit ledger.

Actor: ``--actor``, else the git author of HEAD of the repository holding the desired
state, else the operating-system user. Commit: HEAD's sha when the desired state lives
in a git work tree.
"""

from __future__ import annotations

import getpass
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Identity:
    actor: str
    commit: str | None


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def detect_identity(path: Path | None, actor: str | None = None) -> Identity:
    """Actor and commit for an invocation on ``path`` (a file or folder of desired state)."""
    commit: str | None = None
    git_actor: str | None = None
    if path is not None:
        try:
            import git

            repo = git.Repo(path if path.is_dir() else path.parent, search_parent_directories=True)
            head = repo.head.commit
            commit = head.hexsha
            git_actor = f"{head.author.name} <{head.author.email}>"
        except Exception:  # not a repository, no commits yet, or git missing: fall back
            commit = None
    return Identity(actor=actor or git_actor or _os_user(), commit=commit)
