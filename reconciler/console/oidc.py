"""console.oidc: sign in through an OpenID provider — authorization code flow with PKCE, via authlib.

``GET /oidc/login`` reads the provider's discovery document (``{issuer}/.well-known/
openid-configuration``, kept an hour), keeps a fresh ``state``, ``nonce`` and PKCE verifier
in a signed cookie (ten minutes) and redirects to the provider (``login_hint`` is passed on).
``GET /oidc/callback`` checks the state, exchanges the code for tokens with authlib's OAuth
2 client (the client secret, a secret reference, read now), and verifies the ID token with
joserfc against the provider's keys: signature, issuer, audience, nonce, expiry. The
``roles_claim`` values map to a role by the Console document's ``roles`` (the highest wins);
a login that maps to none is refused. The session keeps those values, so a change of the
mapping in git applies to open sessions at once. Nothing of the tokens is logged.
"""

from __future__ import annotations

import secrets
import time
import warnings
from typing import Any
from urllib.parse import urlencode

import authlib.deprecate  # noqa: F401 - its "always" filter first, so that "ignore" below wins
import httpx
import structlog
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from reconciler.config import resolve_secret
from reconciler.console.access import AuthMethod
from reconciler.console.auth_routes import runtime, safe_next, secure, start_session
from reconciler.console.runtime import Forbidden, Runtime
from reconciler.console.session import OIDC_COOKIE, cookie_options
from reconciler.core.console_model import OidcLogin
from reconciler.core.errors import UserError

with warnings.catch_warnings():  # authlib prefers httpx2 and says so at import; plain httpx works the same
    warnings.simplefilter("ignore")
    from authlib.integrations.httpx_client import AsyncOAuth2Client
    from authlib.oauth2.rfc7636 import create_s256_code_challenge

log = structlog.get_logger("reconciler.console")

FLOW_SECONDS = 600
DISCOVERY_SECONDS = 3600.0
HTTP_TIMEOUT = 10.0
MAX_CLAIM_VALUES = 50
LEEWAY_SECONDS = 60


class ProviderTrouble(Exception):
    """The OpenID provider could not be reached or answered something unusable (answered 502)."""


def _oidc(rt: Runtime) -> OidcLogin:
    spec = rt.spec
    if spec is None or spec.oidc is None:
        raise Forbidden("OpenID login is not configured: the Console document has no oidc section")
    return spec.oidc


async def _json(url: str) -> dict[str, Any]:
    try:
        async with httpx.AsyncClient(timeout=HTTP_TIMEOUT) as client:
            answer = await client.get(url)
        answer.raise_for_status()
        data = answer.json()
    except (httpx.HTTPError, ValueError) as exc:
        raise ProviderTrouble(f"cannot read {url}: {exc}") from None
    if not isinstance(data, dict):
        raise ProviderTrouble(f"{url} did not answer a JSON object")
    return data


async def discovery(rt: Runtime, oidc: OidcLogin) -> dict[str, Any]:
    cache: dict[str, tuple[float, dict[str, Any]]] = rt.extra.setdefault("oidc_discovery", {})
    found = cache.get(oidc.issuer)
    if found is not None and found[0] > time.monotonic():
        return found[1]
    meta = await _json(f"{oidc.issuer}/.well-known/openid-configuration")
    if meta.get("issuer") != oidc.issuer:
        raise ProviderTrouble(f"the provider says its issuer is {meta.get('issuer')!r}, not {oidc.issuer!r}")
    for needed in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
        if not isinstance(meta.get(needed), str):
            raise ProviderTrouble(f"the provider's discovery document has no {needed}")
    cache[oidc.issuer] = (time.monotonic() + DISCOVERY_SECONDS, meta)
    return meta


async def _keys(rt: Runtime, uri: str, *, fresh: bool = False) -> KeySet:
    cache: dict[str, tuple[float, KeySet]] = rt.extra.setdefault("oidc_keys", {})
    found = cache.get(uri)
    if found is not None and found[0] > time.monotonic() and not fresh:
        return found[1]
    try:
        keys = KeySet.import_key_set(await _json(uri))  # type: ignore[arg-type]
    except (JoseError, ValueError, TypeError) as exc:
        raise ProviderTrouble(f"the provider's keys ({uri}) cannot be read: {exc}") from None
    cache[uri] = (time.monotonic() + DISCOVERY_SECONDS, keys)
    return keys


def _callback_url(request: Request) -> str:
    return str(request.url_for("oidc_callback"))


async def login(request: Request) -> Response:
    rt = runtime(request)
    oidc = _oidc(rt)
    meta = await discovery(rt, oidc)
    state, nonce, verifier = secrets.token_urlsafe(24), secrets.token_urlsafe(24), secrets.token_urlsafe(48)
    params = {
        "response_type": "code",
        "client_id": oidc.client_id,
        "redirect_uri": _callback_url(request),
        "scope": " ".join(oidc.scopes),
        "state": state,
        "nonce": nonce,
        "code_challenge": create_s256_code_challenge(verifier),
        "code_challenge_method": "S256",
    }
    hint = request.query_params.get("login_hint", "")
    if hint and len(hint) <= 200 and hint.isprintable():
        params["login_hint"] = hint
    target = safe_next(request.query_params.get("next"))
    flow = {"s": state, "n": nonce, "v": verifier, "t": target, "e": int(rt.clock() + FLOW_SECONDS)}
    separator = "&" if "?" in meta["authorization_endpoint"] else "?"
    response = RedirectResponse(
        f"{meta['authorization_endpoint']}{separator}{urlencode(params)}", status_code=303
    )
    response.set_cookie(
        OIDC_COOKIE,
        rt.signer.sign("oidc", flow),
        **cookie_options(secure=secure(request), max_age=FLOW_SECONDS),
    )
    return response


