"""config.secrets: read secret references (``env:NAME``, ``file:PATH``) — only when a value is needed.

Desired state never holds a secret's value, only a ``SecretRef``: plans, logs and the
ledgers show ``(sensitive)``. The engine calls ``check_secrets`` before applying anything,
so a missing secret stops the run up front with every missing one listed, each at the
line where the reference was written; once they all resolve, it renders every server's
scripts with them (``render_problems``), so a script that fails only with the real values
stops the run there too. The values themselves are read again inside the provider call
(``render_user_data(server, resolve_secret)``).

A ``file:`` secret must be a regular file of at most ``MAX_SECRET_FILE_BYTES``, outside
``/proc``, ``/sys`` and ``/dev`` once symbolic links are resolved (``file:/proc/self/environ``
would hand every environment variable to a script). The file is checked with ``stat``
before it is opened, and opened non-blocking, so a FIFO never hangs the run.

A relative ``file:`` path in YAML is relative to the YAML file that names it; the loader
rewrites it to a path usable from the current directory before it gets here.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Iterable

from reconciler.config.scripts import render_problems
from reconciler.core.errors import Diagnostic, UserError
from reconciler.core.keys import format_member
from reconciler.core.model import DesiredServer, SecretRef

_LOCATED = re.compile(r"\((?P<file>.+):(?P<line>\d+)\)$")
MAX_SECRET_FILE_BYTES = 64 * 1024
SYSTEM_TREES = ("/proc", "/sys", "/dev")  # live kernel and device state, never a secret file
_KINDS = {
    stat.S_IFDIR: "a directory",
    stat.S_IFIFO: "a FIFO (named pipe)",
    stat.S_IFSOCK: "a socket",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
}


def resolve_secret(ref: SecretRef) -> str:
    """The secret's value: an environment variable, or a file's text without one trailing newline."""
    if ref.scheme == "env":
        value = os.environ.get(ref.target)
        if value is None:
            raise UserError(f"secret {ref} is not set; export {ref.target} or change the reference")
        return value
    if ref.scheme == "file":
        text = _read_secret_file(ref)
        if text.endswith("\r\n"):
            return text[:-2]
        return text[:-1] if text.endswith("\n") else text
    raise UserError(f"secret {ref} has an unknown scheme; use env:NAME or file:PATH")


def _read_secret_file(ref: SecretRef) -> str:
    """The text of a ``file:`` secret, refused unless it is a small regular file outside the system trees."""
    real = os.path.realpath(ref.target)
    via = f" (a link to {real})" if real != os.path.abspath(ref.target) else ""
    tree = next((t for t in SYSTEM_TREES if real == t or real.startswith(t + "/")), None)
    if tree is not None:
        raise UserError(
            f"secret {ref}{via} is under {tree}, which holds live system state, not secret files; "
            "keep the secret in a file of its own and point the reference at it"
        )
    try:
        before = os.stat(real)
        if not stat.S_ISREG(before.st_mode):
            raise UserError(_not_regular(ref, via, before.st_mode))
        _check_size(ref, via, before.st_size)
        fd = os.open(real, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
        try:
            opened = os.fstat(fd)  # what was opened, should the path have changed since the stat
            if not stat.S_ISREG(opened.st_mode):
                raise UserError(_not_regular(ref, via, opened.st_mode))
            data = b""
            while len(data) <= MAX_SECRET_FILE_BYTES and (chunk := os.read(fd, MAX_SECRET_FILE_BYTES + 1)):
                data += chunk
        finally:
            os.close(fd)
    except FileNotFoundError:
        raise UserError(
            f"secret {ref}{via} does not exist; create the file or change the reference"
        ) from None
    except OSError as exc:
        raise UserError(
            f"secret {ref}{via} cannot be read ({exc.strerror}); check the path and its permissions"
        ) from None
    _check_size(ref, via, len(data))
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise UserError(f"secret {ref} is not UTF-8 text; save it as UTF-8") from None


def _not_regular(ref: SecretRef, via: str, mode: int) -> str:
    kind = _KINDS.get(stat.S_IFMT(mode), "not a regular file")
    return (
        f"secret {ref}{via} is {kind}, not a regular file; point the reference at a file that holds "
        "the secret"
    )


def _check_size(ref: SecretRef, via: str, size: int) -> None:
    if size > MAX_SECRET_FILE_BYTES:
        raise UserError(
            f"secret {ref}{via} is larger than {MAX_SECRET_FILE_BYTES // 1024} KiB; a secret file holds "
            "one secret: point the reference at a smaller file"
        )


def locate(source: str) -> tuple[str, int] | None:
    """``("inputs.yaml", 7)`` from a ResolvedInput source such as ``Inputs global (inputs.yaml:7)``."""
    match = _LOCATED.search(source)
    if match is None:
        return None
    return match["file"], int(match["line"])


def check_secrets(servers: Iterable[DesiredServer]) -> None:
    """Resolve every secret the servers use; raise one UserError listing every one that is missing
    or refused. When all resolve, render the servers' scripts with them and raise one UserError
    listing every script that fails (or boot scripts too large for their provider)."""
    servers = list(servers)
    results: dict[SecretRef, str | None] = {}
    found: dict[tuple[str, int | None, str], Diagnostic] = {}
    for server in servers:
        for item in server.inputs:
            ref = item.value
            if not isinstance(ref, SecretRef):
                continue
            if ref not in results:
                try:
                    resolve_secret(ref)
                    results[ref] = None
                except UserError as exc:
                    results[ref] = exc.diagnostics[0].message
            message = results[ref]
            if message is None:
                continue
            where = locate(item.source)
            if where is not None:
                diagnostic = Diagnostic(where[0], where[1], message)
            elif server.location is not None:
                diagnostic = Diagnostic(
                    server.location.file,
                    server.location.line,
                    f"{message} (input {item.name!r} of {format_member(server.cluster, server.member)})",
                )
            else:
                diagnostic = Diagnostic(
                    format_member(server.cluster, server.member), None, f"{message} (input {item.name!r})"
                )
            found.setdefault((diagnostic.file, diagnostic.line, diagnostic.message), diagnostic)
    if found:
        raise UserError([found[key] for key in sorted(found, key=lambda k: (k[0], k[1] or 0, k[2]))])
    problems = render_problems(servers, resolve_secret)
    if problems:
        raise UserError(problems)
