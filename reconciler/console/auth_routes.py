"""console.auth_routes: ``GET /login``, ``POST /login``, ``POST /logout``.

The login form carries a hidden ``csrf`` input: the signed tag of a nonce kept in a
short-lived signed cookie, so a form posted from another site (which cannot read the
cookie) is refused. ``POST /login`` takes ``username``, ``password`` and ``csrf``; it is
rate limited per name and per address before any hash is checked; a success sets the
session cookie (a fresh CSRF token with it) and redirects to ``next`` (a path of this
site only). Nothing of what was typed is logged but the user name.
"""

from __future__ import annotations

import secrets
from urllib.parse import quote

import structlog
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from reconciler.console.access import AuthMethod, Principal
from reconciler.console.render import page
from reconciler.console.runtime import Runtime, TooMany, check_csrf, client_address, session_of
from reconciler.console.session import (
    LOGIN_COOKIE,
    LOGIN_FORM_SECONDS,
    SESSION_COOKIE,
    cookie_options,
    new_session,
)
from reconciler.core.console_model import Role

log = structlog.get_logger("reconciler.console")
MAX_FIELD = 1024


def runtime(request: Request) -> Runtime:
    rt: Runtime = request.app.state.console
    return rt


def safe_next(target: str | None) -> str:
    """A path on this site to go to after logging in ('/' for anything else)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    if any(ord(c) < 33 for c in target) or len(target) > 2000:
        return "/"
    return target


def login_redirect(request: Request) -> RedirectResponse:
    wanted = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/login?next={quote(wanted, safe='')}", status_code=303)


def secure(request: Request) -> bool:
    return request.url.scheme == "https"


def _form_page(
    request: Request, rt: Runtime, *, error: str = "", status: int = 200, username: str = ""
) -> Response:
    nonce = secrets.token_urlsafe(24)
    value = rt.signer.sign("login", {"n": nonce, "e": int(rt.clock() + LOGIN_FORM_SECONDS)})
    spec = rt.spec
    response = page(
        rt.templates,
        request,
        "login.html",
        principal=None,
        session=None,
        status=status,
        form_csrf=rt.signer.tag("login-csrf", nonce),
        error=error,
        username=username,
        next=safe_next(request.query_params.get("next")),
        has_users=bool(spec and spec.users),
        oidc=spec.oidc if spec else None,
        no_console=spec is None,
        open_access=rt.open_access,
        closed=rt.closed,
    )
    response.set_cookie(
        LOGIN_COOKIE, value, **cookie_options(secure=secure(request), max_age=LOGIN_FORM_SECONDS)
    )
    return response


async def login_form(request: Request) -> Response:
    rt = runtime(request)
    if session_of(request, rt) is not None:
        return RedirectResponse(safe_next(request.query_params.get("next")), status_code=303)
    return _form_page(request, rt)


async def login(request: Request) -> Response:
    rt = runtime(request)
    form = await request.form()
    username = str(form.get("username") or "")[:MAX_FIELD].strip()
    password = str(form.get("password") or "")[:MAX_FIELD]
    offered = str(form.get("csrf") or "")
    issued = rt.signer.unsign("login", request.cookies.get(LOGIN_COOKIE), rt.clock())
    nonce = str(issued.get("n", "")) if issued else ""
    if not nonce or not offered or not secrets.compare_digest(offered, rt.signer.tag("login-csrf", nonce)):
        return _form_page(
            request,
            rt,
            status=403,
            username=username,
            error="the login form expired or did not come from this site; try again",
        )
    address = client_address(request)
    wait = rt.limiter.retry_after(address, username or None)
    if wait > 0:
        log.warning("console login refused: rate limited", user=username, client=address)
        raise TooMany(wait)
    principal = rt.verifier().password(username, password)
    if principal is None:
        rt.limiter.failed(address, username or None)
        log.warning("console login failed", user=username, client=address)
        return _form_page(request, rt, status=401, username=username, error="wrong user name or password")
    rt.limiter.succeeded(username)
    log.info("console login", user=principal.name, role=principal.role.value, client=address)
    hours = rt.spec.session_hours if rt.spec is not None else 12.0
    return start_session(
        request,
        rt,
        principal.name,
        principal.role,
        AuthMethod.PASSWORD,
        hours,
        safe_next(str(form.get("next") or "/")),
    )


def start_session(
    request: Request,
    rt: Runtime,
    name: str,
    role: Role,
    via: AuthMethod,
    hours: float,
    target: str,
    *,
    claims: list[str] | None = None,
) -> Response:
    """Set a fresh session cookie (a new CSRF token with it) and redirect to ``target``."""
    session = new_session(Principal(name, role, via), hours, rt.clock(), tuple(claims or ()))
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        rt.signer.sign("session", session.payload()),
        **cookie_options(secure=secure(request), max_age=int(hours * 3600)),
    )
    response.delete_cookie(LOGIN_COOKIE, path="/")
    return response


async def logout(request: Request) -> Response:
    rt = runtime(request)
    session = session_of(request, rt)
    form = await request.form()
    if session is not None:
        check_csrf(request, session, str(form.get("csrf") or ""))
        log.info("console logout", user=session.name)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response
