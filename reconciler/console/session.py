"""console.session: signed, expiring cookies — the session, the login form's nonce, an OpenID login's state.

A cookie's value is ``base64url(JSON) . base64url(HMAC-SHA256(key, purpose . JSON))``: the
purpose (``session``, ``login``, ``oidc``) is signed in, so one kind of cookie never passes
for another, and every payload carries its expiry (``e``, Unix seconds), checked on every
read. A session holds no secret — the user, role, how they signed in and the CSRF token
of this session; the cookie is HttpOnly, SameSite=Lax, Secure when the console is reached
over https (directly, or through a proxy that says so).

The key: ``RECONCILER_CONSOLE_KEY`` (at least 32 characters; every replica behind one
address shares it), else the file named by ``RECONCILER_CONSOLE_KEY_FILE``, else
``console.key`` in the state dir, made on first use (0600). A state dir the console may not
write gets a key of this process only: sessions then end when it restarts.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog

from reconciler.console.access import AuthMethod, Principal
from reconciler.core.console_model import Role
from reconciler.core.errors import NoSpaceError, UserError
from reconciler.run.keys import KeySource

log = structlog.get_logger("reconciler.console")

SESSION_COOKIE = "rc_session"
LOGIN_COOKIE = "rc_login"
OIDC_COOKIE = "rc_oidc"
LOGIN_FORM_SECONDS = 3600  # how long a login form may stay open
MAX_COOKIE = 4096

CONSOLE_KEY = KeySource(
    "console session key", "RECONCILER_CONSOLE_KEY", "RECONCILER_CONSOLE_KEY_FILE", "console.key"
)


def session_key(state_dir: Path) -> bytes:
    """The key that signs the console's cookies (see the module text)."""
    configured = os.environ.get(CONSOLE_KEY.env_key) or os.environ.get(CONSOLE_KEY.env_file)
    try:
        return CONSOLE_KEY.load(state_dir)
    except NoSpaceError:
        raise
    except UserError:
        if configured:
            raise
        log.warning(
            "the console cannot keep its session key in the state dir; sessions end when it restarts "
            f"(set {CONSOLE_KEY.env_key} to keep them)"
        )
        return secrets.token_hex(32).encode()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Signer:
    """Signs and checks the console's cookie values."""

    def __init__(self, key: bytes) -> None:
        self._key = hashlib.sha256(b"reconciler-console|" + key).digest()

    def _mac(self, purpose: str, body: str) -> str:
        return _b64(hmac.new(self._key, f"{purpose}.{body}".encode(), hashlib.sha256).digest())

    def sign(self, purpose: str, payload: dict[str, Any]) -> str:
        body = _b64(json.dumps(payload, separators=(",", ":"), sort_keys=True).encode())
        return f"{body}.{self._mac(purpose, body)}"

    def unsign(self, purpose: str, value: str | None, now: float) -> dict[str, Any] | None:
        """The payload, when ``value`` was signed for ``purpose`` and has not expired; else None."""
        if not value or len(value) > MAX_COOKIE or value.count(".") != 1:
            return None
        body, mac = value.split(".")
        if not hmac.compare_digest(mac, self._mac(purpose, body)):
            return None
        try:
            payload = json.loads(_unb64(body))
        except (ValueError, binascii.Error):
            return None
        if not isinstance(payload, dict) or not isinstance(payload.get("e"), int | float):
            return None
        return payload if payload["e"] > now else None

    def tag(self, purpose: str, text: str) -> str:
        """A MAC of ``text`` for ``purpose`` (the login form's CSRF token is the tag of its nonce)."""
        return self._mac(purpose, text)


@dataclass(frozen=True)
class Session:
    """One signed-in browser: who, with which role, how, its CSRF token and when it ends."""

    name: str
    role: Role
    via: AuthMethod
    csrf: str
    expires: int
    groups: tuple[str, ...] = ()  # an OpenID login's roles-claim values (its role follows them)

    @property
    def principal(self) -> Principal:
        return Principal(self.name, self.role, self.via)

    def payload(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "u": self.name,
            "r": self.role.value,
            "m": self.via.value,
            "c": self.csrf,
            "e": self.expires,
        }
        if self.groups:
            data["g"] = list(self.groups)
        return data

    @classmethod
    def from_payload(cls, data: dict[str, Any]) -> Session | None:
        try:
            return cls(
                name=str(data["u"]),
                role=Role(data["r"]),
                via=AuthMethod(data["m"]),
                csrf=str(data["c"]),
                expires=int(data["e"]),
                groups=tuple(str(g) for g in data.get("g", ())),
            )
        except (KeyError, ValueError, TypeError):
            return None


def new_session(principal: Principal, hours: float, now: float, groups: tuple[str, ...] = ()) -> Session:
    return Session(
        name=principal.name,
        role=principal.role,
        via=principal.via,
        csrf=secrets.token_urlsafe(32),
        expires=int(now + hours * 3600),
        groups=groups,
    )


def read_session(signer: Signer, value: str | None, now: float) -> Session | None:
    payload = signer.unsign("session", value, now)
    return Session.from_payload(payload) if payload is not None else None


def cookie_options(*, secure: bool, max_age: int | None) -> dict[str, Any]:
    """What every cookie of the console is set with."""
    return {"httponly": True, "samesite": "lax", "secure": secure, "path": "/", "max_age": max_age}
