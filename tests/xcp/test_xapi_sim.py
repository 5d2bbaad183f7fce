"""The simulator itself speaks XAPI's wire format: checked with a raw XML-RPC proxy and the SDK."""

from __future__ import annotations

import xmlrpc.client
from typing import Any

import pytest
import XenAPI

from tests.xcp.xapi_db import GIB
from tests.xcp.xapi_sim import XapiSim


def test_raw_wire_format(sim: XapiSim) -> None:
    proxy: Any = xmlrpc.client.ServerProxy(sim.url, allow_none=True)
    denied = proxy.session.login_with_password("root", "wrong", "2.20", "test")
    assert denied == {"Status": "Failure",
                      "ErrorDescription": ["SESSION_AUTHENTICATION_FAILED", "root", "Authentication failure"]}
    login = proxy.session.login_with_password("root", "xcp-secret", "2.20", "test")
    assert login["Status"] == "Success" and login["Value"].startswith("OpaqueRef:")
    session = login["Value"]
    records = proxy.VM.get_all_records(session)["Value"]
    assert all(ref.startswith("OpaqueRef:") for ref in records)
    dom0 = next(r for r in records.values() if r["is_control_domain"])
    assert dom0["memory_static_max"] == str(4 * GIB)  # int64 travels as a string
    assert isinstance(dom0["snapshot_time"], xmlrpc.client.DateTime)
    bogus = proxy.VM.get_record(session, "OpaqueRef:nope")
    assert bogus["ErrorDescription"] == ["HANDLE_INVALID", "VM", "OpaqueRef:nope"]
    assert proxy.VM.frobnicate(session)["ErrorDescription"] == ["MESSAGE_METHOD_UNKNOWN", "VM.frobnicate"]
    assert proxy.VM.get_all(session + "x")["ErrorDescription"][0] == "SESSION_INVALID"
    template = proxy.VM.get_by_name_label(session, "Debian Bookworm 12")["Value"][0]
    typed = proxy.VM.set_VCPUs_max(session, template, 2)  # a bare int is a type error
    assert typed["ErrorDescription"][0] == "FIELD_TYPE_ERROR"


def test_sdk_template_install_and_sr_full(sim: XapiSim) -> None:
    session = XenAPI.Session(sim.url)
    session.xenapi.login_with_password("root", "xcp-secret", "2.20", "test")
    api = session.xenapi
    template = api.VM.get_by_name_label("Debian Bookworm 12")[0]
    vm = api.VM.clone(template, "scratch")
    assert api.VM.get_is_a_template(vm) is True
    small = api.SR.get_by_name_label("Small SR")[0]
    spec = api.VM.get_other_config(vm)["disks"].replace('sr=""', f'sr="{api.SR.get_uuid(small)}"')
    api.VM.remove_from_other_config(vm, "disks")
    api.VM.add_to_other_config(vm, "disks", spec)
    with pytest.raises(XenAPI.Failure) as failure:
        api.VM.provision(vm)  # 10 GiB into a 4 GiB SR
    assert failure.value.details[0] == "SR_FULL"
    vm2 = api.VM.clone(template, "scratch2")
    api.VM.provision(vm2)
    assert api.VM.get_is_a_template(vm2) is False
    assert "disks" not in api.VM.get_other_config(vm2)
    with pytest.raises(XenAPI.Failure) as bad_state:
        api.VM.clean_shutdown(vm2)
    assert bad_state.value.details[2:] == ["running", "halted"]
    api.VM.start(vm2, False, False)
    assert api.VM.get_power_state(vm2) == "Running"
    sim.invalidate_sessions()
    assert api.VM.get_power_state(vm2) == "Running"  # the SDK logged in again by itself
    assert sim.calls["session.login_with_password"] == 2
    session.xenapi.session.logout()


def test_injected_failures_and_dropped_replies(sim: XapiSim) -> None:
    session = XenAPI.Session(sim.url)
    session.xenapi.login_with_password("root", "xcp-secret", "2.20", "test")
    sim.fail("VM.get_all", "HOST_OFFLINE", "OpaqueRef:host", times=2)
    for _ in range(2):
        with pytest.raises(XenAPI.Failure) as offline:
            session.xenapi.VM.get_all()
        assert offline.value.details == ["HOST_OFFLINE", "OpaqueRef:host"]
    assert len(session.xenapi.VM.get_all()) == 4
    sim.drop_response("VM.get_all", times=2)  # the stdlib transport resends once by itself
    with pytest.raises(ConnectionError):
        session.xenapi.VM.get_all()
    assert sim.calls["VM.get_all"] == 5


