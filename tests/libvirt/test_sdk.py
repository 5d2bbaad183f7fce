"""The libvirt binding: installed, and offering every call and flag the provider relies on."""

from __future__ import annotations

import importlib

import pytest

# Constants the provider and its helpers use; libvirt >= 1.3.3 has them all.
NEEDED = [
    "VIR_DOMAIN_DEFINE_VALIDATE", "VIR_DOMAIN_XML_INACTIVE", "VIR_DOMAIN_METADATA_ELEMENT",
    "VIR_DOMAIN_AFFECT_CONFIG", "VIR_DOMAIN_AFFECT_LIVE", "VIR_DOMAIN_UNDEFINE_MANAGED_SAVE",
    "VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA", "VIR_DOMAIN_STATS_STATE", "VIR_DOMAIN_STATS_CPU_TOTAL",
    "VIR_DOMAIN_STATS_BALLOON", "VIR_DOMAIN_STATS_INTERFACE", "VIR_ERR_OPERATION_TIMEOUT",
    "VIR_ERR_XML_INVALID_SCHEMA", "VIR_ERR_NO_DOMAIN_SNAPSHOT", "VIR_DOMAIN_SHUTOFF_CRASHED",
]
METHODS = {
    "virConnect": ["listAllDomains", "defineXMLFlags", "getAllDomainStats", "getMaxVcpus", "newStream"],
    "virDomain": ["setMetadata", "rename", "snapshotCreateXML", "listAllSnapshots", "undefineFlags"],
    "virStorageVol": ["upload"],
    "virStoragePool": ["createXMLFrom"],
}


def test_libvirt_python_offers_what_the_provider_uses() -> None:
    try:
        libvirt = importlib.import_module("libvirt")
    except ModuleNotFoundError:
        pytest.skip("libvirt-python is not installed, so the libvirt provider's tests are skipped "
                    "(scripts/setup/libvirt.sh installs its build needs; then pip install libvirt-python)")
    assert [name for name in NEEDED if not hasattr(libvirt, name)] == []
    missing = [f"{cls}.{method}" for cls, methods in METHODS.items() for method in methods
               if not hasattr(getattr(libvirt, cls), method)]
    assert missing == []
