"""console.guard: what every request passes — login rate limits, body limits, security headers.

* **Rate limits.** Failed logins are counted per user name and per client address over a
  sliding window: after ``per_user`` failures for a name, or ``per_address`` from one
  address (bearer tokens that match nothing count too), further tries are refused with 429
  and ``Retry-After`` until the oldest failure leaves the window — before any password is
  hashed, so a locked name costs nothing. A success clears that name's failures. Memory is
  bounded: the oldest entries go first.
* **Bodies.** A request body larger than ``MAX_BODY`` is refused with 413 (by its
  Content-Length, or while it streams in).
* **Headers** on every answer: a Content-Security-Policy without inline script (scripts
  and styles come only from ``/static``), ``X-Frame-Options: DENY``, ``nosniff``, no
  referrer across origins, no caching of pages, and HSTS when the request came over https.
"""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from collections.abc import Callable
from threading import Lock

from starlette.types import ASGIApp, Message, Receive, Scope, Send

MAX_BODY = 1 << 20
WINDOW_SECONDS = 300.0
PER_USER = 5
PER_ADDRESS = 20
_MAX_TRACKED = 10_000

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; form-action 'self'; frame-ancestors 'none'; "
    "base-uri 'none'"
)
HEADERS = (
    (b"content-security-policy", CSP.encode()),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
)


class RateLimiter:
    """Failures per user name and per address in a sliding window (thread-safe)."""

    def __init__(
        self,
        *,
        per_user: int = PER_USER,
        per_address: int = PER_ADDRESS,
        window: float = WINDOW_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.per_user, self.per_address, self.window = per_user, per_address, window
        self._clock = clock
        self._lock = Lock()
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    def _recent(self, ident: str, now: float) -> deque[float]:
        seen = self._failures.get(ident)
        if seen is None:
            return deque()
        while seen and seen[0] <= now - self.window:
            seen.popleft()
        if not seen:
            del self._failures[ident]
        return seen

    def retry_after(self, address: str, user: str | None = None) -> float:
        """Seconds until this address (and user name) may try again; 0 when it may now."""
        now = self._clock()
        waits = [0.0]
        with self._lock:
            checks = [(f"a:{address}", self.per_address)]
            if user is not None:
                checks.append((f"u:{user.lower()}", self.per_user))
            for ident, limit in checks:
                seen = self._recent(ident, now)
                if len(seen) >= limit:
                    waits.append(seen[len(seen) - limit] + self.window - now)
        return max(waits)

    def failed(self, address: str, user: str | None = None) -> None:
        now = self._clock()
        with self._lock:
            for ident in [f"a:{address}", *([f"u:{user.lower()}"] if user is not None else [])]:
                self._failures.setdefault(ident, deque()).append(now)
                self._failures.move_to_end(ident)
            while len(self._failures) > _MAX_TRACKED:
                self._failures.popitem(last=False)

    def succeeded(self, user: str) -> None:
        with self._lock:
            self._failures.pop(f"u:{user.lower()}", None)


class _TooLarge(Exception):
    pass


async def _refuse(send: Send, status: int, text: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"text/plain; charset=utf-8"), *HEADERS],
        }
    )
    await send({"type": "http.response.body", "body": text})


class Guard:
    """ASGI middleware: security headers on every answer, bodies bounded."""

    def __init__(self, app: ASGIApp, max_body: int = MAX_BODY) -> None:
        self.app = app
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length", b"0")
        if not length.isdigit() or int(length) > self.max_body:
            await _refuse(send, 413 if length.isdigit() else 400, b"body too large\n")
            return
        https = scope.get("scheme") == "https"
        static = str(scope.get("path", "")).startswith("/static/")
        received = 0
        started = False

        async def bounded() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body:
                    raise _TooLarge
            return message

        async def with_headers(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                extra = list(HEADERS)
                if https:
                    extra.append((b"strict-transport-security", b"max-age=31536000"))
                names = {name.lower() for name, _ in message.get("headers", [])}
                if not static and b"cache-control" not in names:
                    extra.append((b"cache-control", b"no-store"))
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        try:
            await self.app(scope, bounded, with_headers)
        except _TooLarge:
            if not started:
                await _refuse(send, 413, b"body too large\n")
