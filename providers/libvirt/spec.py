"""providers.libvirt.spec: what a ``type: libvirt`` Provider document may say, and what the type can do.

The JSON Schema of the Provider's ``spec`` (``max_parallel`` and ``price_list`` are the
engine's) and the type's ``Capabilities``. It imports no SDK: ``validate`` reads this module
alone, so checking YAML never loads libvirt-python (``reconciler.core.provider.type_facts``).
"""

from __future__ import annotations

from typing import Any

from reconciler.core.limits import MAX_WAIT_TIMEOUT_SECONDS
from reconciler.core.provider import Capabilities

SPEC_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["uri"],
    "properties": {
        "uri": {"type": "string", "pattern": "^[A-Za-z][A-Za-z0-9+.-]*://",
                "description": "libvirt connection URI: qemu:///system, qemu+ssh://root@host/system, "
                               "test:///default"},
        "storage_pool": {"type": "string", "minLength": 1, "default": "default",
                         "description": "storage pool new disks and seeds are created in"},
        "network": {"type": "string", "minLength": 1, "default": "default",
                    "description": "libvirt network (or host bridge, with interface_type: bridge)"},
        "interface_type": {"enum": ["network", "bridge", "user"], "default": "network",
                           "description": "user: QEMU user-mode networking, no host setup needed"},
        "domain_type": {"enum": ["kvm", "qemu"], "default": "kvm",
                        "description": "kvm (hardware virtualisation) or qemu (software emulation)"},
        "disk_mode": {"enum": ["overlay", "clone"], "default": "overlay",
                      "description": "overlay: qcow2 copy-on-write on the image; clone: full copy"},
        "cloud_init": {"type": "boolean", "default": True,
                       "description": "attach a NoCloud seed holding the boot scripts as user-data"},
        "shutdown_timeout_seconds": {"type": "number", "minimum": 0, "maximum": MAX_WAIT_TIMEOUT_SECONDS,
                                     "default": 60,
                                     "description": "wait this long for a clean shutdown, then "
                                                    "power off"},
    },
    "additionalProperties": False,
}

CAPABILITIES = Capabilities(
    resize_in_place=True, resize_needs_restart=True, update_tags=True, start_stop=True,
    snapshots=True, metrics=True, paginated=False, flavor_defines_size=False,
)
