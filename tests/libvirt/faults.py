"""Fault injection for the libvirt provider: libvirt errors the test driver cannot produce.

``Wire.interceptor`` is called before every counted call; raising a ``libvirtError`` there
sends it down exactly the path a real one takes (mapping, dropping a lost connection).
"""

from __future__ import annotations

import threading

import libvirt

from providers.libvirt.provider import LibvirtProvider


def libvirt_error(code: int, message: str, domain: int = 0) -> libvirt.libvirtError:
    """A ``libvirtError`` carrying ``code``, as the binding builds them from virGetLastError."""
    error = libvirt.libvirtError(message)
    error.err = (code, domain, message, libvirt.VIR_ERR_ERROR, "", "", "", 0, 0)
    return error


class Faults:
    """Fail the next calls of a provider (optionally only a given operation) with chosen errors."""

    def __init__(self, provider: LibvirtProvider) -> None:
        self.provider = provider
        self._plan: list[tuple[str | None, libvirt.libvirtError]] = []
        self._lock = threading.Lock()
        self.raised: list[str] = []
        provider.wire.interceptor = self._intercept

    def fail(self, error: libvirt.libvirtError, *, operation: str | None = None, times: int = 1) -> None:
        with self._lock:
            self._plan.extend([(operation, error)] * times)

    def timeout(self, times: int = 1, *, operation: str | None = None) -> None:
        self.fail(libvirt_error(libvirt.VIR_ERR_OPERATION_TIMEOUT,
                                "Timed out during operation: cannot acquire state change lock"),
                  operation=operation, times=times)

    def connection_lost(self, *, operation: str | None = None) -> None:
        self.fail(libvirt_error(libvirt.VIR_ERR_SYSTEM_ERROR, "Cannot recv data: Connection reset by peer",
                                libvirt.VIR_FROM_RPC), operation=operation)

    def denied(self, *, operation: str | None = None) -> None:
        self.fail(libvirt_error(libvirt.VIR_ERR_OPERATION_DENIED, "operation forbidden: read only access"),
                  operation=operation)

    def _intercept(self, operation: str) -> None:
        with self._lock:
            for index, (wanted, error) in enumerate(self._plan):
                if wanted is None or wanted == operation:
                    del self._plan[index]
                    self.raised.append(operation)
                    raise error