async def _exchange(oidc: OidcLogin, meta: dict[str, Any], code: str, verifier: str, redirect: str) -> str:
    try:
        secret = resolve_secret(oidc.client_secret)
    except UserError as exc:
        raise ProviderTrouble(
            f"the OpenID client secret cannot be read: {exc.diagnostics[0].message}"
        ) from None
    client = AsyncOAuth2Client(
        client_id=oidc.client_id,
        client_secret=secret,
        redirect_uri=redirect,
        token_endpoint_auth_method="client_secret_basic",
        timeout=HTTP_TIMEOUT,
    )
    try:
        token = await client.fetch_token(
            meta["token_endpoint"], grant_type="authorization_code", code=code, code_verifier=verifier
        )
    except Exception as exc:  # authlib raises its own errors and httpx's; none may end the request badly
        raise ProviderTrouble(
            f"the provider refused the code: {type(exc).__name__}: {str(exc)[:200]}"
        ) from None
    finally:
        await client.aclose()
    id_token = token.get("id_token") if isinstance(token, dict) else None
    if not isinstance(id_token, str):
        raise ProviderTrouble("the provider's token answer has no id_token")
    return id_token


async def _claims(
    rt: Runtime, oidc: OidcLogin, meta: dict[str, Any], id_token: str, nonce: str
) -> dict[str, Any]:
    keys = await _keys(rt, meta["jwks_uri"])
    try:
        try:
            decoded = jwt.decode(id_token, keys)
        except JoseError:  # a key rotated since we read them: read them again, once
            decoded = jwt.decode(id_token, await _keys(rt, meta["jwks_uri"], fresh=True))
        registry = jwt.JWTClaimsRegistry(
            leeway=LEEWAY_SECONDS,
            iss={"essential": True, "value": oidc.issuer},
            aud={"essential": True, "value": oidc.client_id},
            nonce={"essential": True, "value": nonce},
            exp={"essential": True},
            sub={"essential": True},
        )
        registry.validate(decoded.claims)
    except JoseError as exc:
        raise Forbidden(f"the ID token does not hold: {exc.error}") from None
    return dict(decoded.claims)


def claim_values(claims: dict[str, Any], name: str) -> list[str]:
    raw = claims.get(name)
    values = [raw] if isinstance(raw, str) else raw if isinstance(raw, list) else []
    return [v[:200] for v in values if isinstance(v, str)][:MAX_CLAIM_VALUES]


def display_name(claims: dict[str, Any]) -> str:
    for key in ("email", "preferred_username", "sub"):
        value = claims.get(key)
        if isinstance(value, str) and value.strip() and value.isprintable():
            return value.strip()[:64]
    return "oidc-user"


async def callback(request: Request) -> Response:
    rt = runtime(request)
    oidc = _oidc(rt)
    flow = rt.signer.unsign("oidc", request.cookies.get(OIDC_COOKIE), rt.clock())
    params = request.query_params
    if params.get("error"):
        raise Forbidden(
            f"the OpenID provider said {params['error'][:60]!r}: {params.get('error_description', '')[:200]}"
        )
    if flow is None or not params.get("state") or not secrets.compare_digest(str(flow["s"]), params["state"]):
        raise Forbidden(
            "this OpenID login was not started here, or took longer than ten minutes; sign in again"
        )
    code = params.get("code", "")
    if not code or len(code) > 2000:
        raise Forbidden("the OpenID provider sent no code")
    meta = await discovery(rt, oidc)
    id_token = await _exchange(oidc, meta, code, str(flow["v"]), _callback_url(request))
    claims = await _claims(rt, oidc, meta, id_token, str(flow["n"]))
    groups = claim_values(claims, oidc.roles_claim)
    role = oidc.role_for(groups)
    name = display_name(claims)
    if role is None:
        log.warning("console OpenID login refused: no role", user=name, claim=oidc.roles_claim)
        raise Forbidden(
            f"{name} signed in, but no value of its {oidc.roles_claim!r} claim maps to a console "
            "role; ask for one in the Console document's oidc.roles"
        )
    log.info("console login", user=name, role=role.value, via="oidc")
    response = start_session(
        request,
        rt,
        name,
        role,
        AuthMethod.OIDC,
        rt.spec.session_hours if rt.spec else 12.0,
        str(flow["t"]),
        claims=groups,
    )
    response.delete_cookie(OIDC_COOKIE, path="/")
    return response


async def _trouble(request: Request, exc: Exception) -> Response:
    from reconciler.console.render import page

    rt = runtime(request)
    log.warning("console OpenID login failed", reason=str(exc))
    return page(
        rt.templates,
        request,
        "error.html",
        principal=None,
        session=None,
        status=502,
        status_code=502,
        reason=f"the OpenID login failed: {exc}",
    )


def oidc_routes() -> list[BaseRoute]:
    return [
        Route("/oidc/login", login, name="oidc_login"),
        Route("/oidc/callback", callback, name="oidc_callback"),
    ]


EXCEPTION_HANDLERS = {ProviderTrouble: _trouble}
