"""config.console: a schema-valid ``Console`` document → a typed ``core.console_model.ConsoleSpec``.

What the schema cannot say is checked here, each problem at its line: a user and a token
may not share a name (both would log as ``console:<name>``), an OpenID issuer is https
unless it is on a loopback address, and a desired state holds at most one Console
document. Hashes and the client secret stay references (``SecretRef``); a relative
``file:`` path is taken from the YAML file, as for every other secret.
"""

from __future__ import annotations

import ipaddress
import urllib.parse
from collections.abc import Sequence
from typing import Any

from reconciler.config.documents import Problems, input_value
from reconciler.config.yamlsafe import Document, YamlPath
from reconciler.core.console_model import (
    DEFAULT_SESSION_HOURS,
    ConsoleSpec,
    ConsoleToken,
    ConsoleUser,
    OidcLogin,
    Role,
)
from reconciler.core.errors import Diagnostic
from reconciler.core.model import SecretRef, SourceLocation

LOOPBACK_NAMES = ("localhost",)


def is_loopback(host: str) -> bool:
    """``127.0.0.1``, ``::1``, ``localhost`` (and the rest of 127/8)."""
    host = host.strip("[]").lower()
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _secret(doc: Document, raw: Any, path: YamlPath) -> SecretRef:
    value = input_value(doc, raw, path).value
    assert isinstance(value, SecretRef), "the schema admits only secret references here"
    return value


def _where(doc: Document, path: YamlPath) -> SourceLocation:
    return SourceLocation(doc.file, doc.line_of(path))


def _issuer_problem(issuer: str) -> str | None:
    try:
        parts = urllib.parse.urlsplit(issuer)
        parts.port  # noqa: B018 - ValueError when not a number from 0 to 65535
    except ValueError:
        return f"spec.oidc.issuer {issuer!r} has a port that is not a number from 1 to 65535; fix the port"
    if not parts.hostname:
        return f"spec.oidc.issuer {issuer!r} names no host; write it like https://idp.example.com"
    if parts.scheme != "https" and not is_loopback(parts.hostname):
        return (
            f"spec.oidc.issuer {issuer!r} is not https://; an OpenID provider is reached over TLS "
            "(http:// is accepted on a loopback address only, for testing)"
        )
    if parts.query or parts.fragment:
        return f"spec.oidc.issuer {issuer!r} has a query or fragment; give the issuer URL alone"
    return None


def _oidc(doc: Document, raw: dict[str, Any], problems: Problems) -> OidcLogin | None:
    path: YamlPath = ("spec", "oidc")
    problem = _issuer_problem(str(raw["issuer"]))
    if problem is not None:
        problems.append(Diagnostic(doc.file, doc.line_of((*path, "issuer")), problem))
        return None
    scopes = [str(s) for s in raw.get("scopes", ["openid", "profile", "email"])]
    if "openid" not in scopes:
        scopes.insert(0, "openid")
    return OidcLogin(
        issuer=str(raw["issuer"]).rstrip("/"),
        client_id=str(raw["client_id"]),
        client_secret=_secret(doc, raw["client_secret"], (*path, "client_secret")),
        roles_claim=str(raw.get("roles_claim", "groups")),
        roles=tuple(sorted((str(k), Role(v)) for k, v in raw["roles"].items())),
        scopes=tuple(scopes),
        location=_where(doc, path),
    )


def build_console(doc: Document) -> tuple[ConsoleSpec | None, Problems]:
    name, spec = doc.data["metadata"]["name"], doc.data["spec"]
    problems: Problems = []
    users = tuple(
        ConsoleUser(
            name=str(user),
            role=Role(raw["role"]),
            password_hash=_secret(doc, raw["password_hash"], ("spec", "users", user, "password_hash")),
            location=_where(doc, ("spec", "users", user)),
        )
        for user, raw in sorted(spec.get("users", {}).items())
    )
    tokens = tuple(
        ConsoleToken(
            name=str(token),
            role=Role(raw["role"]),
            token_hash=_secret(doc, raw["token_hash"], ("spec", "tokens", token, "token_hash")),
            location=_where(doc, ("spec", "tokens", token)),
        )
        for token, raw in sorted(spec.get("tokens", {}).items())
    )
    for token in tokens:
        if any(u.name == token.name for u in users):
            problems.append(
                Diagnostic(
                    doc.file,
                    doc.line_of(("spec", "tokens", token.name)),
                    f"token {token.name!r} has the name of a user; the audit ledger would not tell them "
                    "apart (both act as console:" + token.name + "): rename the token",
                )
            )
    oidc = _oidc(doc, spec["oidc"], problems) if "oidc" in spec else None
    if problems:
        return None, problems
    return ConsoleSpec(
        name=name,
        users=users,
        tokens=tokens,
        oidc=oidc,
        session_hours=float(spec.get("session_hours", DEFAULT_SESSION_HOURS)),
        location=SourceLocation(doc.file, doc.line),
    ), []


def single_console(consoles: Sequence[ConsoleSpec]) -> tuple[ConsoleSpec | None, Problems]:
    """The one Console document, or a problem at every one after the first."""
    if len(consoles) <= 1:
        return (consoles[0] if consoles else None), []
    first = consoles[0]
    where = f"{first.location.file}:{first.location.line}" if first.location else first.name
    return None, [
        Diagnostic(
            c.location.file if c.location else c.name,
            c.location.line if c.location else None,
            f"a second Console document ({c.name!r}; the first is {first.name!r} at {where}); "
            "declare every user and token in one Console document",
        )
        for c in consoles[1:]
    ]
