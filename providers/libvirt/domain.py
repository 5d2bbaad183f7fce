"""providers.libvirt.domain: reading, defining and powering libvirt domains for the libvirt provider.

The provider (``providers.libvirt.provider``) decides what should happen to a server; this module
does the domain-level steps it is made of, each one libvirt call or a short, bounded
sequence of them, all through the provider's ``Wire`` (counted, errors mapped):

* ``Domain``: a handle, its XML as last read, and our marks (None: not ours) — a server's,
  or an image backup record's (``backup``).
* ``Domains.power_on`` / ``power_off``: get a domain running or shut off from whatever state
  it is in. A clean shutdown waits up to ``shutdown_timeout`` seconds (polling the state)
  and then powers off; "already running" / "not running" answers from a race are success.
* ``Domains.write_marks``: our ``<metadata>`` element, on the persistent definition and,
  for a running domain, on the live one too (``observe`` reads the live XML).
* ``Domains.live_copy``: a point-in-time copy of a running domain's disk through a block
  copy job (``virDomainBlockCopy`` into an existing volume, wait for the mirror to be
  ready, abort without pivoting: the copy is then consistent as of that instant).
"""

from __future__ import annotations

import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import libvirt

from providers.libvirt.wire import BLOCKED, CRASHED, PAUSED, PMSUSPENDED, RUNNING, SHUTDOWN, SHUTOFF, Wire
from providers.libvirt.xml import NS, PREFIX, BackupMarks, Marks, mirror_state
from reconciler.core.errors import PermanentError, ProviderError, TransientError

NOT_RUNNING = "VIR_ERR_OPERATION_INVALID"  # "domain is not running" / "is already running"
_POLL_SECONDS = 0.25
State = tuple[int, int]


@dataclass(frozen=True)
class Domain:
    """A domain handle with its XML as last read and our marks in it (None when it is not ours)."""

    handle: Any
    root: ET.Element
    marks: Marks | None
    backup: BackupMarks | None = None  # set on the record of an image backup (never a server)

    @property
    def uuid(self) -> str:
        return self.root.findtext("uuid") or ""

    @property
    def name(self) -> str:
        return self.root.findtext("name") or ""

    @property
    def owned(self) -> Marks:
        """Our marks (only call on a domain known to be ours)."""
        assert self.marks is not None
        return self.marks


