"""run.identity: who is acting, and which change they are acting on, for the audit ledger.

Two people, kept apart in every audit entry:

* the **operator** — who ran it: ``--actor``, else the CI job (``operator``: GitHub Actions'
  ``$GITHUB_ACTOR`` with the repository, workflow and run; GitLab CI's user and job; a Jenkins
  build), else the operating-system user. The daemon is its own operator (``daemon-…@host``).
* the **change** — the commit of the desired state (when it lives in a git work tree), with
  its author and committer (``run.provenance``).
"""

from __future__ import annotations

import getpass
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from reconciler.run.provenance import of_folder


@dataclass(frozen=True)
class Identity:
    """Who runs this and from which commit, as the audit ledger records it."""

    actor: str  # the operator
    commit: str | None
    author: str = ""  # "Name <email>" of the commit's author ("" without a commit)
    committer: str = ""


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def ci_operator(env: Mapping[str, str]) -> str | None:
    """Who a CI job runs for, with the job, when the environment says so; None outside CI."""
    actor = env.get("GITHUB_ACTOR", "").strip()
    if actor:
        where = ", ".join(
            part
            for part in (
                env.get("GITHUB_REPOSITORY", ""),
                env.get("GITHUB_WORKFLOW", "") and f"workflow {env['GITHUB_WORKFLOW']}",
                env.get("GITHUB_RUN_ID", "") and f"run {env['GITHUB_RUN_ID']}",
            )
            if part
        )
        return f"{actor} via GitHub Actions" + (f" ({where})" if where else "")
    if env.get("GITLAB_CI") == "true":
        user = env.get("GITLAB_USER_LOGIN") or "unknown"
        return f"{user} via GitLab CI ({env.get('CI_PROJECT_PATH', '')} job {env.get('CI_JOB_ID', '?')})"
    if env.get("JENKINS_URL") and env.get("BUILD_TAG"):
        builder = env.get("BUILD_USER_ID")
        return f"{builder} via Jenkins ({env['BUILD_TAG']})" if builder else f"Jenkins {env['BUILD_TAG']}"
    return None


def operator(actor: str | None, env: Mapping[str, str] | None = None) -> str:
    """``--actor``, else the CI job's identity, else the OS user."""
    return actor or ci_operator(os.environ if env is None else env) or _os_user()


def detect_identity(path: Path | None, actor: str | None = None) -> Identity:
    """The operator, and the commit (with its author and committer) holding ``path``, if any."""
    found = of_folder(path) if path is not None else None
    if found is None:
        return Identity(actor=operator(actor), commit=None)
    return Identity(operator(actor), found.commit, found.author, found.committer)
