"""xapi_sim: a small XAPI (XenServer / XCP-ng) server speaking the real XML-RPC wire format.

There is no xapi to install in CI, so the XCP provider is tested against this instead,
through the unmodified ``XenAPI.Session`` client. What matters is the wire contract:

* ``session.login_with_password(user, password, version, originator)`` returns an
  ``OpaqueRef:`` session handle; every other call takes that handle first.
* Replies are ``{'Status': 'Success', 'Value': …}`` or
  ``{'Status': 'Failure', 'ErrorDescription': [code, param, …]}``; 64-bit integers are
  strings, map keys are strings, timestamps are ``dateTime.iso8601``.
* Generic accessors for every class: ``get_all``, ``get_all_records``, ``get_record``,
  ``get_by_uuid``, ``get_by_name_label``, ``get_<field>``, ``set_<field>`` (settable fields
  only), ``add_to_<map>`` / ``remove_from_<map>``, plus the VM, VDI and VIF operations of
  ``xapi_db``.

Test hooks are plain Python methods on ``XapiSim`` (the fixture holds the object):
``invalidate_sessions()``, ``fail(method, code, *params, times=n)`` and
``drop_response(method)`` (the call happens, the connection closes before the reply, as
after a network cut), plus helpers to seed unowned VMs and inspect state.
"""

from __future__ import annotations

import copy
import inspect
import threading
import uuid as uuidlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from socketserver import ThreadingMixIn
from typing import Any
from xmlrpc.server import SimpleXMLRPCRequestHandler, SimpleXMLRPCServer

from tests.xcp.xapi_db import NULL, Record, XapiDB, XapiError

SIM_EPOCH = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)

# Fields a client may write with set_<field>; everything else is read-only.
_SETTABLE = {
    "VM": {"name_label", "name_description", "other_config", "xenstore_data", "tags", "PV_args",
           "platform", "blocked_operations"},
    "VDI": {"name_label", "name_description", "other_config"},
    "SR": {"name_label", "other_config"},
    "network": {"name_label", "other_config"},
    "VIF": {"other_config"},
    "VBD": {"other_config"},
    "pool": {"name_label", "other_config"},
    "host": {"other_config"},
}


@dataclass
class _Injected:
    method: str
    description: list[str]
    remaining: int


