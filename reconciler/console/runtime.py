"""console.runtime: what every route works with, and who is asking.

``Runtime`` holds the console's collaborators: the loop it asks (``port``), the snapshot
cache, the store to read (and, beside the daemon, to record requests in), the cookie
signer, the rate limiter and the templates. ``identify`` answers who a request comes from:

1. ``Authorization: Bearer TOKEN`` — a token of the Console document, or nobody (a bad
   token never falls back to a cookie, and counts against the address's rate limit);
2. the session cookie — signed, unexpired, and its user still declared (the role is the
   one declared now: a change in git takes effect at once; a removed user is signed out);
3. without a Console document, on a loopback address only: an anonymous, read-only viewer.

``require`` raises ``Unauthorized`` (401, or a redirect to ``/login`` for a page) or
``Forbidden`` (403); ``check_csrf`` makes every state-changing request of a session carry
its CSRF token (``X-CSRF-Token``, or the ``csrf`` form field). Bearer requests need none:
a browser never sends a bearer token by itself.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from jinja2 import Environment
from starlette.requests import Request

from reconciler.billing.modes import Ledger
from reconciler.config import resolve_secret
from reconciler.console.access import LOCAL_VIEWER, AuthMethod, Principal, Verifier, same
from reconciler.console.guard import RateLimiter
from reconciler.console.port import DaemonPort
from reconciler.console.session import SESSION_COOKIE, Session, Signer, read_session
from reconciler.console.snapshot import SnapshotCache
from reconciler.core.console_model import ConsoleSpec, Role
from reconciler.run.workspace import Workspace
from reconciler.store.base import Store

UsageRenderer = Callable[[Ledger, str, str], str]  # (ledger, by, mode) -> the report's HTML body


class Unauthorized(Exception):
    """Nobody is signed in (or the bearer token is not one of ours)."""


class Forbidden(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class TooMany(Exception):
    def __init__(self, retry_after: float) -> None:
        super().__init__(f"too many failed attempts; try again in {int(retry_after) + 1} s")
        self.retry_after = retry_after


@dataclass
class Runtime:
    port: DaemonPort
    cache: SnapshotCache
    ws: Workspace
    signer: Signer
    templates: Environment
    loopback: bool  # the listener is on a loopback address
    writable: bool  # requests may be recorded (beside the daemon); reconciler console is read-only
    limiter: RateLimiter = field(default_factory=RateLimiter)
    usage_html: UsageRenderer | None = None
    clock: Callable[[], float] = time.time
    extra: dict[str, Any] = field(default_factory=dict)  # the OpenID client, when configured
    _verifier: tuple[int, Verifier] | None = None

    @property
    def spec(self) -> ConsoleSpec | None:
        return self.cache.access

    def verifier(self) -> Verifier:
        spec = self.spec
        if self._verifier is None or self._verifier[0] != id(spec):
            self._verifier = (id(spec), Verifier(spec, resolve_secret))
        return self._verifier[1]

    def store(self) -> Store | None:
        """The store to read (None before anything was ever written)."""
        return self.ws.existing_store()

    def writer(self) -> Store:
        return self.ws.store()

    @property
    def closed(self) -> bool:
        """Not on a loopback address, and no Console document: nobody may use the console."""
        return self.spec is None and not self.loopback

    @property
    def open_access(self) -> bool:
        """No Console document, on a loopback address: everyone local is a viewer."""
        return self.spec is None and self.loopback


def client_address(request: Request) -> str:
    return request.client.host if request.client is not None else "unknown"


def bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    return value.strip() if scheme.lower() == "bearer" else None


def session_of(request: Request, rt: Runtime) -> Session | None:
    session = read_session(rt.signer, request.cookies.get(SESSION_COOKIE), rt.clock())
    if session is None:
        return None
    spec = rt.spec
    if spec is None:
        return None
    if session.via is AuthMethod.PASSWORD:
        user = spec.user(session.name)
        if user is None:
            return None
        return Session(session.name, user.role, session.via, session.csrf, session.expires)
    if session.via is AuthMethod.OIDC and spec.oidc is not None:
        role = spec.oidc.role_for(list(session.groups))
        if role is None:
            return None
        return Session(session.name, role, session.via, session.csrf, session.expires, session.groups)
    return None


def identify(request: Request, rt: Runtime) -> tuple[Principal | None, Session | None]:
    """Who the request comes from, and their session when it came with one (see the module text)."""
    token = bearer(request)
    if token is not None:
        address = client_address(request)
        wait = rt.limiter.retry_after(address)
        if wait > 0:
            raise TooMany(wait)
        principal = rt.verifier().token(token)
        if principal is None:
            rt.limiter.failed(address)
            raise Unauthorized
        return principal, None
    session = session_of(request, rt)
    if session is not None:
        return session.principal, session
    if rt.open_access:
        return LOCAL_VIEWER, None
    return None, None


def require(request: Request, rt: Runtime, role: Role = Role.VIEWER) -> tuple[Principal, Session | None]:
    principal, session = identify(request, rt)
    if principal is None:
        raise Unauthorized
    if not principal.may(role):
        raise Forbidden(f"this needs the {role.value} role; {principal.name} is a {principal.role.value}")
    return principal, session


def check_csrf(request: Request, session: Session | None, form_value: str | None = None) -> None:
    """A session's state-changing request must carry its CSRF token (a bearer request needs none)."""
    if session is None:
        if bearer(request) is not None:
            return
        raise Forbidden("this request needs a signed-in session and its CSRF token")
    offered = request.headers.get("x-csrf-token") or form_value or ""
    if not offered or not same(offered, session.csrf):
        raise Forbidden("missing or wrong CSRF token; reload the page and try again")
