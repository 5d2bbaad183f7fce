"""providers.libvirt.wire: the libvirt connection for the libvirt provider — counted calls, errors.

Kept apart from ``providers.libvirt.provider`` (which holds the provider's decisions) because none
of this knows about servers:

* ``Wire`` opens one connection lazily and shares it between threads (libvirt
  connections are thread-safe). Every API call goes through ``Wire.call`` which counts
  it and maps ``libvirtError`` to our error tree. When the connection is lost, it is
  dropped and the next call opens a new one; the lost call surfaces as ``TransientError``
  and the engine retries it through the provider's idempotent paths.
* ``status_of``: libvirt's (state, reason) pairs in our closed ``ServerStatus`` set.
* ``map_error``: libvirt error codes → ``TransientError`` (timeouts, a busy domain, the
  connection or the daemon going away) / ``NotFoundError`` (no such domain, pool,
  volume, snapshot) / ``PermanentError`` (everything else: invalid XML, refused, not
  supported), with ``error.code`` set to libvirt's ``VIR_ERR_*`` name.

libvirt prints every error to stderr through its default handler; importing this module
installs a silent handler, because every error reaches the caller as an exception anyway.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, TypeVar

import libvirt

from reconciler.core.errors import NotFoundError, PermanentError, ProviderError, TransientError
from reconciler.core.model import ServerStatus

T = TypeVar("T")

OPEN = "virConnectOpen"
CLOSE = "virConnectClose"


def _ignore(_context: object, _error: object) -> None:
    return None


libvirt.registerErrorHandler(_ignore, None)

# Severity levels share the VIR_ERR_ prefix with the codes; they are not codes.
_LEVELS = {"VIR_ERR_NONE", "VIR_ERR_WARNING", "VIR_ERR_ERROR"}
ERROR_NAMES: dict[int, str] = {
    value: name for name, value in vars(libvirt).items()
    if name.startswith("VIR_ERR_") and name not in _LEVELS and isinstance(value, int)
}


def _codes(*names: str) -> frozenset[int]:
    return frozenset(getattr(libvirt, name) for name in names if hasattr(libvirt, name))


# The connection or the daemon went away: drop the connection, the retry opens a new one.
CONNECTION_CODES = _codes("VIR_ERR_RPC", "VIR_ERR_INVALID_CONN", "VIR_ERR_NO_CLIENT")
CONNECTION_DOMAINS = _codes("VIR_FROM_RPC", "VIR_FROM_REMOTE", "VIR_FROM_STREAMS")
TRANSIENT_CODES = CONNECTION_CODES | _codes(
    "VIR_ERR_OPERATION_TIMEOUT",  # e.g. "cannot acquire state change lock": another job holds it
    "VIR_ERR_RESOURCE_BUSY",
    "VIR_ERR_AGENT_UNRESPONSIVE",
    "VIR_ERR_AGENT_UNSYNCED",
)
NOT_FOUND_CODES = _codes(
    "VIR_ERR_NO_DOMAIN", "VIR_ERR_NO_STORAGE_POOL", "VIR_ERR_NO_STORAGE_VOL", "VIR_ERR_NO_DOMAIN_SNAPSHOT",
    "VIR_ERR_NO_NETWORK", "VIR_ERR_NO_DOMAIN_METADATA",
)
XML_CODES = _codes("VIR_ERR_XML_ERROR", "VIR_ERR_XML_DETAIL", "VIR_ERR_XML_INVALID_SCHEMA")
AUTH_CODES = _codes("VIR_ERR_AUTH_FAILED", "VIR_ERR_AUTH_CANCELLED", "VIR_ERR_AUTH_UNAVAILABLE")


RUNNING, BLOCKED, PAUSED = libvirt.VIR_DOMAIN_RUNNING, libvirt.VIR_DOMAIN_BLOCKED, libvirt.VIR_DOMAIN_PAUSED
SHUTDOWN, SHUTOFF = libvirt.VIR_DOMAIN_SHUTDOWN, libvirt.VIR_DOMAIN_SHUTOFF
CRASHED, PMSUSPENDED = libvirt.VIR_DOMAIN_CRASHED, libvirt.VIR_DOMAIN_PMSUSPENDED
# Reason sets built by name: a constant the host's libvirt is too old to have is left out.
_PAUSED_BROKEN = _codes("VIR_DOMAIN_PAUSED_IOERROR", "VIR_DOMAIN_PAUSED_CRASHED",
                        "VIR_DOMAIN_PAUSED_WATCHDOG", "VIR_DOMAIN_PAUSED_POSTCOPY_FAILED")
_PAUSED_PASSING = _codes("VIR_DOMAIN_PAUSED_SNAPSHOT", "VIR_DOMAIN_PAUSED_SAVE", "VIR_DOMAIN_PAUSED_DUMP",
                         "VIR_DOMAIN_PAUSED_MIGRATION", "VIR_DOMAIN_PAUSED_STARTING_UP",
                         "VIR_DOMAIN_PAUSED_SHUTTING_DOWN")
_SHUTOFF_BROKEN = _codes("VIR_DOMAIN_SHUTOFF_CRASHED", "VIR_DOMAIN_SHUTOFF_FAILED")


def status_of(state: int, reason: int) -> ServerStatus:
    """libvirt's (state, reason) in our closed set: crashed, failed to start or broken is ``error``."""
    if state in (RUNNING, BLOCKED):
        return ServerStatus.RUNNING
    if state == PAUSED:
        if reason in _PAUSED_BROKEN:
            return ServerStatus.ERROR
        return ServerStatus.PENDING if reason in _PAUSED_PASSING else ServerStatus.STOPPED  # paused by a user
    if state == SHUTOFF:
        return ServerStatus.ERROR if reason in _SHUTOFF_BROKEN else ServerStatus.STOPPED
    if state in (SHUTDOWN, PMSUSPENDED):
        return ServerStatus.STOPPED
    if state == CRASHED:
        return ServerStatus.ERROR
    return ServerStatus.PENDING  # no state yet


