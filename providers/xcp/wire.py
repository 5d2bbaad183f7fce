"""providers.xcp.wire: the XAPI wire for the XCP provider — transport, sessions, errors, codecs.

Kept apart from ``providers.xcp.provider`` (which holds the provider's decisions) because none of
this knows about servers: it turns XAPI's XML-RPC conventions into Python values and our
error tree.

* ``map_failure``: ``XenAPI.Failure(['CODE', …])`` and wire exceptions → ``TransientError`` /
  ``PermanentError`` / ``NotFoundError``, with ``error.code`` set to the XAPI code.
* ``XapiTransport``: HTTP(S) with a timeout, and **no blind resend**. The stdlib transport
  sends a request a second time when the connection drops, which would clone a VM twice
  after a lost reply; here the loss surfaces as ``TransientError`` and the retry goes
  through the provider's idempotent paths instead.
* ``SessionPool``: logged-in ``XenAPI.Session`` objects, one per concurrent caller (an
  XML-RPC proxy is not thread-safe); a session is reused as soon as it is handed back.
* Codecs: int64 strings, ``dateTime.iso8601`` values, ``key=value`` VM tags, boot scripts
  as chunked ``xenstore_data``, and the ``other_config:disks`` provisioning spec.
* ``credentials``: the username and password a Provider spec points to (env var or file).
"""

from __future__ import annotations

import base64
import http.client
import os
import ssl
import threading
import xml.etree.ElementTree as ET
import xmlrpc.client
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import XenAPI

from reconciler.core.clock import parse_timestamp
from reconciler.core.errors import NotFoundError, PermanentError, ProviderError, TransientError, UserError

MIB = 1024**2
GIB = 1024**3
USER_DATA_KEY = "vm-data/user-data"
_CHUNK = 3072  # xenstore values stay well under their 4 KiB limit

TRANSIENT_CODES = frozenset(
    {"HOST_OFFLINE", "HOST_STILL_BOOTING", "TOO_BUSY", "OTHER_OPERATION_IN_PROGRESS", "SESSION_INVALID",
     "VM_MIGRATE_FAILED", "HA_OPERATION_WOULD_BREAK_FAILOVER_PLAN"}
)
NOT_FOUND_CODES = frozenset({"HANDLE_INVALID", "UUID_INVALID"})


def credentials(spec: Mapping[str, Any], name: str) -> tuple[str, str]:
    """(username, password) from ``username`` / ``username_env`` and ``password_env`` / ``password_file``."""

    def env(var: str) -> str:
        value = os.environ.get(var)
        if not value:
            raise UserError(f"provider {name}: environment variable {var} is not set")
        return value

    user = str(spec["username"]) if "username" in spec else env(str(spec["username_env"]))
    if "password_env" in spec:
        return user, env(str(spec["password_env"]))
    path = Path(str(spec["password_file"])).expanduser()
    try:
        return user, path.read_text().strip()
    except OSError as exc:
        raise UserError(f"provider {name}: cannot read password_file {path}: {exc.strerror}") from None


def xint(value: Any, default: int = 0) -> int:
    """XAPI int64 fields arrive as strings."""
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def xapi_time(value: Any) -> datetime | None:
    """An XML-RPC dateTime (``20261101T12:00:00Z``) as an aware datetime; None for the epoch."""
    text = value.value if isinstance(value, xmlrpc.client.DateTime) else str(value or "")
    try:
        moment = datetime.strptime(text.rstrip("Z"), "%Y%m%dT%H:%M:%S")
    except ValueError:
        return None
    return None if moment.year <= 1970 else parse_timestamp(moment.isoformat())


def split_tags(tags: list[str]) -> tuple[list[str], dict[str, str]]:
    """VM.tags → (bare tags left alone, key=value user tags)."""
    bare, pairs = [], {}
    for tag in tags:
        key, sep, value = tag.partition("=")
        if sep and key:
            pairs[key] = value
        else:
            bare.append(tag)
    return bare, pairs


def user_data_entries(text: str) -> dict[str, str]:
    """Rendered boot scripts as xenstore_data entries (base64, chunked)."""
    if not text:
        return {}
    blob = base64.b64encode(text.encode()).decode()
    chunks = [blob[i:i + _CHUNK] for i in range(0, len(blob), _CHUNK)]
    entries = {f"{USER_DATA_KEY}/{n}": chunk for n, chunk in enumerate(chunks)}
    entries[f"{USER_DATA_KEY}/chunks"] = str(len(chunks))
    return entries


