"""run.plan_key: the key that signs plan files — from the environment, a file, or the state dir.

Looked up in this order, the first that is set wins:

1. ``RECONCILER_PLAN_KEY`` — the key itself (at least 32 characters; a CI secret shared by
   the job that plans and the job that applies);
2. ``RECONCILER_PLAN_KEY_FILE`` — a file holding it (a mounted secret);
3. ``plan.key`` in the state dir, made on first use (32 random bytes, hex, mode 0600).

The key never appears in a plan, a log or an error (only its ``key_id``). Rotating it is
replacing it: plans signed with the old key are then refused with "signed with another
plan key" and must be made again.
"""

from __future__ import annotations

import os
import secrets
import stat
from pathlib import Path

from reconciler.core.errors import UserError

ENV_KEY = "RECONCILER_PLAN_KEY"
ENV_FILE = "RECONCILER_PLAN_KEY_FILE"
KEY_FILE = "plan.key"
MIN_LENGTH = 32
MAX_FILE_BYTES = 4096


def plan_key(state_dir: Path) -> bytes:
    """The plan-signing key (created in ``state_dir`` when none is configured)."""
    value = os.environ.get(ENV_KEY)
    if value is not None:
        return _checked(value.strip(), f"${ENV_KEY}")
    named = os.environ.get(ENV_FILE)
    if named:
        return _checked(_read(Path(named)), f"${ENV_FILE}")
    path = state_dir / KEY_FILE
    if not path.exists():
        _create(path)
    return _checked(_read(path), str(path))


def _checked(text: str, where: str) -> bytes:
    if len(text) < MIN_LENGTH:
        raise UserError(f"the plan key in {where} is shorter than {MIN_LENGTH} characters; use a longer one")
    return text.encode("utf-8")


def _read(path: Path) -> str:
    try:
        info = path.stat()
        if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_FILE_BYTES:
            raise UserError(f"the plan key file {path} is not a regular file of at most {MAX_FILE_BYTES} B")
        return path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise UserError(f"cannot read the plan key file {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise UserError(f"the plan key file {path} is not text") from None


def _create(path: Path) -> None:
    """Write a new key whole, then link it into place: a concurrent reader never sees half a key."""
    tmp = path.with_name(f".{KEY_FILE}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(secrets.token_hex(32) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass  # another process made it first: use theirs
    except OSError as exc:
        raise UserError(f"cannot create the plan key file {path}: {exc.strerror}") from None
    finally:
        tmp.unlink(missing_ok=True)
