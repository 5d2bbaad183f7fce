"""run.provenance: which commit a desired-state folder is, its git tree, and whether a saved plan is for it.

A plan records the git tree of the folder it was made from (``git rev-parse COMMIT:PATH``)
— but only when the folder on disk *is* that tree: a folder with uncommitted or untracked
changes records none, since no commit holds what was planned. The tree of the folder alone,
not the commit, is what a plan is tied to: a merge that leaves the folder as it was reviewed
has the same tree, whatever else the merge changed, and one that changes it does not.

``check_plan_tree`` is what ``apply --plan FILE --expect-tree auto|SHA`` calls before anything
is applied: the plan's signed ``tree`` must be the expected one — given, or (``auto``) the
tree of the plan's folder at HEAD of the repository apply runs in.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from reconciler.core.errors import Diagnostic, PlanTreeError, UserError
from reconciler.core.plan import Plan

AUTO = "auto"
_SHA = re.compile(r"[0-9a-f]{40}([0-9a-f]{24})?")


@dataclass(frozen=True)
class Provenance:
    """The commit a folder of desired state comes from, who made it, and the folder's tree in it.

    ``tree`` is None when the folder differs from the commit (``problem`` says how).
    """

    commit: str
    author: str  # "Name <email>"
    committer: str
    tree: str | None
    tree_path: str  # the folder inside the repository, '' for its root
    problem: str = ""


def _person(actor: object) -> str:
    return f"{getattr(actor, 'name', '')} <{getattr(actor, 'email', '')}>"


def _in_repository(folder: Path) -> bool:
    """Whether ``folder`` may be inside a git repository (a ``.git`` in it or a folder above, a
    bare repository's layout, or ``GIT_DIR`` set): outside one, GitPython is not even imported."""
    if os.environ.get("GIT_DIR"):
        return True
    for place in (folder, *folder.parents):
        if (place / ".git").exists() or all((place / p).exists() for p in ("HEAD", "objects", "refs")):
            return True
    return False


def of_folder(path: Path) -> Provenance | None:
    """HEAD of the git work tree holding ``path``, and the folder's tree; None outside a repository."""
    try:
        folder = (path if path.is_dir() else path.parent).resolve()
        if not _in_repository(folder):
            return None
        import git

        repo = git.Repo(folder, search_parent_directories=True)
        head = repo.head.commit
        root = Path(repo.working_tree_dir or folder).resolve()
        rel = folder.relative_to(root).as_posix()
    except Exception:  # not a repository, no commits yet, a bare one, or git missing
        return None
    rel = "" if rel == "." else rel
    tree: str | None = None
    problem = ""
    try:
        dirty = repo.git.status("--porcelain", "--untracked-files=all", "--", rel or ".")
        tree = (head.tree / rel).hexsha if rel else head.tree.hexsha
    except KeyError:
        problem = f"the folder {rel} is not in commit {head.hexsha[:12]}"
    except Exception as exc:  # git refused: say so, record no tree
        problem = f"git could not tell whether {rel or 'the folder'} is clean ({type(exc).__name__})"
    else:
        if dirty.strip():
            tree = None
            problem = f"{rel or 'the folder'} has changes not in commit {head.hexsha[:12]}"
    return Provenance(
        commit=head.hexsha,
        author=_person(head.author),
        committer=_person(head.committer),
        tree=tree,
        tree_path=rel,
        problem=problem,
    )


def head_tree(cwd: Path, tree_path: str) -> tuple[str, str]:
    """(HEAD's sha, the tree of ``tree_path`` at HEAD) of the repository holding ``cwd``."""
    try:
        import git

        repo = git.Repo(cwd, search_parent_directories=True)
        head = repo.head.commit
    except Exception:
        raise UserError(
            f"--expect-tree auto needs a git checkout of the commit being applied; {cwd} is not in one"
        ) from None
    try:
        return head.hexsha, ((head.tree / tree_path).hexsha if tree_path else head.tree.hexsha)
    except KeyError:
        raise PlanTreeError(
            f"commit {head.hexsha[:12]} has no folder {tree_path}, the folder the plan was made from; "
            "nothing was applied"
        ) from None


def check_expected(expected: str) -> None:
    """Refuse an ``--expect-tree`` value that is neither ``auto`` nor a full tree sha (before any work)."""
    if expected != AUTO and not _SHA.fullmatch(expected):
        raise UserError(
            f"--expect-tree {expected!r}: give auto or a full git tree sha (git rev-parse REV:PATH)"
        )


def check_plan_tree(plan: Plan, expected: str, *, source: str, cwd: Path) -> str:
    """The plan's tree, when it is ``expected`` (a tree sha, or ``auto``); else ``PlanTreeError``."""
    if plan.tree is None:
        raise PlanTreeError(
            Diagnostic(
                source,
                None,
                "the plan records no desired-state tree (it was made outside a git checkout, or from "
                "a folder with uncommitted changes), so it cannot be tied to the commit being applied; "
                "nothing was applied. Plan a clean checkout of the commit and review that",
            )
        )
    where = "the tree given"
    if expected == AUTO:
        commit, expected = head_tree(cwd, plan.tree_path)
        where = f"the tree of {plan.tree_path or 'the repository root'} at HEAD ({commit[:12]})"
    else:
        check_expected(expected)
    if plan.tree != expected:
        reviewed = f"commit {plan.commit[:12]}" if plan.commit else "its commit"
        raise PlanTreeError(
            Diagnostic(
                source,
                None,
                f"the plan was made from tree {plan.tree[:12]} of {plan.tree_path or 'the repository root'} "
                f"({reviewed}), but {where} is {expected[:12]}: the desired state being applied is not the "
                "one reviewed; nothing was applied. Plan this commit and review that",
            )
        )
    return plan.tree