class Domains:
    """Domain-level operations over one connection."""

    def __init__(self, wire: Wire, *, shutdown_timeout: float) -> None:
        self.wire = wire
        self.shutdown_timeout = shutdown_timeout

    def _call(self, operation: str, fn: Callable[[], Any]) -> Any:
        return self.wire.call(operation, fn)

    # --- reading ----------------------------------------------------------------------------
    def read(self, handle: Any) -> Domain:
        """The domain's live XML (its definition when shut off) and our marks in it."""
        root = ET.fromstring(self._call("virDomainGetXMLDesc", lambda: handle.XMLDesc(0)))
        return Domain(handle, root, Marks.from_domain(root), BackupMarks.from_domain(root))

    def list_all(self) -> list[Any]:
        return list(self._call("virConnectListAllDomains", lambda: self.wire.conn().listAllDomains(0)))

    def by_uuid(self, uuid: str) -> Domain:
        return self.read(self._call("virDomainLookupByUUIDString",
                                    lambda: self.wire.conn().lookupByUUIDString(uuid)))

    def by_name(self, name: str) -> Domain:
        return self.read(self._call("virDomainLookupByName", lambda: self.wire.conn().lookupByName(name)))

    def state(self, dom: Domain) -> State:
        state, reason = self._call("virDomainGetState", lambda: dom.handle.state(0))
        return int(state), int(reason)

    def inactive_xml(self, dom: Domain) -> str:
        """The persistent definition (what the next start uses)."""
        return str(self._call("virDomainGetXMLDesc",
                              lambda: dom.handle.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)))

    # --- writing ----------------------------------------------------------------------------
    def define(self, xml: str) -> Any:
        """Define (or redefine) a domain, validated against libvirt's schema; returns its handle."""
        return self._call("virDomainDefineXMLFlags",
                          lambda: self.wire.conn().defineXMLFlags(xml, libvirt.VIR_DOMAIN_DEFINE_VALIDATE))

    def write_marks(self, dom: Domain, marks: Marks, *, live: bool) -> Domain:
        flags = libvirt.VIR_DOMAIN_AFFECT_CONFIG | (libvirt.VIR_DOMAIN_AFFECT_LIVE if live else 0)
        self._call("virDomainSetMetadata", lambda: dom.handle.setMetadata(
            libvirt.VIR_DOMAIN_METADATA_ELEMENT, marks.metadata_xml(), PREFIX, NS, flags))
        return Domain(dom.handle, dom.root, marks, dom.backup)

    def write_backup_marks(self, dom: Domain, marks: BackupMarks) -> Domain:
        """The ``<reconciler:backup>`` element of a (never started) backup record."""
        self._call("virDomainSetMetadata", lambda: dom.handle.setMetadata(
            libvirt.VIR_DOMAIN_METADATA_ELEMENT, marks.metadata_xml(), PREFIX, NS,
            libvirt.VIR_DOMAIN_AFFECT_CONFIG))
        return Domain(dom.handle, dom.root, dom.marks, marks)

    # --- copying a running disk -------------------------------------------------------------
    def live_copy(self, dom: Domain, target: str, dest_xml: str) -> None:
        """Copy disk ``target`` of a running domain into the existing volume ``dest_xml`` describes.

        A block copy job mirrors the disk; once libvirt reports the mirror ready, aborting the
        job (without pivoting) leaves the destination consistent as of that instant and the
        domain on its own disk. Drivers without block copy raise ``PermanentError`` with code
        ``VIR_ERR_NO_SUPPORT``."""
        flags = libvirt.VIR_DOMAIN_BLOCK_COPY_REUSE_EXT | libvirt.VIR_DOMAIN_BLOCK_COPY_TRANSIENT_JOB
        self._call("virDomainBlockCopy", lambda: dom.handle.blockCopy(target, dest_xml, None, flags))
        try:
            while True:
                root = ET.fromstring(self._call("virDomainGetXMLDesc", lambda: dom.handle.XMLDesc(0)))
                state = mirror_state(root, target)
                if state is None:
                    raise TransientError(f"the block copy of disk {target} of domain {dom.name} ended before "
                                         "it was complete", code="COPY_JOB_ENDED")
                if state == "yes":
                    break
                time.sleep(_POLL_SECONDS)
        except BaseException:
            self.abort_copy(dom, target)
            raise
        self._call("virDomainBlockJobAbort", lambda: dom.handle.blockJobAbort(target, 0))

    def abort_copy(self, dom: Domain, target: str) -> None:
        """End a block copy job on ``target`` (best effort: the job may be gone already)."""
        try:
            self._call("virDomainBlockJobAbort", lambda: dom.handle.blockJobAbort(target, 0))
        except ProviderError:
            pass

    # --- power ------------------------------------------------------------------------------
    def power_on(self, dom: Domain, state: State) -> None:
        """Get the domain running: resume, wake up, or start (after finishing a shutdown or crash)."""
        if state[0] in (RUNNING, BLOCKED):
            return
        if state[0] == PAUSED:
            self._call("virDomainResume", lambda: dom.handle.resume())
            return
        if state[0] == PMSUSPENDED:
            self._call("virDomainPMWakeup", lambda: dom.handle.pMWakeup(0))
            return
        if state[0] in (SHUTDOWN, CRASHED):
            self.power_off(dom, state, graceful=state[0] == SHUTDOWN)
        try:
            self._call("virDomainCreate", lambda: dom.handle.create())
        except PermanentError as exc:
            if exc.code != NOT_RUNNING or self.state(dom)[0] not in (RUNNING, BLOCKED):
                raise  # "already running" is fine: someone started it under us

    def power_off(self, dom: Domain, state: State, *, graceful: bool) -> None:
        """Shut the domain down cleanly (within the timeout) when ``graceful``, else power it off."""
        if state[0] == SHUTOFF:
            return
        if graceful and self.shutdown_timeout > 0 and state[0] in (RUNNING, BLOCKED, SHUTDOWN):
            try:
                if state[0] != SHUTDOWN:
                    self._call("virDomainShutdown", lambda: dom.handle.shutdown())
                deadline = time.monotonic() + self.shutdown_timeout
                while self.state(dom)[0] != SHUTOFF:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        break  # the guest ignores ACPI (or takes too long): power it off
                    time.sleep(min(_POLL_SECONDS, remaining))
                else:
                    return
            except PermanentError as exc:
                if exc.code != NOT_RUNNING:
                    raise
        try:
            self._call("virDomainDestroy", lambda: dom.handle.destroy())
        except PermanentError as exc:
            if exc.code != NOT_RUNNING:
                raise  # "domain is not running": it went down by itself
