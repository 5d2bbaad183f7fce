"""Reading the simulator's state from tests: records by uuid, disks, decoded user data."""

from __future__ import annotations

import base64
from typing import Any

from tests.xcp.xapi_sim import XapiSim


def vm_by_uuid(sim: XapiSim, uuid: str) -> dict[str, Any]:
    return next(r for r in sim.vm_records().values() if r["uuid"] == uuid)


def vm_exists(sim: XapiSim, uuid: str) -> bool:
    return any(r["uuid"] == uuid for r in sim.vm_records().values())


def disks_of(sim: XapiSim, uuid: str) -> list[dict[str, Any]]:
    """VDI records attached as disks to a VM."""
    with sim.lock:
        record = sim.db.get("VM", sim.db.by_uuid("VM", uuid))
        vbds = [sim.db.get("VBD", vbd) for vbd in record["VBDs"]]
        return [dict(sim.db.get("VDI", vbd["VDI"])) for vbd in vbds if vbd["type"] == "Disk"]


def vdi_count(sim: XapiSim) -> int:
    with sim.lock:
        return len(sim.db.tables["VDI"])


def vifs_of(sim: XapiSim, uuid: str) -> list[dict[str, Any]]:
    with sim.lock:
        record = sim.db.get("VM", sim.db.by_uuid("VM", uuid))
        return [dict(sim.db.get("VIF", vif)) for vif in record["VIFs"]]


def network_name(sim: XapiSim, ref: str) -> str:
    with sim.lock:
        return str(sim.db.get("network", ref)["name_label"])


def user_data(record: dict[str, Any]) -> str:
    """What a guest would read back from xenstore: the chunks, joined and decoded."""
    data = record["xenstore_data"]
    chunks = int(data["vm-data/user-data/chunks"])
    return base64.b64decode("".join(data[f"vm-data/user-data/{n}"] for n in range(chunks))).decode()


def mutating_calls(sim: XapiSim) -> int:
    """Calls that change state (everything but reads and login/logout)."""
    return sum(n for method, n in sim.calls.items()
               if not method.rpartition(".")[2].startswith("get_") and not method.startswith("session."))
