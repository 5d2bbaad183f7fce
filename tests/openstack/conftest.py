"""Fixtures of the OpenStack provider tests: one real, in-process Nova per session, a project per test.

Nova's test services reconfigure the whole process (oslo.config, logging, threads), so these
tests run only in their own pytest invocation, and only when asked to:

    RECONCILER_NOVA_TESTS=1 pytest -p no:cacheprovider tests/openstack

Anywhere else (the main ``pytest`` run) only ``test_settings.py`` is collected from this folder,
so nova is never imported there. The shared conformance suite runs here too
(``test_conformance.py``).
"""

from __future__ import annotations

import hashlib
import os
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

ENABLED = os.environ.get("RECONCILER_NOVA_TESTS") == "1"
if ENABLED:
    # Nova's functional tests run under eventlet; patch the process before anything imports
    # sockets or threads. (Nova's native-threading mode deadlocks in its test fixtures' cell and
    # database locks as soon as a few requests run at once.)
    os.environ["OS_NOVA_DISABLE_EVENTLET_PATCHING"] = "0"
    from nova import monkey_patch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "eventlet is deprecated": Nova's choice, not ours
        monkey_patch.patch()
else:
    collect_ignore_glob = ["test_nova_*.py", "test_conformance.py"]  # test_settings.py needs no Nova


def pytest_configure(config: pytest.Config) -> None:
    """In the Nova process only: nova, oslo, eventlet and openstacksdk deprecate much; none of it ours."""
    if ENABLED:
        categories = ("DeprecationWarning", "PendingDeprecationWarning",
                      "eventlet.EventletDeprecationWarning")
        for category in categories:
            config.addinivalue_line("filterwarnings", f"ignore::{category}")


if TYPE_CHECKING:
    from providers.openstack.provider import OpenStackProvider
    from tests.conformance.backend_openstack import OpenStackBackend
    from tests.openstack.novacloud import NovaCloud, Project

MakeProvider = Callable[..., "OpenStackProvider"]


@pytest.fixture(scope="session")
def nova() -> Iterator[NovaCloud]:
    from tests.openstack.novacloud import NovaCloud

    cloud = NovaCloud.boot()
    saved = os.environ.get("OS_CLIENT_CONFIG_FILE")
    os.environ["OS_CLIENT_CONFIG_FILE"] = str(cloud.clouds_yaml)
    try:
        yield cloud
    finally:
        if saved is None:
            os.environ.pop("OS_CLIENT_CONFIG_FILE", None)
        else:
            os.environ["OS_CLIENT_CONFIG_FILE"] = saved
        cloud.shutdown()


@pytest.fixture
def project(nova: NovaCloud) -> Project:
    """A fresh project of the cloud (its servers and quotas are this test's alone)."""
    return nova.project()


@pytest.fixture
def owner(request: pytest.FixtureRequest) -> str:
    """A deployment name unique to this test (snapshots live in one image store for all)."""
    return "os-" + hashlib.sha256(request.node.nodeid.encode()).hexdigest()[:10]


@pytest.fixture
def make_provider(nova: NovaCloud, project: Project, tmp_path: Path) -> Iterator[MakeProvider]:
    """Providers on this test's project; keyword arguments override the Provider spec."""
    from providers.openstack.provider import OpenStackProvider
    from reconciler.core.model import ProviderConfig
    from reconciler.core.provider import create_provider
    from tests.conformance.backend import fixed_context

    made: list[OpenStackProvider] = []

    def make(**spec: Any) -> OpenStackProvider:
        full = {"cloud": project.cloud_name, "network": nova.network_id, "poll_interval": 0.1,
                "wait_timeout": 60, **spec}
        config = ProviderConfig(name="nova", type="openstack", spec=full, max_parallel=4)
        provider = create_provider(config, fixed_context(tmp_path))
        assert isinstance(provider, OpenStackProvider)
        made.append(provider)
        return provider

    yield make
    for provider in made:
        provider.close()


@pytest.fixture(scope="session")
def huge_flavor(nova: NovaCloud) -> str:
    """A flavor no compute host can hold (its root disk is larger than any host's)."""
    nova.create_flavor("huge", vcpus=1, ram=512, disk=10_000_000)
    return "huge"


# --- the shared conformance suite, on this Nova ----------------------------------------------
@pytest.fixture(scope="session")
def backend(nova: NovaCloud) -> OpenStackBackend:
    from tests.conformance.backend_openstack import make_backend

    return make_backend(nova)


@pytest.fixture
def provider(backend: OpenStackBackend, tmp_path: Path) -> Iterator[Any]:
    made = backend.make_provider(tmp_path)
    try:
        yield made
    finally:
        made.close()
