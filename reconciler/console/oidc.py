"""console.oidc: OpenID Connect login (authorization code flow with PKCE) — filled in by the OIDC step."""

from __future__ import annotations

from starlette.routing import BaseRoute


def oidc_routes() -> list[BaseRoute]:
    return []