def provision_spec(xml_text: str, sr_uuid: str | None, disk_gb: int) -> str:
    """Rewrite a template's ``other_config:disks``: our SR, and the root disk at least ``disk_gb``."""
    root = ET.fromstring(xml_text)
    disks = root.findall("disk")
    for disk in disks:
        if sr_uuid:
            disk.set("sr", sr_uuid)
    boot = next((d for d in disks if d.get("bootable") == "true"), disks[0] if disks else None)
    if boot is not None:
        boot.set("size", str(max(xint(boot.get("size")), disk_gb * GIB)))
    return ET.tostring(root, encoding="unicode")


def map_failure(exc: BaseException, method: str) -> ProviderError:
    """Any exception from the SDK or the wire as our error tree, with the XAPI code kept."""
    if isinstance(exc, XenAPI.Failure):
        details = [str(d) for d in (exc.details or ["UNKNOWN"])]
        code = details[0]
        message = f"XAPI {method} failed: {code} {' '.join(details[1:])}".rstrip()
        if code in TRANSIENT_CODES:
            return TransientError(message, code=code)
        if code in NOT_FOUND_CODES:
            return NotFoundError(message, code=code)
        if code == "SESSION_AUTHENTICATION_FAILED":
            message += " (check the username and password the Provider spec points to)"
        elif code == "HOST_IS_SLAVE":
            message += f" (point the Provider url at the pool master, {details[-1]})"
        return PermanentError(message, code=code)
    if isinstance(exc, ssl.SSLCertVerificationError):
        return PermanentError(f"XAPI {method}: TLS certificate not trusted ({exc.verify_message}); "
                              "install the pool's CA or set verify_tls: false", code="TLS")
    if isinstance(exc, xmlrpc.client.ProtocolError):
        kind = TransientError if exc.errcode >= 500 or exc.errcode == 429 else PermanentError
        return kind(f"XAPI {method}: HTTP {exc.errcode} {exc.errmsg}", code=f"HTTP_{exc.errcode}")
    if isinstance(exc, xmlrpc.client.Fault):
        # The SDK's own faults: 500 after repeated SESSION_INVALID, 504 on a login timeout.
        return TransientError(f"XAPI {method}: {exc.faultString}", code=f"FAULT_{exc.faultCode}")
    if isinstance(exc, OSError | http.client.HTTPException):
        return TransientError(f"XAPI {method}: connection to the pool master failed: {exc}",
                              code="CONNECTION")
    return PermanentError(f"XAPI {method}: unexpected {type(exc).__name__}: {exc}")


class XapiTransport(xmlrpc.client.Transport):
    """HTTP(S) with a timeout, sending each request exactly once (no blind resend)."""

    def __init__(self, *, timeout: float, tls: bool, verify: bool) -> None:
        super().__init__()
        self._timeout = timeout
        self._context: ssl.SSLContext | None = None
        if tls:
            self._context = ssl.create_default_context()
            if not verify:
                self._context.check_hostname = False
                self._context.verify_mode = ssl.CERT_NONE

    def make_connection(self, host: Any) -> http.client.HTTPConnection:
        cached = self._connection
        if cached[1] is not None and cached[0] == host:
            return cached[1]
        chost, self._extra_headers, _ = self.get_host_info(host)
        conn: http.client.HTTPConnection
        if self._context is not None:
            conn = http.client.HTTPSConnection(chost, timeout=self._timeout, context=self._context)
        else:
            conn = http.client.HTTPConnection(chost, timeout=self._timeout)
        self._connection = host, conn
        return conn

    def request(self, host: Any, handler: str, request_body: Any, verbose: bool = False) -> Any:
        return self.single_request(host, handler, request_body, verbose)


class SessionPool:
    """Logged-in sessions, one per concurrent caller; handed out and returned."""

    def __init__(self, connect: Callable[[], Any]) -> None:
        self._connect = connect
        self._idle: list[Any] = []
        self._all: list[Any] = []
        self._lock = threading.Lock()

    @contextmanager
    def session(self) -> Iterator[Any]:
        with self._lock:
            session = self._idle.pop() if self._idle else None
        if session is None:
            session = self._connect()
            with self._lock:
                self._all.append(session)
        try:
            yield session
        finally:
            with self._lock:
                self._idle.append(session)

    def drain(self) -> list[Any]:
        with self._lock:
            sessions, self._all, self._idle = self._all, [], []
        return sessions
