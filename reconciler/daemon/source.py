"""daemon.source: desired state from a git repository — the daemon's own clone, and one-off checkouts for CI.

``GitSource`` keeps a bare clone of the repository (a local path or any URL git
understands: ``file://``, ``https://``, ``ssh://``) under a home folder — the daemon's is
``<state dir>/source/`` — fetches the branch on demand, and exports the exact tree of
one commit into ``checkouts/<sha>/<repo name>/`` (``git archive``: no index, no work-tree
state to go stale). A commit's tree never changes, so a checkout is reused until pruned.

The folder a checkout lands in is named after the repository (``infra.git`` → ``infra``),
so the deployment name derived from the folder (see ``config.deployment_name``) is the
same for every commit, for the daemon, for ``plan --source`` and for a developer's own
clone of the same repository.

Diagnostics from a checkout are rewritten to repository-relative paths
(``clusters/shop.yaml:7``) before they reach the ledger, an alert or a terminal.
"""

from __future__ import annotations

import io
import re
import shutil
import tarfile
import tempfile
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath

import git

from reconciler.core.errors import Diagnostic, PolicyDeniedError, UserError

CLONE_DIR = "repo.git"
CHECKOUTS_DIR = "checkouts"


@dataclass(frozen=True)
class Commit:
    """One commit of the desired state: what the audit ledger records for a daemon run."""

    sha: str
    author: str  # "Name <email>"
    message: str  # the summary line
    when: datetime
    committer: str = ""  # "Name <email>"

    @property
    def short(self) -> str:
        return self.sha[:12]


def repo_name(url: str) -> str:
    """``file:///srv/infra.git`` → ``infra``; ``git@host:org/shop-infra`` → ``shop-infra``."""
    tail = re.split(r"[/:\\]", url.rstrip("/\\"))[-1]
    tail = tail[:-4] if tail.endswith(".git") else tail
    name = re.sub(r"[^a-z0-9-]+", "-", tail.lower()).strip("-")
    return name[:63].rstrip("-") or "desired-state"


def redact_url(url: str) -> str:
    """Hide a password or token in ``https://user:token@host/…``."""
    return re.sub(r"(://[^/@:]+):[^/@]*@", r"\1:***@", url)


def _git_problem(exc: git.GitCommandError) -> str:
    text = str(exc.stderr or exc).strip().replace("stderr:", "").strip(" '\n")
    return re.sub(r"\s+", " ", text)[:400]


def _subpath(path: str) -> str:
    """A checked, normalised folder inside the repository ('' for its root)."""
    text = path.strip().replace("\\", "/")
    parts = PurePosixPath(text).parts if text else ()
    if text.startswith("/") or ".." in parts:
        raise UserError(f"--path {path!r} must be a folder inside the repository, like clusters/")
    return "/".join(p for p in parts if p not in (".", ""))


def export_tree(repo: git.Repo, sha: str, dest: Path, subpath: str = "") -> None:
    """Write the files of ``sha`` (below ``subpath``) into ``dest``, as they are in the commit.

    A ``subpath`` the commit does not have exports nothing (callers say which folder is missing).
    """
    buffer = io.BytesIO()
    dest.mkdir(parents=True, exist_ok=True)
    if subpath:
        try:
            repo.commit(sha).tree.join(subpath)
        except KeyError:
            return
    try:
        if subpath:
            repo.archive(buffer, treeish=sha, format="tar", path=subpath)
        else:
            repo.archive(buffer, treeish=sha, format="tar")
    except git.GitCommandError as exc:
        raise UserError(
            f"cannot read {subpath or 'the tree'} at commit {sha[:12]}: {_git_problem(exc)}"
        ) from None
    buffer.seek(0)
    dest.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=buffer, mode="r:") as archive:
        if hasattr(tarfile, "data_filter"):
            archive.extractall(dest, filter="data")
        else:  # pragma: no cover - Python 3.11 before 3.11.4
            archive.extractall(dest)  # noqa: S202 - our own repository's tree


def commit_of(repo: git.Repo, rev: str) -> Commit:
    found = repo.commit(rev)
    author = f"{found.author.name} <{found.author.email}>"
    summary = found.message if isinstance(found.message, str) else found.message.decode(errors="replace")
    return Commit(
        sha=found.hexsha,
        author=author,
        message=summary.strip().splitlines()[0] if summary.strip() else "",
        when=datetime.fromtimestamp(found.committed_date, UTC),
        committer=f"{found.committer.name} <{found.committer.email}>",
    )