class XapiSim:
    """The simulated pool master: state, wire dispatch, and hooks for tests."""

    def __init__(self, *, users: dict[str, str] | None = None,
                 now: Callable[[], datetime] | None = None) -> None:
        self.clock = now or (lambda: SIM_EPOCH)
        self.db = XapiDB(lambda: self.clock())
        self.users = users if users is not None else {"root": "xcp-secret"}
        self.sessions: dict[str, str] = {}
        self.calls: Counter[str] = Counter()
        self.lock = threading.RLock()
        self._failures: list[_Injected] = []
        self._drops: Counter[str] = Counter()
        self._local = threading.local()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._ops: dict[str, Callable[..., Any]] = {
            "VM.clone": self.db.vm_clone,
            "VM.provision": self.db.vm_provision,
            "VM.start": lambda vm, paused, force: self.db.vm_start(vm),
            "VM.clean_shutdown": lambda vm: self.db.vm_halt(vm, hard=False),
            "VM.hard_shutdown": lambda vm: self.db.vm_halt(vm, hard=True),
            "VM.pause": lambda vm: self.db.vm_set_power(vm, "pause", "Running", "Paused"),
            "VM.unpause": lambda vm: self.db.vm_set_power(vm, "unpause", "Paused", "Running"),
            "VM.suspend": lambda vm: self.db.vm_set_power(vm, "suspend", "Running", "Suspended"),
            "VM.resume": lambda vm, paused, force: self.db.vm_set_power(vm, "resume", "Suspended", "Running"),
            "VM.destroy": self.db.vm_destroy,
            "VM.snapshot": self.db.vm_snapshot,
            "VM.copy": self.db.vm_copy,
            "VM.set_is_a_template": self._set_is_a_template,
            "VM.set_VCPUs_max": lambda vm, n: self.db.vm_set_vcpus(vm, "VCPUs_max", _int64(n)),
            "VM.set_VCPUs_at_startup": lambda vm, n: self.db.vm_set_vcpus(vm, "VCPUs_at_startup", _int64(n)),
            "VM.set_memory_limits": lambda vm, a, b, c, d: self.db.vm_set_memory_limits(
                vm, _int64(a), _int64(b), _int64(c), _int64(d)),
            "VM.add_tags": self._add_tag,
            "VM.remove_tags": self._remove_tag,
            "VDI.destroy": self.db.vdi_destroy,
            "VDI.resize": lambda vdi, size: self.db.vdi_resize(vdi, _int64(size)),
            "VIF.create": self.db.vif_create,
            "VIF.destroy": self.db.vif_destroy,
        }

    # --- lifecycle ------------------------------------------------------------------------
    def start(self) -> str:
        """Serve on 127.0.0.1 at a free port in a daemon thread; returns the URL."""
        server = _Server(("127.0.0.1", 0), requestHandler=_Handler, allow_none=True, logRequests=False)
        server.sim = self
        server.register_instance(_Bridge(self))
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02},
                                        name="xapi-sim", daemon=True)
        self._thread.start()
        return self.url

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    @property
    def url(self) -> str:
        assert self._server is not None, "simulator not started"
        host, port = self._server.server_address[:2]
        return f"http://{host.decode() if isinstance(host, bytes) else host}:{port}"

    # --- test hooks -------------------------------------------------------------------------
    def invalidate_sessions(self) -> None:
        """Forget every session, as after a xapi restart: the next call gets SESSION_INVALID."""
        with self.lock:
            self.sessions.clear()

    def fail(self, method: str, code: str, *params: str, times: int = 1) -> None:
        """Make the next ``times`` calls of ``method`` ('*' = any but login) fail with ``code``."""
        with self.lock:
            self._failures.append(_Injected(method, [code, *params], times))

    def drop_response(self, method: str, times: int = 1) -> None:
        """Carry out the next ``times`` calls of ``method``, then close without replying."""
        with self.lock:
            self._drops[method] += times

    def vm_records(self) -> dict[str, Record]:
        with self.lock:
            return copy.deepcopy(self.db.tables["VM"])

    def vms_named(self, name: str) -> list[Record]:
        return [r for r in self.vm_records().values() if r["name_label"] == name]

    def add_vm(self, name: str, *, power_state: str = "Running", other_config: dict[str, str] | None = None,
               tags: list[str] | None = None) -> str:
        """Seed a VM someone else made (not through the API); returns its uuid."""
        with self.lock:
            ref = self.db.new_vm(name, power_state=power_state, other_config=other_config, tags=tags)
            return str(self.db.get("VM", ref)["uuid"])

    def set_field(self, cls: str, uuid: str, field: str, value: Any) -> None:
        """Change any field behind the API's back (power state, marks…)."""
        with self.lock:
            self.db.get(cls, self.db.by_uuid(cls, uuid))[field] = value

    def sr_named(self, name: str) -> Record:
        with self.lock:
            return copy.deepcopy(self.db.get("SR", self.db.by_name("SR", name)[0]))

    # --- the wire ---------------------------------------------------------------------------
    def dispatch(self, method: str, params: tuple[Any, ...]) -> dict[str, Any]:
        """One XML-RPC call in, one XAPI status struct out."""
        with self.lock:
            self.calls[method] += 1
            try:
                value = self._call(method, params)
                reply: dict[str, Any] = {"Status": "Success", "Value": _wire(value)}
            except XapiError as exc:
                reply = {"Status": "Failure", "ErrorDescription": exc.description}
            if self._drops[method] > 0:
                self._drops[method] -= 1
                self._local.drop = True
            return reply

    def take_drop(self) -> bool:
        dropped = bool(getattr(self._local, "drop", False))
        self._local.drop = False
        return dropped

    def _injected(self, method: str) -> list[str] | None:
        for item in self._failures:
            wildcard = item.method == "*" and not method.startswith("session.")
            if item.remaining > 0 and (item.method == method or wildcard):
                item.remaining -= 1
                return item.description
        return None

    def _call(self, method: str, params: tuple[Any, ...]) -> Any:
        if method == "session.login_with_password":
            if (injected := self._injected(method)) is not None:
                raise XapiError(*injected)
            return self._login(*params)
        if not params or params[0] not in self.sessions:
            raise XapiError("SESSION_INVALID", str(params[0]) if params else "")
        if method == "session.logout":
            del self.sessions[params[0]]
            return ""
        if (injected := self._injected(method)) is not None:
            raise XapiError(*injected)
        args = params[1:]
        if method in self._ops:
            return self._invoke(method, self._ops[method], args)
        cls, _, op = method.partition(".")
        if cls not in self.db.tables:
            raise XapiError("MESSAGE_METHOD_UNKNOWN", method)
        return self._invoke(method, lambda *a: self._generic(cls, op, method, *a), args)

    def _invoke(self, method: str, fn: Callable[..., Any], args: tuple[Any, ...]) -> Any:
        try:
            inspect.signature(fn).bind(*args)
        except TypeError:
            expected = len(inspect.signature(fn).parameters)
            raise XapiError("MESSAGE_PARAMETER_COUNT_MISMATCH", method, str(expected + 1),
                            str(len(args) + 1)) from None
        return fn(*args)

    def _login(self, user: str, password: str, version: str = "", originator: str = "") -> str:
        if self.users.get(user) != password:
            raise XapiError("SESSION_AUTHENTICATION_FAILED", user, "Authentication failure")
        ref = f"OpaqueRef:{uuidlib.uuid4()}"
        self.sessions[ref] = user
        return ref

    def _generic(self, cls: str, op: str, method: str, *args: Any) -> Any:
        table = self.db.tables[cls]
        if op == "get_all" and not args:
            return list(table)
        if op == "get_all_records" and not args:
            return table
        if op == "get_record" and len(args) == 1:
            return self.db.get(cls, args[0])
        if op == "get_by_uuid" and len(args) == 1:
            return self.db.by_uuid(cls, args[0])
        if op == "get_by_name_label" and len(args) == 1:
            return self.db.by_name(cls, args[0])
        if op.startswith("get_") and len(args) == 1:
            record = self.db.get(cls, args[0])
            if op[4:] in record:
                return record[op[4:]]
        elif op.startswith("set_") and len(args) == 2 and op[4:] in _SETTABLE.get(cls, ()):
            record = self.db.get(cls, args[0])
            if not isinstance(args[1], type(record[op[4:]])):
                raise XapiError("FIELD_TYPE_ERROR", op[4:])
            record[op[4:]] = copy.deepcopy(args[1])
            return ""
        elif op.startswith("add_to_") and len(args) == 3 and op[7:] in _SETTABLE.get(cls, ()):
            mapping = self.db.get(cls, args[0])[op[7:]]
            if args[1] in mapping:
                raise XapiError("MAP_DUPLICATE_KEY", cls, op[7:], args[0], args[1])
            mapping[str(args[1])] = str(args[2])
            return ""
        elif op.startswith("remove_from_") and len(args) == 2 and op[12:] in _SETTABLE.get(cls, ()):
            self.db.get(cls, args[0])[op[12:]].pop(args[1], None)
            return ""
        raise XapiError("MESSAGE_METHOD_UNKNOWN", method)

    def _set_is_a_template(self, vm: str, value: bool) -> None:
        """True is the ``make_into_template`` operation (a halted VM only); False is not checked."""
        if not isinstance(value, bool):
            raise XapiError("FIELD_TYPE_ERROR", "is_a_template")
        record = self.db.op_check(vm, "make_into_template", "Halted") if value else self.db.get("VM", vm)
        record["is_a_template"] = value

    def _add_tag(self, vm: str, tag: str) -> None:
        tags = self.db.get("VM", vm)["tags"]
        if tag not in tags:
            tags.append(tag)

    def _remove_tag(self, vm: str, tag: str) -> None:
        tags = self.db.get("VM", vm)["tags"]
        if tag in tags:
            tags.remove(tag)


