"""providers.xcp.provider: XCP-ng / XenServer pools through XAPI (XML-RPC), registered as ``type: xcp``.

Design decisions, each forced by XAPI:

* **Ownership lives in ``other_config``** under ``reconciler:`` keys (owner, key, spec hash,
  generation, token, cluster, member, plus ``reconciler:image``, ``reconciler:disk-gb`` and
  ``reconciler:created-at``). User tags go to the VM's ``tags`` set as ``key=value``; bare
  tags people add in XenCenter / Xen Orchestra are kept and ignored.
* **Name-labels are not unique**, so a create is found again by its token, never by name.
  A create is a resumable sequence — clone, mark, provision, size, user data, VIF, start,
  and last ``reconciler:created-at`` — so a retried create picks up where the lost one
  stopped. Until that last mark is written, ``lookup`` says "not created" (the retry
  finishes the job) and ``observe`` reports the VM as ``error`` (so it is replaced or
  deleted if the retry never comes).
* **Deleting** hard-shuts the VM, destroys the disks marked with its owner that no other VM
  uses (a VM we made has its disks marked at create, an adopted one at adoption:
  ``providers.xcp.adoption``), then destroys the VM.
* **One listing call**: ``observe`` is a single ``VM.get_all_records``; templates,
  snapshots and the control domain are skipped; the disk size reported is the one asked
  for (``reconciler:disk-gb``), so a template with a bigger disk never looks like drift.
* **Sessions and the wire** are ``providers.xcp.wire``: a pool of ``XenAPI.Session``
  objects, no blind resends, XAPI codes mapped to our error tree. ``SESSION_INVALID`` is
  handled by the SDK (log in again, resend); we notice the new handle and count the login.
* **Boot scripts** are put in ``xenstore_data`` as base64 chunks under
  ``vm-data/user-data/<n>`` (``vm-data/user-data/chunks`` holds the count), readable in the
  guest with ``xenstore-read``. Pool administrators can read xenstore_data too.
* **Backups** are VMs that outlive their server, marked like it plus ``reconciler:taken-at``,
  ``snapshot-of``, ``size-gb``, ``backup-method`` and the policy. ``snapshot``: a
  ``VM.snapshot`` (copy-on-write, its disks share the server's VDI chain). ``image``: that
  snapshot ``VM.copy``-ed into our SR (full, independent disks; a template, not a snapshot),
  then the snapshot destroyed; the copy names its own uuid in ``reconciler:backup-id``, so a
  clone of it (another uuid) is never taken for a backup.
* **A restore is a create from the backup instead of the template**: ``VM.clone`` of the
  backup (a snapshot or image is a template, so the clone is one too and can never be started
  as it is), then the same resumable sequence — the backup marks replaced by the request's in
  one write, ``VM.provision`` (which clears ``is_a_template``), size, user data, root disk
  grown to ``disk_gb`` (XAPI never shrinks a VDI: a smaller ``disk_gb`` is refused first), VIF,
  start, ``created-at``.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Mapping, Sequence
from functools import reduce
from typing import Any, ClassVar

import XenAPI

from providers.xcp import adoption
from providers.xcp.records import (
    BACKUP_MARKS,
    MARK_BACKUP_ID,
    MARK_CREATED,
    MARK_DISK_GB,
    MARK_IMAGE,
    MARK_METHOD,
    MARK_RESTORED_FROM,
    MARK_SIZE_GB,
    MARK_SNAPSHOT_OF,
    is_backup,
    observed_from_record,
    owned,
)
from providers.xcp.spec import CAPABILITIES, SPEC_SCHEMA
from providers.xcp.wire import (
    GIB,
    MIB,
    USER_DATA_KEY,
    SessionPool,
    XapiTransport,
    credentials,
    map_failure,
    provision_spec,
    split_tags,
    user_data_entries,
    xapi_time,
    xint,
)
from reconciler.core.clock import isoformat, parse_timestamp
from reconciler.core.errors import NotFoundError, PermanentError, TransientError, UserError
from reconciler.core.model import (
    GUARD_TAGS,
    TAG_KEY,
    TAG_OWNER,
    TAG_POLICY,
    TAG_PREFIX,
    TAG_TAKEN_AT,
    TAG_TOKEN,
    BackupMethod,
    CreateRequest,
    MetricSample,
    ObservedServer,
    ProviderConfig,
    Size,
    Snapshot,
    SnapshotRequest,
    UpdateRequest,
)
from reconciler.core.provider import (
    AdoptRequest,
    Capabilities,
    Provider,
    ProviderContext,
    guard_marks,
    ownership_tags,
    register,
    user_tags,
)

NULL_REF = "OpaqueRef:NULL"
LOGIN = "session.login_with_password"
# (current power state, wanted) → the call that gets there.
_POWER_CALLS: dict[tuple[str, str], tuple[str, ...]] = {
    ("Halted", "Running"): ("VM.start",),
    ("Paused", "Running"): ("VM.unpause",),
    ("Suspended", "Running"): ("VM.resume",),
    ("Running", "Halted"): ("VM.clean_shutdown",),
    ("Paused", "Halted"): ("VM.hard_shutdown",),
    ("Suspended", "Halted"): ("VM.hard_shutdown",),
}


@register("xcp")
class XcpProvider(Provider):
    """A pool of XCP-ng / XenServer hosts, driven through its master's XAPI."""

    capabilities: ClassVar[Capabilities] = CAPABILITIES
    spec_schema: ClassVar[dict[str, Any]] = SPEC_SCHEMA

    def __init__(self, config: ProviderConfig, context: ProviderContext) -> None:
        super().__init__(config, context)
        spec = config.spec
        self._url = str(spec.get("url", ""))
        if not self._url.startswith(("http://", "https://")):
            raise UserError(f"provider {config.name}: spec.url must be the pool master's http(s):// URL")
        has_user = ("username" in spec) + ("username_env" in spec)
        has_password = ("password_env" in spec) + ("password_file" in spec)
        if has_user != 1 or has_password != 1:
            raise UserError(f"provider {config.name}: give exactly one of username / username_env and "
                            "exactly one of password_env / password_file")
        self._sessions = SessionPool(self._login)
        self._refs: dict[str, str] = {}
        self._refs_lock = threading.Lock()

    # --- connection -----------------------------------------------------------------------
    def _login(self) -> Any:
        user, password = credentials(self.config.spec, self.config.name)
        spec = self.config.spec
        transport = XapiTransport(timeout=float(spec.get("timeout_seconds", 60)),
                                  tls=self._url.startswith("https://"),
                                  verify=bool(spec.get("verify_tls", True)))
        session = XenAPI.Session(self._url, transport=transport)
        self.count_call(LOGIN)
        try:
            session.xenapi.login_with_password(user, password, "2.20", "gitops-reconciler")
        except Exception as exc:
            raise map_failure(exc, LOGIN) from None
        return session

    def xapi(self, method: str, *args: Any) -> Any:
        """One counted XAPI call (``VM.get_all_records``…), errors mapped to our tree."""
        with self._sessions.session() as session:
            attempts = 2 if method.rpartition(".")[2].startswith("get_") else 1
            for attempt in range(1, attempts + 1):
                handle = session.handle
                self.count_call(method)
                try:
                    return reduce(getattr, method.split("."), session.xenapi)(*args)
                except Exception as exc:
                    error = map_failure(exc, method)
                    if attempt == attempts or error.code != "CONNECTION":
                        raise error from None
                finally:
                    if session.handle != handle:  # the SDK logged in again after SESSION_INVALID
                        self.count_call(LOGIN)
        raise AssertionError("unreachable")

    def close(self) -> None:
        for session in self._sessions.drain():
            self.count_call("session.logout")
            try:
                session.xenapi.session.logout()
            except Exception:  # noqa: BLE001 - best effort: the session expires anyway
                pass

    def _named(self, cls: str, name: str, *, field: str = "ref") -> str:
        """The ref (or uuid) of an SR or network given by name-label or uuid (cached: both are stable)."""
        cache_key = f"{cls}:{name}:{field}"
        with self._refs_lock:
            if cache_key in self._refs:
                return self._refs[cache_key]
        if field == "uuid":
            value = str(self.xapi(f"{cls}.get_uuid", self._named(cls, name)))
            with self._refs_lock:
                self._refs[cache_key] = value
            return value
        refs = list(self.xapi(f"{cls}.get_by_name_label", name))
        if not refs:
            try:
                refs = [self.xapi(f"{cls}.get_by_uuid", name)]
            except NotFoundError:
                raise PermanentError(f"{cls} {name!r} not found on the pool (provider {self.name})",
                                     code=f"UNKNOWN_{cls.upper()}") from None
        if len(refs) > 1:
            raise PermanentError(f"{len(refs)} {cls}s are named {name!r}; give its uuid instead",
                                 code=f"AMBIGUOUS_{cls.upper()}")
        with self._refs_lock:
            self._refs[cache_key] = refs[0]
        return str(refs[0])

    # --- reading ----------------------------------------------------------------------------
    def observe(self, owner: str) -> list[ObservedServer]:
        records: dict[str, Any] = self.xapi("VM.get_all_records")
        servers = [observed_from_record(self.name, rec) for rec in records.values() if owned(rec, owner)]
        return sorted(servers, key=lambda s: (s.key, s.generation, s.resource_id))

    def lookup(self, owner: str, token: str) -> ObservedServer | None:
        records: dict[str, Any] = self.xapi("VM.get_all_records")
        for rec in records.values():
            marks = rec["other_config"]
            if owned(rec, owner) and marks.get(TAG_TOKEN) == token and MARK_CREATED in marks:
                return observed_from_record(self.name, rec)
        return None

    # --- taking over (providers.xcp.adoption) -----------------------------------------------
    def describe(self, resource_ids: Sequence[str]) -> list[ObservedServer]:
        return adoption.servers(self.name, self.xapi, list(resource_ids)) if resource_ids else []

    def list_unowned(self) -> list[ObservedServer]:
        return adoption.servers(self.name, self.xapi, None)

    def adopt(self, server: ObservedServer, request: AdoptRequest) -> ObservedServer:
        ref = adoption.adopt(self.xapi, server, request, self.context.clock.now())
        return observed_from_record(self.name, self.xapi("VM.get_record", ref))

    def release(self, server: ObservedServer) -> None:
        adoption.release(self.xapi, server)

    def _vm(self, uuid: str, owner: str) -> tuple[str, dict[str, Any]]:
        """Ref and record of an owned VM; refuses anything we do not own."""
        ref = str(self.xapi("VM.get_by_uuid", uuid))
        record: dict[str, Any] = self.xapi("VM.get_record", ref)
        if record["other_config"].get(TAG_OWNER) != owner:
            raise PermanentError(f"VM {uuid} is not owned by {owner!r}; refusing to touch it",
                                 code="NOT_OWNED")
        return ref, record

    def _disks(self, record: Mapping[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
        """(userdevice, VDI ref, VDI record) of each disk a VM has (CD drives skipped)."""
        disks = []
        for vbd in record["VBDs"]:
            vbd_rec = self.xapi("VBD.get_record", vbd)
            if vbd_rec["type"] == "Disk" and vbd_rec["VDI"] != NULL_REF:
                vdi = vbd_rec["VDI"]
                disks.append((str(vbd_rec["userdevice"]), vdi, self.xapi("VDI.get_record", vdi)))
        return disks

    # --- power ------------------------------------------------------------------------------
    def _power(self, vm: str, state: str, want: str, *, hard: bool = False) -> None:
        """Drive a VM to Running or Halted with the right call for the state it is in."""
        for _ in range(3):
            if state == want:
                return
            call = _POWER_CALLS.get((state, want), ("VM.hard_shutdown",) if want == "Halted" else ())
            if hard and want == "Halted":
                call = ("VM.hard_shutdown",)
            if not call:
                raise PermanentError(f"VM {vm} is {state}; cannot bring it to {want}",
                                     code="VM_BAD_POWER_STATE")
            args = (False, False) if call[0] in ("VM.start", "VM.resume") else ()
            try:
                self.xapi(call[0], vm, *args)
                return
            except PermanentError as exc:
                if exc.code != "VM_BAD_POWER_STATE":
                    raise
            state = str(self.xapi("VM.get_power_state", vm))  # it moved under us: look again
        raise TransientError(f"VM {vm} keeps changing power state; try again", code="VM_BAD_POWER_STATE")

    def start(self, server: ObservedServer) -> ObservedServer:
        ref, record = self._vm(server.resource_id, server.owner)
        self._power(ref, record["power_state"], "Running")
        return observed_from_record(self.name, self.xapi("VM.get_record", ref))

    def stop(self, server: ObservedServer) -> ObservedServer:
        ref, record = self._vm(server.resource_id, server.owner)
        self._power(ref, record["power_state"], "Halted")
        return observed_from_record(self.name, self.xapi("VM.get_record", ref))

    # --- create -----------------------------------------------------------------------------
    def _template(self, records: Mapping[str, Any], image: str) -> str:
        candidates = {ref: rec for ref, rec in records.items()
                      if rec["is_a_template"] and not is_backup(rec)
                      and TAG_TOKEN not in rec["other_config"]}
        matches = [ref for ref, rec in candidates.items() if rec["uuid"] == image]
        matches = matches or [ref for ref, rec in candidates.items() if rec["name_label"] == image]
        if len(matches) > 1:
            raise PermanentError(f"{len(matches)} templates are named {image!r}; name it by uuid instead",
                                 code="AMBIGUOUS_TEMPLATE")
        if not matches:
            raise PermanentError(f"template {image!r} not found on the pool (provider {self.name}); "
                                 "set the template's image.xcp to a template name-label or uuid",
                                 code="UNKNOWN_TEMPLATE")
        return matches[0]

    def create(self, request: CreateRequest) -> ObservedServer:
        return self._create(request, lambda records: str(
            self.xapi("VM.clone", self._template(records, request.image), request.name)))

    def _create(self, request: CreateRequest, clone: Callable[[dict[str, Any]], str], *,
                restored_from: str | None = None) -> ObservedServer:
        """The resumable create: ``clone(records)`` makes the template clone when the token has none yet."""
        records: dict[str, Any] = self.xapi("VM.get_all_records")
        found = [(ref, rec) for ref, rec in records.items()
                 if owned(rec, request.owner) and rec["other_config"].get(TAG_TOKEN) == request.token]
        if found:
            vm, record = found[0]
            if MARK_CREATED in record["other_config"]:
                return observed_from_record(self.name, record)  # the create already finished
        else:
            vm = clone(records)
            self._mark_clone(vm, request, restored_from)
            record = self.xapi("VM.get_record", vm)
        if record["is_a_template"]:
            self.xapi("VM.provision", vm)
            record = self.xapi("VM.get_record", vm)
        if record["power_state"] == "Halted":
            self._configure(vm, record, request)
        self._power(vm, record["power_state"], "Running")
        self.xapi("VM.add_to_other_config", vm, MARK_CREATED, isoformat(self.context.clock.now()))
        return observed_from_record(self.name, self.xapi("VM.get_record", vm))

    def _mark_clone(self, vm: str, request: CreateRequest, restored_from: str | None = None) -> None:
        """Ownership marks and the disk spec, in one write right after the clone."""
        marks: dict[str, str] = dict(self.xapi("VM.get_other_config", vm))
        marks.pop("default_template", None)
        if restored_from is not None:  # a clone of a backup: the backup's disks are its disks
            for key in (*BACKUP_MARKS, "disks"):
                marks.pop(key, None)
            marks[MARK_RESTORED_FROM] = restored_from
        for key in GUARD_TAGS:  # as the request says, never as the backup's server had them
            marks.pop(key, None)
        marks.update({k: v for k, v in ownership_tags(request).items() if k.startswith(TAG_PREFIX)})
        marks[MARK_IMAGE] = request.image
        marks[MARK_DISK_GB] = str(request.size.disk_gb)
        if marks.get("disks"):
            sr_uuid = None
            if self.config.spec.get("sr"):
                sr_uuid = self._named("SR", str(self.config.spec["sr"]), field="uuid")
            marks["disks"] = provision_spec(marks["disks"], sr_uuid, request.size.disk_gb)
        self.xapi("VM.set_other_config", vm, marks)

    def _configure(self, vm: str, record: dict[str, Any], request: CreateRequest) -> None:
        """Size, tags, user data, disk marks and the VIF of a halted, provisioned clone."""
        self._set_size(vm, record, request.size)
        bare, _ = split_tags(list(record["tags"]))
        self.xapi("VM.set_tags", vm, bare + [f"{k}={v}" for k, v in user_tags(dict(request.tags))])
        xenstore = {k: v for k, v in record["xenstore_data"].items() if not k.startswith(USER_DATA_KEY)}
        xenstore.update(user_data_entries(request.user_data))
        self.xapi("VM.set_xenstore_data", vm, xenstore)
        for userdevice, vdi, vdi_rec in self._disks(record):
            if TAG_OWNER not in vdi_rec["other_config"]:
                marks = {**vdi_rec["other_config"], TAG_OWNER: request.owner, TAG_KEY: request.key}
                self.xapi("VDI.set_other_config", vdi, marks)
            if userdevice == "0" and xint(vdi_rec["virtual_size"]) < request.size.disk_gb * GIB:
                self.xapi("VDI.resize", vdi, str(request.size.disk_gb * GIB))
        network = self._named("network", str(self.config.spec["network"]))
        vifs = [self.xapi("VIF.get_record", vif) for vif in record["VIFs"]]
        if not any(vif["network"] == network for vif in vifs):
            used = {xint(vif["device"]) for vif in vifs}
            self.xapi("VIF.create", {
                "device": str(min(set(range(len(used) + 1)) - used)), "network": network, "VM": vm,
                "MAC": "", "MTU": "1500", "other_config": {}, "qos_algorithm_type": "",
                "qos_algorithm_params": {}, "locking_mode": "network_default",
                "ipv4_allowed": [], "ipv6_allowed": [],
            })

    def _set_size(self, vm: str, record: Mapping[str, Any], size: Size) -> None:
        """vCPUs and memory limits of a halted VM (int64 values as strings)."""
        if size.cpus != xint(record["VCPUs_max"]) or size.cpus != xint(record["VCPUs_at_startup"]):
            order = ["VCPUs_max", "VCPUs_at_startup"]
            if size.cpus < xint(record["VCPUs_max"]):
                order.reverse()  # at_startup may never exceed max, so shrink it first
            for field in order:
                self.xapi(f"VM.set_{field}", vm, str(size.cpus))
        memory = size.memory_mb * MIB
        current = [xint(record[f"memory_{k}"]) for k in ("static_max", "dynamic_min", "dynamic_max")]
        if current != [memory] * 3:
            static_min = min(xint(record["memory_static_min"], memory), memory)
            self.xapi("VM.set_memory_limits", vm, str(static_min), str(memory), str(memory), str(memory))

    # --- update / delete --------------------------------------------------------------------
    def update(self, server: ObservedServer, request: UpdateRequest) -> ObservedServer:
        vm, record = self._vm(server.resource_id, server.owner)
        if request.size.disk_gb != xint(record["other_config"].get(MARK_DISK_GB), request.size.disk_gb):
            raise PermanentError(f"{server.key}: the disk size cannot change in place on xcp; "
                                 "replace the server", code="DISK_RESIZE_NOT_SUPPORTED")
        cpus, memory = request.size.cpus, request.size.memory_mb * MIB
        current = tuple(xint(record[k]) for k in ("VCPUs_max", "VCPUs_at_startup", "memory_static_max"))
        resize, state = current != (cpus, cpus, memory), record["power_state"]
        if resize and state != "Halted" and not request.allow_restart:  # refuse before changing anything
            raise PermanentError(f"{server.key}: changing vCPUs/memory needs the VM halted and the update "
                                 "policy forbids a restart", code="RESTART_NOT_ALLOWED")
        bare, pairs = split_tags(list(record["tags"]))
        if user_tags(pairs) != user_tags(dict(request.tags)):
            self.xapi("VM.set_tags", vm, bare + [f"{k}={v}" for k, v in user_tags(dict(request.tags))])
        marks: dict[str, str] = record["other_config"]
        guards = guard_marks(request.protect, request.backup_policy)
        if {k: marks[k] for k in GUARD_TAGS if k in marks} != guards:
            kept = {k: v for k, v in marks.items() if k not in GUARD_TAGS}
            self.xapi("VM.set_other_config", vm, {**kept, **guards})
        if resize:
            if state != "Halted":
                self._power(vm, state, "Halted")
            self._set_size(vm, self.xapi("VM.get_record", vm), request.size)
            if state != "Halted":
                self._power(vm, "Halted", "Running")
        return observed_from_record(self.name, self.xapi("VM.get_record", vm))

    def delete(self, server: ObservedServer) -> None:
        try:
            vm, record = self._vm(server.resource_id, server.owner)
        except NotFoundError:
            return  # already gone
        self._power(vm, record["power_state"], "Halted", hard=True)
        # Disks first: a crash after this leaves the VM (still owned, still observed), never
        # an unowned orphan disk.
        for _, vdi, vdi_rec in self._disks(record):
            if (vdi_rec["other_config"].get(TAG_OWNER) == server.owner and not vdi_rec["is_a_snapshot"]
                    and adoption.only_attached_to(vdi_rec, record)):  # never a disk another VM uses
                self._destroy_vdi(vdi)
        try:
            self.xapi("VM.destroy", vm)
        except NotFoundError:
            pass

    def _destroy_vdi(self, vdi: str) -> None:
        try:
            self.xapi("VDI.destroy", vdi)
        except NotFoundError:
            pass

    # --- snapshots --------------------------------------------------------------------------
    def snapshot(self, server: ObservedServer, request: SnapshotRequest) -> Snapshot:
        vm, _ = self._vm(server.resource_id, server.owner)
        snap = str(self.xapi("VM.snapshot", vm, request.name))
        record: dict[str, Any] = self.xapi("VM.get_record", snap)
        disks = self._disks(record)
        size_gb = sum(xint(rec["virtual_size"]) for _, _, rec in disks) / GIB
        taken = self.context.clock.now()
        marks = {k: v for k, v in record["other_config"].items()
                 if k not in (TAG_TOKEN, MARK_CREATED, *GUARD_TAGS)}
        marks.update({TAG_TAKEN_AT: isoformat(taken), MARK_SNAPSHOT_OF: server.resource_id,
                      MARK_SIZE_GB: f"{size_gb:g}", TAG_OWNER: server.owner, TAG_KEY: server.key,
                      MARK_METHOD: str(BackupMethod.SNAPSHOT)})
        if request.policy:
            marks[TAG_POLICY] = request.policy
        # Marked at once: if the image copy below never happens, this snapshot is the backup.
        self.xapi("VM.set_other_config", snap, marks)
        if request.method is BackupMethod.IMAGE:
            return self._image(snap, disks, request.name)
        return self._snapshot({**record, "other_config": marks})

    def _image(self, snap: str, disks: list[tuple[str, str, dict[str, Any]]], name: str) -> Snapshot:
        """A full copy of a fresh, marked snapshot into our SR, marked as the backup; the snapshot goes."""
        sr = self._named("SR", str(self.config.spec["sr"])) if self.config.spec.get("sr") else NULL_REF
        image = str(self.xapi("VM.copy", snap, name, sr))
        record: dict[str, Any] = self.xapi("VM.get_record", image)
        marks = {**record["other_config"], MARK_METHOD: str(BackupMethod.IMAGE),
                 MARK_BACKUP_ID: record["uuid"]}
        self.xapi("VM.set_other_config", image, marks)
        self._destroy_backup(snap, disks)
        return self._snapshot({**record, "other_config": marks})

    def _snapshot(self, record: Mapping[str, Any]) -> Snapshot:
        marks = record["other_config"]
        taken = marks.get(TAG_TAKEN_AT)
        created = parse_timestamp(taken) if taken else xapi_time(record.get("snapshot_time"))
        return Snapshot(
            provider=self.name, snapshot_id=record["uuid"], resource_id=marks.get(MARK_SNAPSHOT_OF, ""),
            key=marks.get(TAG_KEY, ""), owner=marks[TAG_OWNER], name=record["name_label"],
            created_at=created or self.context.clock.now(), size_gb=float(marks.get(MARK_SIZE_GB, "0")),
            policy=marks.get(TAG_POLICY),
        )

    def list_snapshots(self, owner: str) -> list[Snapshot]:
        records: dict[str, Any] = self.xapi("VM.get_all_records")
        snaps = [self._snapshot(rec) for rec in records.values()
                 if is_backup(rec) and rec["other_config"].get(TAG_OWNER) == owner]
        return sorted(snaps, key=lambda s: (s.key, s.created_at, s.snapshot_id))

    def delete_snapshot(self, snapshot: Snapshot) -> None:
        try:
            snap, record = self._vm(snapshot.snapshot_id, snapshot.owner)
        except NotFoundError:
            return
        if not is_backup(record):
            raise PermanentError(f"{snapshot.snapshot_id} is not a snapshot; refusing to delete it",
                                 code="NOT_A_SNAPSHOT")
        self._destroy_backup(snap, self._disks(record))

    def _destroy_backup(self, vm: str, disks: list[tuple[str, str, dict[str, Any]]]) -> None:
        for _, vdi, _ in disks:
            self._destroy_vdi(vdi)  # VM.destroy keeps the disks; a backup's disks are its own
        try:
            self.xapi("VM.destroy", vm)
        except NotFoundError:
            pass

    # --- restore ----------------------------------------------------------------------------
    def create_from_snapshot(self, request: CreateRequest, snapshot: Snapshot) -> ObservedServer:
        """Clone the backup and carry on as ``create`` does (see the module docstring)."""

        def clone(records: dict[str, Any]) -> str:
            backup = self._backup(records, snapshot, request)
            return str(self.xapi("VM.clone", backup, request.name))

        return self._create(request, clone, restored_from=snapshot.snapshot_id)

    def _backup(self, records: Mapping[str, Any], snapshot: Snapshot, request: CreateRequest) -> str:
        """The ref of an owned backup that ``request``'s disk can hold; refuses anything else."""
        found = [(ref, rec) for ref, rec in records.items() if rec["uuid"] == snapshot.snapshot_id]
        if not found or not is_backup(found[0][1]):
            raise NotFoundError(f"backup {snapshot.snapshot_id} ({snapshot.name}) is not on provider "
                                f"{self.name}; see `reconciler backup list`", code="UNKNOWN_BACKUP")
        ref, record = found[0]
        if record["other_config"].get(TAG_OWNER) != request.owner:
            raise PermanentError(f"backup {snapshot.snapshot_id} is not owned by {request.owner!r}; "
                                 "refusing to restore from it", code="NOT_OWNED")
        root = [xint(rec["virtual_size"]) for dev, _, rec in self._disks(record) if dev == "0"]
        source_gb = max([xint(record["other_config"].get(MARK_DISK_GB))] + [math.ceil(n / GIB) for n in root])
        if request.size.disk_gb < source_gb:
            raise PermanentError(f"{request.key}: backup {snapshot.snapshot_id} holds a {source_gb} GB disk; "
                                 f"a restore needs disk_gb of at least that, not {request.size.disk_gb} "
                                 "(XAPI cannot shrink a disk)", code="DISK_TOO_SMALL")
        return str(ref)

    # --- measured usage ---------------------------------------------------------------------
    def metrics(self, servers: list[ObservedServer]) -> list[MetricSample]:
        """Usage from ``VM_metrics``, in two calls whatever the number of servers.

        XAPI keeps no cumulative CPU counter in its records, so CPU seconds are estimated as the
        summed ``VCPUs_utilisation`` × uptime since ``start_time``; memory is ``memory_actual``
        (the balloon's current size). Network byte counters live only in the RRDs, which this
        provider does not read: they are reported as 0.
        """
        if not servers:
            return []
        records: dict[str, Any] = self.xapi("VM.get_all_records")
        by_uuid = {rec["uuid"]: rec for rec in records.values()}
        metrics: dict[str, Any] = self.xapi("VM_metrics.get_all_records")
        now = self.context.clock.now()
        samples = []
        for server in servers:
            rec = by_uuid.get(server.resource_id)
            if rec is None or not owned(rec, server.owner) or rec["metrics"] not in metrics:
                continue
            met = metrics[rec["metrics"]]
            running = rec["power_state"] == "Running"
            started = xapi_time(met.get("start_time"))
            uptime = max(0.0, (now - started).total_seconds()) if running and started else 0.0
            utilisation = sum(float(v) for v in (met.get("VCPUs_utilisation") or {}).values())
            samples.append(MetricSample(
                provider=self.name, resource_id=server.resource_id, key=server.key, at=now,
                cpu_seconds=round(utilisation * uptime, 3),
                memory_mb=xint(met.get("memory_actual")) // MIB if running else 0,
                net_rx_bytes=0, net_tx_bytes=0, disk_gb=server.size.disk_gb,
            ))
        return samples