def _code(call: Any, *args: Any) -> list[str]:
    """The ErrorDescription a call fails with (the call must fail)."""
    with pytest.raises(XenAPI.Failure) as failure:
        call(*args)
    return [str(d) for d in failure.value.details]


def test_snapshots_and_templates_do_only_what_xapi_lets_them(sim: XapiSim) -> None:
    session = XenAPI.Session(sim.url)
    session.xenapi.login_with_password("root", "xcp-secret", "2.20", "test")
    api = session.xenapi
    vm = api.VM.clone(api.VM.get_by_name_label("Debian Bookworm 12")[0], "vm")
    assert _code(api.VM.start, vm, False, False) == ["VM_IS_TEMPLATE", vm, "start"]
    api.VM.provision(vm)
    assert _code(api.VM.provision, vm) == ["ONLY_PROVISION_TEMPLATE"]
    api.VM.start(vm, False, False)
    snap = api.VM.snapshot(vm, "snap")
    assert api.VM.get_is_a_template(snap) and api.VM.get_is_a_snapshot(snap)
    assert _code(api.VM.start, snap, False, False) == ["VM_IS_SNAPSHOT", snap, "start"]
    assert _code(api.VM.provision, snap) == ["VM_IS_SNAPSHOT", snap, "provision"]
    assert _code(api.VM.set_VCPUs_max, snap, "4") == ["VM_IS_SNAPSHOT", snap, "changing_VCPUs"]
    assert _code(api.VM.snapshot, snap, "again") == ["VM_IS_SNAPSHOT", snap, "snapshot"]
    assert _code(api.VM.set_is_a_template, vm, True)[0] == "VM_BAD_POWER_STATE"  # running: halt it first
    assert _code(api.VM.clone, vm, "running")[0] == "VM_BAD_POWER_STATE"

    clone = api.VM.clone(snap, "from-snap")  # a snapshot is a template: so is its clone
    assert api.VM.get_is_a_template(clone) and not api.VM.get_is_a_snapshot(clone)
    assert api.VM.get_snapshot_of(clone) == "OpaqueRef:NULL"
    marks, snap_marks = api.VM.get_other_config(clone), api.VM.get_other_config(snap)
    assert marks["base_template_name"] == "Debian Bookworm 12"  # kept from the first clone
    assert marks["mac_seed"] != snap_marks["mac_seed"]  # a clone gets a fresh one, a snapshot keeps it
    assert _code(api.VM.start, clone, False, False) == ["VM_IS_TEMPLATE", clone, "start"]
    api.VM.set_VCPUs_max(clone, "2")  # sizing a template is allowed
    api.VM.provision(clone)
    api.VM.start(clone, False, False)
    assert api.VM.get_power_state(clone) == "Running"

    debian = api.VM.get_by_name_label("Debian Bookworm 12")[0]
    assert _code(api.VM.destroy, debian) == ["VM_IS_TEMPLATE", debian, "destroy"]  # a default template


def test_copy_makes_full_disks_in_the_sr_given(sim: XapiSim) -> None:
    session = XenAPI.Session(sim.url)
    session.xenapi.login_with_password("root", "xcp-secret", "2.20", "test")
    api = session.xenapi
    golden = api.VM.get_by_name_label("golden-debian")[0]
    [golden_vbd] = api.VM.get_VBDs(golden)
    golden_vdi = api.VBD.get_VDI(golden_vbd)
    iso, small = api.SR.get_by_name_label("ISO library")[0], api.SR.get_by_name_label("Small SR")[0]
    assert _code(api.VM.copy, golden, "x", iso)[0] == "OPERATION_NOT_ALLOWED"
    assert _code(api.VM.copy, golden, "x", small)[0] == "SR_FULL"  # 8 GiB into 4 GiB
    copied = api.VM.copy(golden, "copied", "OpaqueRef:NULL")  # not a valid SR: each disk's own
    assert api.VM.get_is_a_template(copied)
    [vbd] = api.VM.get_VBDs(copied)
    vdi = api.VBD.get_record(vbd)["VDI"]
    assert api.VDI.get_SR(vdi) == api.VDI.get_SR(golden_vdi) and api.VDI.get_sm_config(vdi) == {}
    cloned = api.VM.clone(golden, "cloned")
    [vbd] = api.VM.get_VBDs(cloned)
    vdi = api.VBD.get_record(vbd)["VDI"]
    assert api.VDI.get_sm_config(vdi) == {"vhd-parent": api.VDI.get_uuid(golden_vdi)}
    assert api.VDI.get_virtual_size(vdi) == str(8 * GIB)