def _int64(value: Any) -> str:
    """xapi's int64 travels as a decimal string; a bare XML-RPC int is a type error."""
    if not isinstance(value, str) or not value.lstrip("-").isdigit():
        raise XapiError("FIELD_TYPE_ERROR", "int64 expected as a decimal string", repr(value))
    return value


def _wire(value: Any) -> Any:
    """A deep copy safe to marshal outside the lock; None becomes xapi's empty string."""
    if value is None:
        return ""
    return copy.deepcopy(value)


class _Bridge:
    """What SimpleXMLRPCServer dispatches to: every method name goes to the simulator."""

    def __init__(self, sim: XapiSim) -> None:
        self._sim = sim

    def _dispatch(self, method: str, params: tuple[Any, ...]) -> dict[str, Any]:
        return self._sim.dispatch(method, params)


class _Server(ThreadingMixIn, SimpleXMLRPCServer):
    daemon_threads = True
    sim: XapiSim


class _Handler(SimpleXMLRPCRequestHandler):
    rpc_paths = ("/", "/RPC2")

    def do_POST(self) -> None:  # noqa: N802 - the http.server naming
        server = self.server
        assert isinstance(server, _Server)
        data = self.rfile.read(int(self.headers.get("content-length") or 0))
        response: bytes = server._marshaled_dispatch(data, None, self.path)  # type: ignore[assignment]
        if server.sim.take_drop():
            self.close_connection = True  # the work is done, the reply is lost
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/xml")
        self.send_header("Content-Length", str(len(response)))
        self.end_headers()
        self.wfile.write(response)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        """Quiet: tests read the call counter instead."""


__all__ = ["NULL", "SIM_EPOCH", "XapiError", "XapiSim"]
