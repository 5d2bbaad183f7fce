"""Conformance backend for openstack: the provider against a real, in-process Nova (fake hypervisor).

Nova's test services reconfigure the whole process (oslo.config, logging, threads), so they
run only in their own pytest invocation: ``RECONCILER_NOVA_TESTS=1 pytest tests/openstack``.
There, ``tests/openstack/test_conformance.py`` runs this suite's test functions with a
backend whose ``cloud`` is the running Nova (see ``tests/openstack/conftest.py``). In every
other process this file lists the backend as skipped, with that command as the reason, and
imports neither nova nor openstacksdk.

Each provider gets a project of its own (servers, quotas) and finds it as a cloud in the
session's clouds.yaml. Transient faults are a load balancer's 503 in front of Nova; the
permanent fault is Nova's own answer to a create over quota (the project's instance quota
set to 0). Listing pages hold 5 servers, so the pagination test pages through 11 servers.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reconciler.core.model import CreateRequest, ProviderConfig, Size
from reconciler.core.provider import Provider, create_provider
from tests.conformance.backend import BaseBackend, Shape, fixed_context

IMAGE_ID = "155d900f-4e14-4e4c-a73d-069cbf4541e6"  # the first image Nova's GlanceFixture serves
SEPARATE_RUN = ("Nova's in-process services need their own pytest process: "
                "RECONCILER_NOVA_TESTS=1 pytest tests/openstack")


@dataclass
class OpenStackBackend(BaseBackend):
    cloud: Any = field(default=None, repr=False)  # tests.openstack.novacloud.NovaCloud, when running

    def project_of(self, provider: Provider) -> Any:
        return self.cloud.projects[provider.config.spec["cloud"]]

    def make_provider(self, tmp_path: Path) -> Provider:
        project = self.cloud.project()
        spec = {"cloud": project.cloud_name, "network": self.cloud.network_id, "page_size": self.page_size,
                "poll_interval": 0.1, "wait_timeout": 60}
        config = ProviderConfig(name="openstack-conformance", type="openstack", spec=spec, max_parallel=4)
        return create_provider(config, fixed_context(tmp_path))

    def create_unowned(self, provider: Provider, name: str) -> None:
        self.project_of(provider).api.post_server({"server": {
            "name": name, "imageRef": self.image, "flavorRef": "1", "networks": "none",
            "metadata": {"made-by": "hand"},
        }})

    def make_many(self, provider: Provider, requests: Sequence[CreateRequest]) -> None:
        """Creates in parallel, polling less often: Nova runs in this process, polls cost its CPU."""
        settings = provider.settings  # type: ignore[attr-defined]
        provider.settings = dataclasses.replace(settings, poll_interval=0.5)  # type: ignore[attr-defined]
        try:
            with ThreadPoolExecutor(max_workers=6) as pool:
                list(pool.map(provider.create, requests))
        finally:
            provider.settings = settings  # type: ignore[attr-defined]

    def inject_transient(self, provider: Provider, count: int) -> None:
        self.project_of(provider).gateway.unavailable = count

    def inject_permanent(self, provider: Provider) -> None:
        self.project_of(provider).set_quota(instances=0)


def make_backend(cloud: Any = None) -> OpenStackBackend:
    return OpenStackBackend(
        name="openstack-nova",
        skip_reason=None if cloud is not None else SEPARATE_RUN,
        cloud=cloud,
        image=IMAGE_ID,
        small=Shape(Size(cpus=1, memory_mb=512, disk_gb=1), flavor="m1.tiny"),
        large=Shape(Size(cpus=1, memory_mb=2048, disk_gb=1), flavor="m1.small"),
        page_size=5,
        listing_operation="servers.list",
        describe_calls=2,  # one GET /servers/{id} each: the listing cannot filter on ids
        kill_skip="Nova runs inside the test process: a forked process would talk to a copy of it",
    )


BACKENDS = [make_backend()]
