"""console.access: who is asking — users and tokens of the Console document, checked by argon2id.

Every hash is a secret reference, read when it is needed (a rotated hash takes effect at
the next login, with no restart). A hash that cannot be read, or is not an argon2id
hash, fails the login and is logged by its reference, never its value; neither a password
nor a token is ever logged. An unknown user name costs the same argon2 verification as a
known one, so timing does not tell which names exist. A bearer token, once verified, is
remembered for a minute by its SHA-256 (argon2 is slow on purpose; an API client calls
often).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

import structlog
from argon2 import PasswordHasher, extract_parameters
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from reconciler.core.console_model import ConsoleSpec, Role
from reconciler.core.errors import UserError
from reconciler.core.model import SecretRef

log = structlog.get_logger("reconciler.console")

ARGON2ID_PREFIX = "$argon2id$"
TOKEN_CACHE_SECONDS = 60.0
_TOKEN_CACHE_MAX = 256
MAX_SECRET_INPUT = 1024  # longer passwords or tokens are refused before hashing


class AuthMethod(StrEnum):
    PASSWORD = "password"
    TOKEN = "token"
    OIDC = "oidc"
    LOCAL = "local"  # no Console document, loopback only: read-only and anonymous


@dataclass(frozen=True)
class Principal:
    """Someone the console knows: a user, a token or an OpenID login, and the role they act with."""

    name: str
    role: Role
    via: AuthMethod

    @property
    def actor(self) -> str:
        """How the audit ledger names them."""
        return f"console:{self.name}"

    def may(self, needed: Role) -> bool:
        return self.role.allows(needed)


LOCAL_VIEWER = Principal("local", Role.VIEWER, AuthMethod.LOCAL)


def hash_secret(text: str) -> str:
    """An argon2id hash of a password or token (argon2-cffi's defaults, RFC 9106's second choice)."""
    return PasswordHasher().hash(text)


def new_token() -> str:
    """A fresh API token: 32 random bytes, URL-safe."""
    return secrets.token_urlsafe(32)


class Verifier:
    """Checks passwords and tokens against the hashes a Console document names."""

    def __init__(self, spec: ConsoleSpec | None, resolve: Callable[[SecretRef], str]) -> None:
        self.spec = spec
        self._resolve = resolve
        self._hasher = PasswordHasher()
        self._dummy: str | None = None  # what an unknown user name is checked against
        self._tokens: dict[str, tuple[Principal, float]] = {}
        self._lock = threading.Lock()

    def _hash(self, ref: SecretRef, whose: str) -> str | None:
        try:
            text = self._resolve(ref).strip()
        except UserError as exc:
            log.warning("console hash unreadable; the login is refused", who=whose, reason=str(exc))
            return None
        if not text.startswith(ARGON2ID_PREFIX):
            log.warning(
                "console hash is not an argon2id hash; the login is refused", who=whose, secret=str(ref)
            )
            return None
        return text

    def _dummy_hash(self) -> str:
        """A hash of nothing, as costly as the declared ones (the first readable one's parameters)."""
        if self._dummy is None:
            hasher = self._hasher
            for user in self.spec.users if self.spec is not None else ():
                hashed = self._hash(user.password_hash, f"user {user.name}")
                if hashed is not None:
                    try:
                        hasher = PasswordHasher.from_parameters(extract_parameters(hashed))
                    except InvalidHashError:
                        continue
                    break
            self._dummy = hasher.hash(secrets.token_hex(16))
        return self._dummy

    def _matches(self, hashed: str | None, offered: str) -> bool:
        try:
            return self._hasher.verify(hashed or self._dummy_hash(), offered) and hashed is not None
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    def password(self, username: str, password: str) -> Principal | None:
        """The user, when the password is theirs; None otherwise (unknown user, wrong password)."""
        if self.spec is None or not password or len(password) > MAX_SECRET_INPUT or len(username) > 64:
            return None
        user = self.spec.user(username)
        hashed = self._hash(user.password_hash, f"user {user.name}") if user is not None else None
        if not self._matches(hashed, password) or user is None:
            return None
        return Principal(user.name, user.role, AuthMethod.PASSWORD)

    def token(self, offered: str) -> Principal | None:
        """The token's principal, when ``offered`` is one of the declared tokens."""
        if self.spec is None or not offered or len(offered) > MAX_SECRET_INPUT:
            return None
        digest = hashlib.sha256(offered.encode()).hexdigest()
        now = time.monotonic()
        with self._lock:
            cached = self._tokens.get(digest)
        if cached is not None and cached[1] > now:
            return cached[0]
        found: Principal | None = None
        for token in self.spec.tokens:
            hashed = self._hash(token.token_hash, f"token {token.name}")
            if hashed is not None and self._matches(hashed, offered):
                found = Principal(token.name, token.role, AuthMethod.TOKEN)
                break
        if found is None:
            return None
        with self._lock:
            if len(self._tokens) >= _TOKEN_CACHE_MAX:
                self._tokens.clear()
            self._tokens[digest] = (found, now + TOKEN_CACHE_SECONDS)
        return found


def same(a: str, b: str) -> bool:
    """Constant-time comparison of two texts."""
    return hmac.compare_digest(a.encode(), b.encode())
