"""console.render: the Jinja2 environment of the pages, their filters, and one way to answer with a page.

Templates live in ``console/templates``, autoescaped, with ``StrictUndefined`` (a name a
template uses and a view forgot is an error in the tests, not an empty cell). Every page
gets ``principal`` (who is signed in), ``csrf`` (their session's token, also in
``<meta name="csrf">``), ``daemon`` (the reconcile loop's status) and ``now``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse

from reconciler.console.access import Principal
from reconciler.console.session import Session
from reconciler.console.snapshot import Money, monthly
from reconciler.console.views import age
from reconciler.core.console_model import Role


def money(amount: Money, places: int = 4) -> str:
    if not amount:
        return "—"
    return ", ".join(f"{currency} {value.quantize(Decimal(1).scaleb(-places))}" for currency, value in amount)


def month_money(amount: Money) -> str:
    return money(monthly(amount), 2)


def when(moment: datetime | None) -> str:
    if moment is None:
        return ""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def environment() -> Environment:
    env = Environment(
        loader=PackageLoader("reconciler.console", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(money=money, month_money=month_money, when=when)
    env.globals.update(Role=Role)
    return env


def page(
    env: Environment,
    request: Request,
    template: str,
    *,
    principal: Principal | None,
    session: Session | None,
    status: int = 200,
    headers: dict[str, str] | None = None,
    **context: Any,
) -> HTMLResponse:
    now = datetime.now(UTC)
    base: dict[str, Any] = {
        "request": request,
        "principal": principal,
        "csrf": session.csrf if session is not None else "",
        "now": now,
        "ago": lambda moment: age(moment, now),
        "path": request.url.path,
    }
    base.update(daemon=None, flash="")
    html = env.get_template(template).render(**{**base, **context})
    return HTMLResponse(html, status_code=status, headers=headers)
