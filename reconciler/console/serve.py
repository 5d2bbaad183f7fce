"""console.serve: run an ASGI application on uvicorn in a background thread, on a socket bound here.

The socket is bound before uvicorn starts, so a bad or busy address is one ``UserError``
naming it (never a log line from a thread), and ``:0`` gives a free port (``url`` says
which). Requests come from a trusted proxy on the same host when it sets
``X-Forwarded-Proto``/``X-Forwarded-For`` (uvicorn's ``proxy_headers``, trusting 127.0.0.1
only). ``shutdown`` asks uvicorn to stop and waits for it; open event streams are given
a few seconds to end.
"""

from __future__ import annotations

import socket
import threading
import time

import uvicorn
from starlette.types import ASGIApp

from reconciler.core.errors import UserError

DEFAULT_LISTEN = "127.0.0.1:9108"
_START_SECONDS = 10.0


def parse_listen(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:9108`` for IPv6) → (host, port)."""
    host, sep, port = text.strip().rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise UserError(f"--listen {text!r} is not HOST:PORT; write it like {DEFAULT_LISTEN}")
    return host, int(port)


def bind(listen: str) -> socket.socket:
    host, port = parse_listen(listen)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        family, kind, proto, _, address = infos[0]
        sock = socket.socket(family, kind, proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(address)
            sock.listen(128)
        except OSError:
            sock.close()
            raise
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise UserError(f"--listen {listen}: cannot listen there ({reason})") from None
    sock.set_inheritable(True)
    return sock


class WebServer:
    """One uvicorn server in a thread; ``url``, ``shutdown()``, ``server_close()``."""

    def __init__(
        self, app: ASGIApp, sock: socket.socket, *, tls_cert: str | None = None, tls_key: str | None = None
    ) -> None:
        self._sock = sock
        config = uvicorn.Config(
            app,
            log_config=None,
            log_level="warning",
            access_log=False,
            lifespan="off",
            proxy_headers=True,
            forwarded_allow_ips="127.0.0.1",
            timeout_graceful_shutdown=3,
            ws="none",
            ssl_certfile=tls_cert,
            ssl_keyfile=tls_key,
        )
        self._server = uvicorn.Server(config)
        self.scheme = "https" if tls_cert else "http"
        self._thread = threading.Thread(target=self._run, name="http", daemon=True)

    def _run(self) -> None:
        self._server.run(sockets=[self._sock])

    def start(self) -> WebServer:
        self._thread.start()
        deadline = time.monotonic() + _START_SECONDS
        while not self._server.started and self._thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.01)
        if not self._server.started:
            raise UserError("the HTTP listener did not start; see the log above")
        return self

    @property
    def address(self) -> tuple[str, int]:
        host, port = self._sock.getsockname()[:2]
        return str(host), int(port)

    @property
    def url(self) -> str:
        host, port = self.address
        shown = f"[{host}]" if ":" in host else host
        return f"{self.scheme}://{shown}:{port}"

    def shutdown(self) -> None:
        self._server.should_exit = True
        self._thread.join(10)

    def server_close(self) -> None:
        try:
            self._sock.close()
        except OSError:  # pragma: no cover - closing twice
            pass


def start(app: ASGIApp, listen: str, *, tls_cert: str | None = None, tls_key: str | None = None) -> WebServer:
    """Bind ``listen`` and serve ``app`` there in a background thread."""
    return WebServer(app, bind(listen), tls_cert=tls_cert, tls_key=tls_key).start()
