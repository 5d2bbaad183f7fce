"""core.console_model: the Console kind's values — who may use the web console, and with which role.

A ``Console`` document declares, in git, the users (a password hash each), the API tokens
(a token hash each) and an optional OpenID Connect login, every secret by reference only
(``SecretRef``: read when someone logs in, never kept in the desired state). Roles are a
closed, ordered set: ``viewer`` reads, ``operator`` also asks the daemon to act (sync now,
run due backups, retry a failed server), ``admin`` also acknowledges alerts.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from reconciler.core.model import SecretRef, SourceLocation


class Role(StrEnum):
    """What a console user may do (closed, ordered: each role may do all the one before may)."""

    VIEWER = "viewer"
    OPERATOR = "operator"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        return _RANK[self]

    def allows(self, needed: Role) -> bool:
        """This role may do what ``needed`` may."""
        return self.rank >= needed.rank


_RANK = {Role.VIEWER: 0, Role.OPERATOR: 1, Role.ADMIN: 2}

DEFAULT_SESSION_HOURS = 12.0
MAX_SESSION_HOURS = 168.0


@dataclass(frozen=True)
class ConsoleUser:
    """A user who logs in with a password; ``password_hash`` names an argon2id hash."""

    name: str
    role: Role
    password_hash: SecretRef
    location: SourceLocation | None = None


@dataclass(frozen=True)
class ConsoleToken:
    """An API token (``Authorization: Bearer …``); ``token_hash`` names an argon2id hash of it."""

    name: str
    role: Role
    token_hash: SecretRef
    location: SourceLocation | None = None


@dataclass(frozen=True)
class OidcLogin:
    """Log in through an OpenID provider; the ``roles_claim`` values map to roles by ``roles``."""

    issuer: str
    client_id: str
    client_secret: SecretRef
    roles_claim: str = "groups"
    roles: tuple[tuple[str, Role], ...] = ()  # claim value → role, sorted by claim value
    scopes: tuple[str, ...] = ("openid", "profile", "email")
    location: SourceLocation | None = None

    def role_for(self, claimed: object) -> Role | None:
        """The highest role any of the claim's values maps to (a string or a list of strings)."""
        values = [claimed] if isinstance(claimed, str) else claimed if isinstance(claimed, list) else []
        mapping = dict(self.roles)
        found = [mapping[v] for v in values if isinstance(v, str) and v in mapping]
        return max(found, key=lambda r: r.rank) if found else None


@dataclass(frozen=True)
class ConsoleSpec:
    """The one Console document of a desired state."""

    name: str
    users: tuple[ConsoleUser, ...] = ()  # sorted by name
    tokens: tuple[ConsoleToken, ...] = ()  # sorted by name
    oidc: OidcLogin | None = None
    session_hours: float = DEFAULT_SESSION_HOURS
    location: SourceLocation | None = None

    def user(self, name: str) -> ConsoleUser | None:
        return next((u for u in self.users if u.name == name), None)
