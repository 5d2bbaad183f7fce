"""config.secrets: read secret references (``env:NAME``, ``file:PATH``) — only when a value is needed.

Desired state never holds a secret's value, only a ``SecretRef``: plans, logs and the
ledgers show ``(sensitive)``. The engine calls ``check_secrets`` before applying anything,
so a missing secret stops the run up front with every missing one listed, each at the
line where the reference was written; the values themselves are read again inside the
provider call (``render_user_data(server, resolve_secret)``).

A relative ``file:`` path in YAML is relative to the YAML file that names it; the loader
rewrites it to a path usable from the current directory before it gets here.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import Path

from reconciler.core.errors import Diagnostic, UserError
from reconciler.core.keys import format_member
from reconciler.core.model import DesiredServer, SecretRef

_LOCATED = re.compile(r"\((?P<file>.+):(?P<line>\d+)\)$")


def resolve_secret(ref: SecretRef) -> str:
    """The secret's value: an environment variable, or a file's text without one trailing newline."""
    if ref.scheme == "env":
        value = os.environ.get(ref.target)
        if value is None:
            raise UserError(f"secret {ref} is not set; export {ref.target} or change the reference")
        return value
    if ref.scheme == "file":
        try:
            text = Path(ref.target).read_text(encoding="utf-8")
        except FileNotFoundError:
            raise UserError(f"secret {ref} does not exist; create the file or change the reference") from None
        except UnicodeDecodeError:
            raise UserError(f"secret {ref} is not UTF-8 text; save it as UTF-8") from None
        except OSError as exc:
            raise UserError(
                f"secret {ref} cannot be read ({exc.strerror}); check the path and its permissions"
            ) from None
        if text.endswith("\r\n"):
            return text[:-2]
        return text[:-1] if text.endswith("\n") else text
    raise UserError(f"secret {ref} has an unknown scheme; use env:NAME or file:PATH")


def locate(source: str) -> tuple[str, int] | None:
    """``("inputs.yaml", 7)`` from a ResolvedInput source such as ``Inputs global (inputs.yaml:7)``."""
    match = _LOCATED.search(source)
    if match is None:
        return None
    return match["file"], int(match["line"])


def check_secrets(servers: Iterable[DesiredServer]) -> None:
    """Resolve every secret the servers use; raise one UserError listing every one that is missing."""
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
