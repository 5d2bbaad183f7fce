"""Test configuration for the libvirt provider's tests.

Without libvirt-python (building it needs libvirt's headers, see scripts/setup/libvirt.sh)
only test_sdk.py is collected, and it reports the skip and why. Every other test imports a
module of the ``providers.libvirt`` package, whose ``__init__`` registers the provider and
so imports libvirt — test_seed.py too, though the seed builder itself needs no libvirt.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

HAVE_LIBVIRT = importlib.util.find_spec("libvirt") is not None
NEEDS_NO_LIBVIRT = ("test_sdk.py",)

if HAVE_LIBVIRT:
    from tests.libvirt.fixtures import make_provider, provider, world  # noqa: F401 - fixtures for this folder
else:
    collect_ignore = [path.name for path in Path(__file__).parent.glob("test_*.py")
                      if path.name not in NEEDS_NO_LIBVIRT]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "libvirtd: needs a real libvirtd with the QEMU driver (qemu:///system)")