class GitSource:
    """A repository's bare clone under ``home``, fetched on demand; commits exported to folders."""

    def __init__(self, url: str, home: Path, *, branch: str = "main", path: str = "") -> None:
        self.url = str(Path(url).resolve()) if _is_local_path(url) else url
        self.home = home
        self.branch = branch
        self.subpath = _subpath(path)
        self.name = repo_name(self.url)  # a local path resolved first: '.' names its folder
        self._repo: git.Repo | None = None

    @property
    def shown(self) -> str:
        return redact_url(self.url)

    def _open(self) -> git.Repo:
        if self._repo is not None:
            return self._repo
        clone = self.home / CLONE_DIR
        if (clone / "HEAD").exists():
            self._repo = git.Repo(clone)
            if self._repo.remotes.origin.url != self.url:
                self._repo.remotes.origin.set_url(self.url)
            return self._repo
        self.home.mkdir(parents=True, exist_ok=True)
        partial = self.home / (CLONE_DIR + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        try:
            git.Repo.clone_from(self.url, partial, bare=True)
        except git.GitCommandError as exc:
            shutil.rmtree(partial, ignore_errors=True)
            raise UserError(f"cannot clone {self.shown}: {_git_problem(exc)}") from None
        partial.rename(clone)
        self._repo = git.Repo(clone)
        return self._repo

    def fetch(self) -> Commit:
        """Fetch the branch and return the commit at its tip."""
        repo = self._open()
        ref = f"refs/remotes/origin/{self.branch}"
        try:
            repo.git.fetch("--prune", "--no-tags", "origin", f"+refs/heads/{self.branch}:{ref}")
        except git.GitCommandError as exc:
            raise UserError(
                f"cannot fetch branch {self.branch!r} from {self.shown}: {_git_problem(exc)}"
            ) from None
        return commit_of(repo, ref)

    def resolve(self, rev: str) -> Commit:
        """Fetch every branch and tag, then find ``rev`` (a branch, tag or commit sha)."""
        repo = self._open()
        try:
            repo.git.fetch(
                "--prune", "origin", "+refs/heads/*:refs/remotes/origin/*", "+refs/tags/*:refs/tags/*"
            )
        except git.GitCommandError as exc:
            raise UserError(f"cannot fetch {self.shown}: {_git_problem(exc)}") from None
        for candidate in (f"refs/remotes/origin/{rev}", rev):
            try:
                return commit_of(repo, candidate)
            except (git.BadName, ValueError, git.GitCommandError):
                continue
        raise UserError(f"--rev {rev!r} is not a branch, tag or commit of {self.shown}")

    def has(self, sha: str) -> bool:
        """Whether the clone holds this commit (``commit()`` alone would not check)."""
        try:
            self._open().git.cat_file("-e", f"{sha}^{{commit}}")
            return True
        except git.GitCommandError:
            return False

    def commit(self, sha: str) -> Commit:
        return commit_of(self._open(), sha)

    def folder_tree(self, commit: Commit) -> str | None:
        """The git tree of the desired-state folder (``--path``) at the commit; None if it has none."""
        tree = self._open().commit(commit.sha).tree
        try:
            return (tree / self.subpath).hexsha if self.subpath else str(tree.hexsha)
        except KeyError:
            return None

    def root(self, commit: Commit) -> Path:
        """The folder the commit's tree is exported to (named after the repository)."""
        return self.home / CHECKOUTS_DIR / commit.sha / self.name

    def checkout(self, commit: Commit) -> Path:
        """Export the commit (once) and return the desired-state folder inside it."""
        root = self.root(commit)
        if not root.exists():
            staging = root.parent / (self.name + ".partial")
            shutil.rmtree(staging, ignore_errors=True)
            export_tree(self._open(), commit.sha, staging, self.subpath)
            staging.rename(root)
        target = root / self.subpath if self.subpath else root
        if not target.exists():
            raise UserError(
                f"commit {commit.short} of {self.shown} has no folder {self.subpath!r}; check --path"
            )
        return target

    def prune(self, keep: Collection[str]) -> None:
        """Delete the exported checkouts of every commit not in ``keep``."""
        folder = self.home / CHECKOUTS_DIR
        if not folder.exists():
            return
        for child in folder.iterdir():
            if child.name not in keep:
                shutil.rmtree(child, ignore_errors=True)

    def relative(self, error: UserError, commit: Commit) -> UserError:
        """The same diagnostics with repository-relative file names."""
        return relative_diagnostics(error, self.root(commit))


def relative_diagnostics(error: UserError, root: Path) -> UserError:
    """The same error (a ``PolicyDeniedError`` stays one) with file names relative to ``root``."""
    prefix = str(root) + "/"
    kind = PolicyDeniedError if isinstance(error, PolicyDeniedError) else UserError
    return kind(
        [
            Diagnostic(d.file[len(prefix) :] if d.file.startswith(prefix) else d.file, d.line, d.message)
            for d in error.diagnostics
        ]
    )


def _is_local_path(url: str) -> bool:
    return "://" not in url and not re.match(r"^[^/]+@[^/]+:", url)


@contextmanager
def temporary_checkout(
    url: str, *, branch: str, rev: str | None, path: str
) -> Iterator[tuple[Path, Commit, str | None, str]]:
    """Check a commit (``rev``, else the tip of ``branch``) out into a temporary folder.

    Yields (the desired-state folder in it, the commit, the folder's git tree, the folder inside
    the repository); the folder is deleted afterwards.
    """
    with tempfile.TemporaryDirectory(prefix="reconciler-source-") as tmp:
        source = GitSource(url, Path(tmp), branch=branch, path=path)
        commit = source.resolve(rev) if rev else source.fetch()
        try:
            yield source.checkout(commit), commit, source.folder_tree(commit), source.subpath
        except UserError as exc:
            raise source.relative(exc, commit) from None
