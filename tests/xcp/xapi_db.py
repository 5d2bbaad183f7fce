"""xapi_db: the object database and VM lifecycle of the XAPI simulator, without the wire.

Records are stored exactly as XAPI sends them over XML-RPC: ``OpaqueRef:`` handles,
64-bit integers as decimal strings, maps with string keys, enum values spelled like
xapi (``Running``, ``Halted``…). The operations follow xapi's rules closely enough that
a client which works here has a fair chance on a real pool:

* every VM operation is checked like xapi's ``Xapi_vm_lifecycle.check_operation_error``, in
  its order: the power state first (``VM_BAD_POWER_STATE [vm, expected, actual]``), then a
  template allows only clone, copy, provision, memory/vCPU changes and destroy
  (``VM_IS_TEMPLATE [vm, op]``), a snapshot only clone, copy, destroy, revert, export and
  hard_shutdown (``VM_IS_SNAPSHOT [vm, op]``), and only a template can be provisioned
  (``ONLY_PROVISION_TEMPLATE``) — so a snapshot or template is never started directly;
* ``VM.snapshot`` makes a template with ``is_a_snapshot`` whose disks are VDI snapshots of
  the VM's (``snapshot_of`` set: they share the VM's chain); ``VM.clone`` and ``VM.copy``
  make a new top-level VM that is a template when the source was one (a snapshot is), with a
  fresh ``mac_seed`` and ``base_template_name`` in ``other_config``; a clone's disks are
  VDI clones in the same SR, a copy's are full, independent disks in the SR given (or each
  disk's own SR when that reference is not valid; an ISO SR is refused). A snapshot's or
  clone's VDI names the one it came from in ``sm_config:vhd-parent``; a copy's has none;
* ``VM.provision`` clears ``is_a_template`` and creates the disks its ``other_config:disks``
  spec asks for; ``VM.destroy`` keeps the VDIs; storage is thick-provisioned and raises
  ``SR_FULL``.
"""

from __future__ import annotations

import copy
import itertools
import uuid as uuidlib
import xml.etree.ElementTree as ET
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

NULL = "OpaqueRef:NULL"
GIB = 1024**3
MIB = 1024**2

Record = dict[str, Any]

# What xapi lets a template and a snapshot do (Xapi_vm_lifecycle.check_template / check_snapshot).
TEMPLATE_OPS = frozenset({"changing_dynamic_range", "changing_static_range", "changing_memory_limits",
                          "changing_shadow_memory", "changing_VCPUs", "clone", "copy", "export",
                          "metadata_export", "provision"})  # and destroy, unless a default template
SNAPSHOT_OPS = frozenset({"revert", "clone", "copy", "export", "destroy", "hard_shutdown", "metadata_export"})
# What the control domain may do besides (the rest is OPERATION_NOT_ALLOWED).
DOM0_OPS = frozenset({"changing_memory_limits", "changing_dynamic_range", "changing_static_range",
                      "start", "changing_VCPUs"})


class XapiError(Exception):
    """An XAPI failure: becomes ``{'Status': 'Failure', 'ErrorDescription': [code, *params]}``."""

    def __init__(self, code: str, *params: str) -> None:
        super().__init__(code, *params)
        self.code = code
        self.params = [str(p) for p in params]

    @property
    def description(self) -> list[str]:
        return [self.code, *self.params]


def xapi_time(moment: datetime) -> Any:
    """A timestamp as xapi marshals it (``dateTime.iso8601`` with a trailing Z)."""
    import xmlrpc.client

    return xmlrpc.client.DateTime(moment.astimezone(UTC).strftime("%Y%m%dT%H:%M:%SZ"))