def error_name(code: int) -> str:
    return ERROR_NAMES.get(code, f"VIR_ERR_{code}")


def is_connection_loss(exc: BaseException) -> bool:
    if not isinstance(exc, libvirt.libvirtError):
        return False
    code, domain = exc.get_error_code(), exc.get_error_domain()
    return code in CONNECTION_CODES or (
        code == libvirt.VIR_ERR_SYSTEM_ERROR and domain in CONNECTION_DOMAINS)


def map_error(exc: BaseException, operation: str, uri: str) -> ProviderError:
    """Any exception from a libvirt call as our error tree, with libvirt's code name kept."""
    if not isinstance(exc, libvirt.libvirtError):
        return PermanentError(f"libvirt {operation} on {uri}: unexpected {type(exc).__name__}: {exc}")
    code = exc.get_error_code() or 0
    name = error_name(code)
    detail = (exc.get_error_message() or str(exc)).strip()
    message = f"libvirt {operation} on {uri} failed ({name}): {detail}"
    if is_connection_loss(exc):
        return TransientError(f"libvirt {operation}: connection to {uri} lost or refused: {detail}",
                              code=name)
    if code in TRANSIENT_CODES:
        return TransientError(message, code=name)
    if code in NOT_FOUND_CODES:
        return NotFoundError(message, code=name)
    if code in XML_CODES:
        return PermanentError(f"libvirt {operation} on {uri}: invalid XML: {detail}", code=name)
    if code in AUTH_CODES:
        return PermanentError(message + " (check the credentials or SSH keys the URI relies on)", code=name)
    if code == libvirt.VIR_ERR_NO_CONNECT:
        return PermanentError(message + " (check the Provider's spec.uri)", code=name)
    return PermanentError(message, code=name)


class Wire:
    """One lazily opened libvirt connection; every call through it is counted and mapped.

    ``interceptor`` (None in production) is called with the operation name before each
    call; tests set it to raise ``libvirtError`` s the test driver cannot produce
    (timeouts, a dropped connection), which then take exactly the path real ones take.
    """

    def __init__(self, uri: str, count: Callable[[str], None]) -> None:
        self.uri = uri
        self._count = count
        self._conn: Any = None
        self._lock = threading.Lock()
        self.interceptor: Callable[[str], None] | None = None

    def conn(self) -> Any:
        """The open connection (``virConnect``), opened on first use or after a loss."""
        with self._lock:
            if self._conn is None:
                self._count(OPEN)
                try:
                    if self.interceptor is not None:
                        self.interceptor(OPEN)
                    self._conn = libvirt.open(self.uri)
                except libvirt.libvirtError as exc:
                    raise map_error(exc, OPEN, self.uri) from None
            return self._conn

    def call(self, operation: str, fn: Callable[[], T]) -> T:
        """Run one libvirt call (``fn`` uses ``conn()`` or a handle from it), counted and mapped."""
        self._count(operation)
        try:
            if self.interceptor is not None:
                self.interceptor(operation)
            return fn()
        except ProviderError:
            raise  # from conn(): already counted and mapped
        except libvirt.libvirtError as exc:
            if is_connection_loss(exc):
                self.drop()
            raise map_error(exc, operation, self.uri) from None

    def drop(self) -> None:
        """Forget a connection that is gone (closing it is best effort)."""
        with self._lock:
            conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except libvirt.libvirtError:
                pass

    def close(self) -> None:
        with self._lock:
            conn, self._conn = self._conn, None
        if conn is not None:
            self._count(CLOSE)
            try:
                conn.close()
            except libvirt.libvirtError:
                pass
