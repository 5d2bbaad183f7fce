"""run.keys: the secret keys that sign plan files and anchor the ledgers — never in a plan, a log or git.

Each key is looked up in the same order, the first that is set wins:

1. an environment variable holding the key itself (at least 32 characters; in CI, a secret);
2. an environment variable naming a file that holds it (a mounted secret);
3. a key file made on first use (32 random bytes, hex, mode 0600) in a default folder.

* plan signing (``core.plan_signature``): ``RECONCILER_PLAN_KEY``, ``RECONCILER_PLAN_KEY_FILE``,
  ``plan.key`` in the state dir;
* ledger anchors (``run.anchor``): ``RECONCILER_AUDIT_KEY``, ``RECONCILER_AUDIT_KEY_FILE``,
  ``audit.key`` in the anchor dir.

Only a key's id (a hash) ever appears in output. Rotating a key is replacing it.
"""

from __future__ import annotations

import os
import secrets
import stat
from dataclasses import dataclass
from pathlib import Path

from reconciler.core.errors import NoSpaceError, UserError
from reconciler.run.files import write_atomic

MIN_LENGTH = 32
MAX_FILE_BYTES = 4096


@dataclass(frozen=True)
class KeySource:
    """Where one kind of key is looked for."""

    what: str  # "plan key", "audit key": for messages
    env_key: str
    env_file: str
    file_name: str

    def load(self, default_dir: Path) -> bytes:
        """The key (created in ``default_dir`` when none is configured)."""
        value = os.environ.get(self.env_key)
        if value is not None:
            return self._checked(value.strip(), f"${self.env_key}")
        named = os.environ.get(self.env_file)
        if named:
            return self._checked(self._read(Path(named)), f"${self.env_file}")
        path = default_dir / self.file_name
        if not path.exists():
            self._create(path)
        return self._checked(self._read(path), str(path))

    def _checked(self, text: str, where: str) -> bytes:
        if len(text) < MIN_LENGTH:
            raise UserError(f"the {self.what} in {where} is shorter than {MIN_LENGTH} characters; use longer")
        return text.encode("utf-8")

    def _read(self, path: Path) -> str:
        try:
            info = path.stat()
            if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_FILE_BYTES:
                raise UserError(f"the {self.what} file {path} is not a regular file of ≤ {MAX_FILE_BYTES} B")
            return path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise UserError(f"cannot read the {self.what} file {path}: {exc.strerror}") from None
        except UnicodeDecodeError:
            raise UserError(f"the {self.what} file {path} is not text") from None

    def _create(self, path: Path) -> None:
        """Write a new key whole, then link it into place: a concurrent reader never sees half a key,
        and of two processes making one at once, the first one's stands."""
        try:
            write_atomic(path, secrets.token_hex(32) + "\n", mode=0o600, what=f"{self.what} file",
                         exclusive=True)
        except NoSpaceError:
            raise
        except UserError as exc:  # a read-only folder, say: the key can come from the environment
            raise UserError(
                f"{exc.diagnostics[0].message}; or set ${self.env_key} (at least {MIN_LENGTH} characters) "
                f"or ${self.env_file}"
            ) from None


PLAN_KEY = KeySource("plan key", "RECONCILER_PLAN_KEY", "RECONCILER_PLAN_KEY_FILE", "plan.key")
AUDIT_KEY = KeySource("audit key", "RECONCILER_AUDIT_KEY", "RECONCILER_AUDIT_KEY_FILE", "audit.key")


def plan_key(state_dir: Path) -> bytes:
    """The plan-signing key (``plan.key`` in the state dir when none is configured)."""
    return PLAN_KEY.load(state_dir)