class XapiDB:
    """Every object of the simulated pool, by class and reference, plus the VM operations."""

    def __init__(self, now: Callable[[], datetime]) -> None:
        self.now = now
        self.tables: dict[str, dict[str, Record]] = {
            name: {}
            for name in ("pool", "host", "SR", "VDI", "VBD", "network", "VIF", "VM", "VM_metrics",
                         "VM_guest_metrics")
        }
        self._ids = itertools.count(1)
        self.default_utilisation = 0.25
        self._seed()

    # --- low level ------------------------------------------------------------------------
    def new(self, cls: str, **fields: Any) -> str:
        ref = f"OpaqueRef:{uuidlib.uuid4()}"
        record: Record = {"uuid": str(uuidlib.uuid4()), "other_config": {}}
        record.update(fields)
        self.tables[cls][ref] = record
        return ref

    def get(self, cls: str, ref: str) -> Record:
        try:
            return self.tables[cls][ref]
        except KeyError:
            raise XapiError("HANDLE_INVALID", cls, ref) from None

    def by_uuid(self, cls: str, uuid: str) -> str:
        for ref, record in self.tables[cls].items():
            if record["uuid"] == uuid:
                return ref
        raise XapiError("UUID_INVALID", cls, uuid)

    def by_name(self, cls: str, name: str) -> list[str]:
        return [ref for ref, record in self.tables[cls].items() if record.get("name_label") == name]

    # --- seed: one host, storage, networks, dom0, templates -------------------------------
    def _seed(self) -> None:
        host = self.new("host", name_label="xcp-host1", address="127.0.0.1", enabled=True,
                        API_version_major="2", API_version_minor="21", memory_total=str(256 * GIB))
        local = self.new_sr("Local storage", 500 * GIB, "lvm")
        self.new_sr("Small SR", 4 * GIB, "ext")
        self.new_sr("ISO library", 100 * GIB, "iso", content_type="iso")
        self.new("pool", name_label="xcp-pool", master=host, default_SR=local)
        self.new("network", name_label="Pool-wide network associated with eth0", bridge="xenbr0",
                 VIFs=[], MTU="1500")
        self.new("network", name_label="Host internal management network", bridge="xenapi", VIFs=[],
                 MTU="1500")
        dom0 = self.new_vm("Control domain on host: xcp-host1", power_state="Running",
                           is_control_domain=True, memory=4 * GIB, vcpus=4)
        self.get("VM", dom0)["domid"] = "0"
        for name, disk_gib in (("Debian Bookworm 12", 10), ("Ubuntu Jammy Jellyfish 22.04", 10)):
            spec = (f'<provision><disk device="0" size="{disk_gib * GIB}" sr="" bootable="true" '
                    f'type="system"/></provision>')
            self.new_vm(name, is_a_template=True, memory=GIB, vcpus=1, memory_min=512 * MIB,
                        other_config={"default_template": "true", "linux_template": "true",
                                      "disks": spec, "install-methods": "cdrom,http"})
        golden = self.new_vm("golden-debian", is_a_template=True, memory=2 * GIB, vcpus=2,
                             memory_min=GIB, other_config={"mac_seed": str(uuidlib.uuid4())})
        self.attach_new_disk(golden, local, 8 * GIB, "0", name="golden-debian root")

    def new_sr(self, name: str, size: int, sr_type: str, content_type: str = "user") -> str:
        return self.new("SR", name_label=name, type=sr_type, content_type=content_type,
                        physical_size=str(size), physical_utilisation="0", virtual_allocation="0",
                        VDIs=[], shared=False)

    def new_vm(self, name: str, *, power_state: str = "Halted", is_a_template: bool = False,
               is_control_domain: bool = False, memory: int = GIB, memory_min: int | None = None,
               vcpus: int = 1, other_config: dict[str, str] | None = None,
               tags: list[str] | None = None) -> str:
        metrics = self.new("VM_metrics", memory_actual="0", VCPUs_number="0", VCPUs_utilisation={},
                           start_time=xapi_time(datetime(1970, 1, 1, tzinfo=UTC)),
                           install_time=xapi_time(self.now()), last_updated=xapi_time(self.now()))
        return self.new(
            "VM", name_label=name, name_description="", power_state=power_state,
            is_a_template=is_a_template, is_a_snapshot=False, is_control_domain=is_control_domain,
            snapshot_of=NULL, snapshots=[], snapshot_time=xapi_time(datetime(1970, 1, 1, tzinfo=UTC)),
            other_config=dict(other_config or {}), xenstore_data={}, tags=list(tags or []),
            VCPUs_max=str(vcpus), VCPUs_at_startup=str(vcpus),
            memory_static_min=str(memory_min if memory_min is not None else memory),
            memory_static_max=str(memory), memory_dynamic_min=str(memory),
            memory_dynamic_max=str(memory), VBDs=[], VIFs=[], metrics=metrics, guest_metrics=NULL,
            resident_on=NULL, domid="-1", platform={}, PV_args="", HVM_boot_policy="BIOS order",
            blocked_operations={}, allowed_operations=[],
        )

    # --- storage --------------------------------------------------------------------------
    def new_vdi(self, sr: str, size: int, *, name: str = "", snapshot_of: str = NULL,
                other_config: dict[str, str] | None = None) -> str:
        sr_rec = self.get("SR", sr)
        if sr_rec["content_type"] == "iso":
            raise XapiError("SR_OPERATION_NOT_SUPPORTED", sr)
        self._reserve(sr, size)
        vdi = self.new("VDI", name_label=name, SR=sr, VBDs=[], virtual_size=str(size),
                       physical_utilisation=str(size), type="system", sharable=False, read_only=False,
                       is_a_snapshot=snapshot_of != NULL, snapshot_of=snapshot_of, snapshots=[],
                       managed=True, sm_config={}, other_config=dict(other_config or {}))
        sr_rec["VDIs"].append(vdi)
        return vdi

    def _reserve(self, sr: str, size: int) -> None:
        sr_rec = self.get("SR", sr)
        used, total = int(sr_rec["virtual_allocation"]), int(sr_rec["physical_size"])
        if used + size > total:
            raise XapiError("SR_FULL", str(size), str(total - used))
        sr_rec["virtual_allocation"] = sr_rec["physical_utilisation"] = str(used + size)

    def attach(self, vm: str, vdi: str, userdevice: str, vbd_type: str = "Disk") -> str:
        vbd = self.new("VBD", VM=vm, VDI=vdi, userdevice=userdevice, device="", bootable=userdevice == "0",
                       mode="RW", type=vbd_type, empty=vdi == NULL, currently_attached=False)
        self.get("VM", vm)["VBDs"].append(vbd)
        if vdi != NULL:
            self.get("VDI", vdi)["VBDs"].append(vbd)
        return vbd

    def attach_new_disk(self, vm: str, sr: str, size: int, userdevice: str, name: str = "") -> str:
        return self.attach(vm, self.new_vdi(sr, size, name=name), userdevice)

    def vdi_destroy(self, vdi: str) -> None:
        record = self.get("VDI", vdi)
        for vbd in list(record["VBDs"]):
            if self.get("VBD", vbd)["currently_attached"]:
                raise XapiError("VDI_IN_USE", vdi, "destroy")
        for vbd in list(record["VBDs"]):
            vm = self.get("VBD", vbd)["VM"]
            self.get("VM", vm)["VBDs"].remove(vbd)
            del self.tables["VBD"][vbd]
        sr = self.get("SR", record["SR"])
        sr["VDIs"].remove(vdi)
        freed = int(sr["virtual_allocation"]) - int(record["virtual_size"])
        sr["virtual_allocation"] = sr["physical_utilisation"] = str(freed)
        del self.tables["VDI"][vdi]

    def vdi_resize(self, vdi: str, size: str) -> None:
        record = self.get("VDI", vdi)
        new, old = int(size), int(record["virtual_size"])
        if new < old:
            raise XapiError("VDI_SIZE_TOO_SMALL", vdi, size)
        self._reserve(record["SR"], new - old)
        record["virtual_size"] = record["physical_utilisation"] = str(new)

    # --- VM lifecycle -----------------------------------------------------------------------
    def power_check(self, vm: str, *expected: str) -> Record:
        record = self.get("VM", vm)
        if record["power_state"] not in expected:
            raise XapiError("VM_BAD_POWER_STATE", vm, expected[0].lower(), record["power_state"].lower())
        return record

    def op_check(self, vm: str, op: str, *power_states: str) -> Record:
        """xapi's check of an operation on a VM, in xapi's order (see the module docstring)."""
        record = self.power_check(vm, *power_states)
        if record["is_a_template"] and not record["is_a_snapshot"]:
            default = record["other_config"].get("default_template") == "true"
            if op not in TEMPLATE_OPS and not (op == "destroy" and not default):
                raise XapiError("VM_IS_TEMPLATE", vm, op)
        if record["is_a_snapshot"] and op not in SNAPSHOT_OPS:
            raise XapiError("VM_IS_SNAPSHOT", vm, op)
        if op == "provision" and not record["is_a_template"]:
            raise XapiError("ONLY_PROVISION_TEMPLATE")
        if record["is_control_domain"] and op not in DOM0_OPS:
            raise XapiError("OPERATION_NOT_ALLOWED", "This operation is not allowed on a control domain")
        return record

    def vm_clone(self, vm: str, new_name: str) -> str:
        """A new top-level VM whose disks are clones of the source's (copy-on-write on a real SR)."""
        self.op_check(vm, "clone", "Halted")
        return self._new_from(vm, new_name, copy_to=None)

    def vm_copy(self, vm: str, new_name: str, sr: str) -> str:
        """Like clone, but every disk is a full, independent copy, in ``sr`` when that is valid."""
        target = sr if sr in self.tables["SR"] else None
        if target is not None and self.get("SR", target)["content_type"] == "iso":
            raise XapiError("OPERATION_NOT_ALLOWED", "Cannot copy a VM's disks to an ISO SR")
        self.op_check(vm, "copy", "Halted")
        return self._new_from(vm, new_name, copy_to=target or "")

    def _new_from(self, vm: str, new_name: str, *, copy_to: str | None) -> str:
        """Xapi_vm_clone for clone (``copy_to`` None) and copy ("" = each disk's own SR)."""
        source = self.get("VM", vm)
        fields = copy.deepcopy(source)
        other = fields["other_config"]
        other.pop("default_template", None)
        other["mac_seed"] = str(uuidlib.uuid4())
        if source["is_a_template"]:
            other.setdefault("base_template_name", source["name_label"])
        memory = int(source["memory_static_max"])
        new = self.new_vm(new_name, is_a_template=source["is_a_template"], memory=memory,
                          vcpus=int(source["VCPUs_max"]), other_config=other, tags=fields["tags"])
        keep = ("memory_static_min", "memory_dynamic_min", "memory_dynamic_max", "VCPUs_at_startup",
                "xenstore_data", "platform", "PV_args", "HVM_boot_policy", "name_description")
        self.get("VM", new).update({key: fields[key] for key in keep})
        self._copy_devices(vm, new, snapshot=False, copy_to=copy_to)
        return new

    def _copy_devices(self, source: str, target: str, *, snapshot: bool, copy_to: str | None = None) -> None:
        for vbd in self.get("VM", source)["VBDs"]:
            vbd_rec = self.get("VBD", vbd)
            vdi = vbd_rec["VDI"]
            if vdi != NULL and vbd_rec["type"] == "Disk":
                vdi_rec = self.get("VDI", vdi)
                sr = copy_to or vdi_rec["SR"]
                vdi = self.new_vdi(sr, int(vdi_rec["virtual_size"]), name=vdi_rec["name_label"],
                                   snapshot_of=vdi if snapshot else NULL,
                                   other_config=dict(vdi_rec["other_config"]))
                if copy_to is None:  # a snapshot or clone shares the source's chain; a copy does not
                    self.get("VDI", vdi)["sm_config"] = {"vhd-parent": vdi_rec["uuid"]}
            self.attach(target, vdi, vbd_rec["userdevice"], vbd_rec["type"])
        for vif in self.get("VM", source)["VIFs"]:
            vif_rec = self.get("VIF", vif)
            self.vif_create({**vif_rec, "VM": target, "MAC": vif_rec["MAC"] if snapshot else ""})

    def vm_provision(self, vm: str) -> None:
        record = self.op_check(vm, "provision", "Halted")
        record["is_a_template"] = False
        spec = record["other_config"].get("disks")
        if not spec:
            return
        pool = next(iter(self.tables["pool"].values()))
        for disk in ET.fromstring(spec).findall("disk"):
            sr_uuid = disk.get("sr") or ""
            sr = self.by_uuid("SR", sr_uuid) if sr_uuid else pool["default_SR"]
            self.attach_new_disk(vm, sr, int(disk.get("size", "0")), disk.get("device", "0"),
                                 name=f"{record['name_label']} {disk.get('device', '0')}")
        del record["other_config"]["disks"]

    def vm_start(self, vm: str) -> None:
        record = self.op_check(vm, "start", "Halted")
        record["power_state"] = "Running"
        record["domid"] = str(next(self._ids))
        record["resident_on"] = next(iter(self.tables["host"]))
        vcpus = int(record["VCPUs_at_startup"])
        self.get("VM_metrics", record["metrics"]).update(
            memory_actual=record["memory_dynamic_max"], VCPUs_number=str(vcpus),
            VCPUs_utilisation={str(i): self.default_utilisation for i in range(vcpus)},
            start_time=xapi_time(self.now()), last_updated=xapi_time(self.now()),
        )
        networks = {f"{self.get('VIF', vif)['device']}/ip": f"10.0.0.{int(record['domid']) % 250 + 2}"
                    for vif in record["VIFs"]}
        if record["guest_metrics"] == NULL:
            record["guest_metrics"] = self.new("VM_guest_metrics", os_version={"name": "Debian"},
                                               networks=networks, memory={}, live=True,
                                               last_updated=xapi_time(self.now()))
        for vbd in record["VBDs"]:
            self.get("VBD", vbd)["currently_attached"] = True

    def vm_halt(self, vm: str, hard: bool) -> None:
        states = ("Running", "Paused", "Suspended") if hard else ("Running",)
        record = self.op_check(vm, "hard_shutdown" if hard else "clean_shutdown", *states)
        record["power_state"] = "Halted"
        record["domid"] = "-1"
        record["resident_on"] = NULL
        self.get("VM_metrics", record["metrics"]).update(memory_actual="0", VCPUs_utilisation={})
        for vbd in record["VBDs"]:
            self.get("VBD", vbd)["currently_attached"] = False

    def vm_set_power(self, vm: str, op: str, expected: str, new: str) -> None:
        self.op_check(vm, op, expected)["power_state"] = new

    def vm_destroy(self, vm: str) -> None:
        record = self.get("VM", vm)
        if record["is_control_domain"]:
            raise XapiError("OPERATION_NOT_ALLOWED", "This operation is not allowed on dom0")
        self.op_check(vm, "destroy", "Halted")
        for vbd in record["VBDs"]:
            vdi = self.tables["VBD"].pop(vbd)["VDI"]
            if vdi in self.tables["VDI"]:
                self.get("VDI", vdi)["VBDs"].remove(vbd)
        for vif in record["VIFs"]:
            self.vif_destroy(vif, detach=False)
        self.tables["VM_metrics"].pop(record["metrics"], None)
        self.tables["VM_guest_metrics"].pop(record["guest_metrics"], None)
        if record["snapshot_of"] in self.tables["VM"]:
            self.get("VM", record["snapshot_of"])["snapshots"].remove(vm)
        del self.tables["VM"][vm]

    def vm_snapshot(self, vm: str, new_name: str) -> str:
        source = self.op_check(vm, "snapshot", "Running", "Halted", "Paused", "Suspended")
        snap = self.new_vm(new_name, is_a_template=True, memory=int(source["memory_static_max"]),
                           vcpus=int(source["VCPUs_max"]), other_config=copy.deepcopy(source["other_config"]),
                           tags=list(source["tags"]))
        self.get("VM", snap).update(is_a_snapshot=True, snapshot_of=vm, snapshot_time=xapi_time(self.now()),
                                    xenstore_data=dict(source["xenstore_data"]))
        self._copy_devices(vm, snap, snapshot=True)
        source["snapshots"].append(snap)
        return snap

    def vm_set_vcpus(self, vm: str, field: str, value: str) -> None:
        record = self.op_check(vm, "changing_VCPUs", "Halted")
        count = int(value)
        other = "VCPUs_at_startup" if field == "VCPUs_max" else "VCPUs_max"
        at_startup, vcpus_max = (int(record[other]), count) if field == "VCPUs_max" else (
            count, int(record[other]))
        if not 0 < at_startup <= vcpus_max:
            raise XapiError("INVALID_VALUE", field, value)
        record[field] = str(count)

    def vm_set_memory_limits(self, vm: str, smin: str, smax: str, dmin: str, dmax: str) -> None:
        record = self.op_check(vm, "changing_memory_limits", "Halted")
        if not 0 < int(smin) <= int(dmin) <= int(dmax) <= int(smax):
            raise XapiError("MEMORY_CONSTRAINT_VIOLATION", "Memory limits must satisfy: "
                            "static_min <= dynamic_min <= dynamic_max <= static_max")
        record.update(memory_static_min=smin, memory_static_max=smax, memory_dynamic_min=dmin,
                      memory_dynamic_max=dmax)

    # --- networking ---------------------------------------------------------------------------
    def vif_create(self, fields: Record) -> str:
        vm, network = fields["VM"], fields["network"]
        vm_rec, net_rec = self.get("VM", vm), self.get("network", network)
        device = str(fields["device"])
        if any(self.get("VIF", v)["device"] == device for v in vm_rec["VIFs"]):
            raise XapiError("DEVICE_ALREADY_EXISTS", device)
        mac = fields.get("MAC") or "c2:00:00:" + ":".join(f"{b:02x}" for b in uuidlib.uuid4().bytes[:3])
        vif = self.new("VIF", device=device, network=network, VM=vm, MAC=mac,
                       MTU=str(fields.get("MTU", "1500")),
                       currently_attached=False, qos_algorithm_type=fields.get("qos_algorithm_type", ""),
                       qos_algorithm_params=dict(fields.get("qos_algorithm_params", {})),
                       other_config=dict(fields.get("other_config", {})))
        vm_rec["VIFs"].append(vif)
        net_rec["VIFs"].append(vif)
        return vif

    def vif_destroy(self, vif: str, detach: bool = True) -> None:
        record = self.get("VIF", vif)
        if detach:
            self.get("VM", record["VM"])["VIFs"].remove(vif)
        self.get("network", record["network"])["VIFs"].remove(vif)
        del self.tables["VIF"][vif]
