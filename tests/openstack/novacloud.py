"""tests.openstack.novacloud: a real Nova in this process — API, conductor, scheduler, placement, computes.

Nova's own functional-test base (``_IntegratedTestBase``) runs the real compute API, conductor,
scheduler, placement and ``nova-compute`` services on the fake hypervisor, with in-memory
SQLite and messaging, and serves the API through wsgi-intercept (HTTP requests to its host
name never leave the process). We start it once per test session, under eventlet as Nova's
own functional tests run (``conftest.py`` patches the process first), with two compute hosts
(a resize moves the server to another host) and casts left asynchronous, so builds, resizes
and deletes take time and the provider's polls, waits and 409 handling meet Nova's real
behaviour.

Each test gets its own project (``NovaCloud.project``): its own servers and quotas, reached at
its own host name through a ``Gateway`` that does what keystonemiddleware and a load balancer
would in a real cloud: sets the identity headers, counts requests, and misbehaves when a test
asks it to. Providers find their project as a cloud in a generated clouds.yaml
(``OS_CLIENT_CONFIG_FILE``), so they are configured exactly as a user would configure them.
"""

from __future__ import annotations

import importlib.metadata
import json
import logging
import sys
import threading
import urllib.parse
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import fixtures
import yaml
from nova.tests.functional import integrated_helpers
from nova.tests.functional.api import client as nova_client
from wsgi_intercept import interceptor

IMAGE_ID = "155d900f-4e14-4e4c-a73d-069cbf4541e6"  # GlanceFixture's first image
UNIQUE_IMAGE_NAME = "fakeimage7"  # the only image of that name in GlanceFixture
AMBIGUOUS_IMAGE_NAME = "fakeimage123456"  # a name several GlanceFixture images share
ROLES = ("admin", "member", "reader")
MICROVERSION = "2.52"
NEUTRON_HOST = "neutron.nova.test"
NEUTRON_ENDPOINT = f"http://{NEUTRON_HOST}/"


def api_paste_config() -> str:
    """Where pip put nova's api-paste.ini (Nova looks under site-packages/etc by default)."""
    for entry in importlib.metadata.files("nova") or ():
        if str(entry).endswith("etc/nova/api-paste.ini"):
            return str(Path(str(entry.locate())).resolve())
    fallback = Path(sys.prefix) / "etc" / "nova" / "api-paste.ini"
    if fallback.exists():
        return str(fallback)
    raise RuntimeError("nova's api-paste.ini is not installed; reinstall nova")


class Gateway:
    """What sits in front of Nova in a real cloud: identity headers and a load balancer.

    It counts every request and keeps each answer's status, sets the identity keystonemiddleware
    would (``user`` with ``roles``; Nova's test stub makes the user ``admin`` an admin), and on
    request misbehaves like a load balancer: ``unavailable`` answers the next
    N requests with a 503 of its own; ``lose`` passes the next matching request to Nova and
    then drops Nova's answer, replying 502 (a create that happened, but whose answer was lost).
    """

    def __init__(self, app: Callable[..., Any], project: str) -> None:
        self.app = app
        self.project = project
        self.user = "admin"
        self.roles: tuple[str, ...] = ROLES
        self.requests: Counter[str] = Counter()
        self.answers: list[tuple[str, int]] = []  # (request, HTTP status) in order
        self.unavailable = 0
        self.lose: Counter[str] = Counter()  # "POST /v2.1/servers" → how many answers to drop
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        request = f"{environ['REQUEST_METHOD']} {environ.get('PATH_INFO', '')}"
        with self._lock:
            self.requests[request] += 1
            refuse = self.unavailable > 0
            self.unavailable -= refuse
            lose = self.lose[request] > 0
            self.lose[request] -= lose

        def answer(status: str, headers: Any, *args: Any) -> Any:
            with self._lock:
                self.answers.append((request, int(status.split()[0])))
            return None if lose else start_response(status, headers, *args)

        if refuse:
            return _lb_error(start_response, "503 Service Unavailable", b"No server is available to handle "
                                                                      b"this request.")
        environ.update({"HTTP_X_AUTH_USER": self.user, "HTTP_X_USER_ID": self.user,
                        "HTTP_X_AUTH_PROJECT_ID": self.project, "HTTP_X_ROLES": ",".join(self.roles)})
        if lose:
            b"".join(self.app(environ, answer))
            return _lb_error(start_response, "502 Bad Gateway", b"The server returned an invalid or "
                                                                b"incomplete response.")
        result: Iterable[bytes] = self.app(environ, answer)
        return result

    def statuses(self, request: str) -> list[int]:
        """The HTTP statuses Nova answered ``request`` (``"PUT /v2.1/servers/<id>/metadata"``) with."""
        with self._lock:
            return [status for seen, status in self.answers if seen == request]

    @property
    def total(self) -> int:
        return sum(self.requests.values())


def _lb_error(start_response: Callable[..., Any], status: str, text: bytes) -> list[bytes]:
    start_response(status, [("Content-Type", "text/html")])
    return [b"<html><body><h1>" + status.encode() + b"</h1>" + text + b"</body></html>"]


class Project:
    """One project of the cloud: a clouds.yaml entry, a gateway and an admin client for it."""

    def __init__(self, cloud: NovaCloud, project_id: str) -> None:
        self.id = project_id
        self.cloud_name = f"p-{project_id[:12]}"
        self.host = f"{self.cloud_name}.nova.test"
        self.endpoint = f"http://{self.host}/v2.1"
        self.gateway = Gateway(cloud.api_fixture.app(), project_id)
        self._intercept = interceptor.RequestsInterceptor(lambda: self.gateway, host=self.host, port=80)
        self._intercept.install_intercept()
        self.api = nova_client.TestOpenStackClient("admin", cloud.api_fixture.base_url,
                                                   project_id=project_id, roles=list(ROLES))
        self.api.microversion = MICROVERSION
        self._cloud = cloud

    def clouds_entry(self) -> dict[str, Any]:
        return {"auth_type": "none", "auth": {"endpoint": self.endpoint},
                "network_endpoint_override": NEUTRON_ENDPOINT}

    def set_quota(self, **limits: int) -> None:
        self._cloud.admin.api_put(f"/os-quota-sets/{self.id}", {"quota_set": limits})

    def server(self, server_id: str) -> dict[str, Any]:
        found: dict[str, Any] = self.api.get_server(server_id)
        return found

    def images(self) -> list[dict[str, Any]]:
        """Every image Nova's image API lists (it exists up to microversion 2.35)."""
        self.api.microversion = "2.35"
        try:
            found: list[dict[str, Any]] = self.api.get_images()
        finally:
            self.api.microversion = MICROVERSION
        return found

    def servers(self) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = self.api.get_servers(detail=True)
        return found

    def close(self) -> None:
        self._intercept.uninstall_intercept()


class NovaCloud(integrated_helpers._IntegratedTestBase):
    """Nova's integrated test environment, driven by pytest fixtures instead of a test runner."""

    __test__ = False  # a unittest.TestCase by inheritance, but not a test to collect
    compute_driver = "fake.FakeDriver"
    ADMIN_API = True
    CAST_AS_CALL = False  # builds and resizes run in the compute service, as in a real cloud
    microversion = MICROVERSION

    def setUp(self) -> None:
        self.flags(compute_driver=self.compute_driver)
        self.flags(api_paste_config=api_paste_config(), group="wsgi")
        self.flags(instances=-1, cores=-1, ram=-1, group="quota")  # tests lower a project's own quota
        super().setUp()
        self._start_compute("compute2")  # a resize needs another host (allow_resize_to_same_host=False)
        neutron = interceptor.RequestsInterceptor(lambda: self._neutron_api, host=NEUTRON_HOST, port=80)
        neutron.install_intercept()
        self.addCleanup(neutron.uninstall_intercept)
        self.projects: dict[str, Project] = {}
        self._config_dir = Path(self.useFixture(fixtures.TempDir()).path)
        self.clouds_yaml = self._config_dir / "clouds.yaml"
        self._write_clouds()
        # Nova's StandardLogging formats every DEBUG record; INFO is plenty here and much faster.
        logging.getLogger().setLevel(logging.INFO)

    def runTest(self) -> None:
        """Unused: pytest fixtures drive this case (``boot`` / ``shutdown``)."""

    @property
    def admin(self) -> Any:
        return self.api_fixture.admin_api

    @property
    def network_id(self) -> str:
        return str(self.neutron.network_1["id"])

    @classmethod
    def boot(cls) -> NovaCloud:
        cloud = cls()
        cloud.setUp()
        return cloud

    def shutdown(self) -> None:
        for project in self.projects.values():
            project.close()
        errors = []
        while self._cleanups:
            function, args, kwargs = self._cleanups.pop()
            try:
                function(*args, **kwargs)
            except Exception as exc:  # noqa: BLE001 - keep tearing down; report at the end
                errors.append(exc)
        if errors:
            raise RuntimeError(f"Nova teardown failed: {errors!r}")

    def project(self) -> Project:
        """A new, empty project, also listed in the clouds.yaml as ``project.cloud_name``."""
        made = Project(self, uuid.uuid4().hex)
        self.projects[made.cloud_name] = made
        self._write_clouds()
        return made

    def _write_clouds(self) -> None:
        clouds = {name: p.clouds_entry() for name, p in self.projects.items()}
        tmp = self.clouds_yaml.with_suffix(".tmp")
        tmp.write_text(yaml.safe_dump({"clouds": clouds}))
        tmp.replace(self.clouds_yaml)

    def _neutron_api(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        """Neutron's network listing, answered from the NeutronFixture Nova itself uses."""
        if environ.get("PATH_INFO") != "/v2.0/networks":
            start_response("404 Not Found", [("Content-Type", "application/json")])
            return [b'{"NeutronError": {"message": "not served by the test"}}']
        query = {k: v[0] for k, v in urllib.parse.parse_qs(environ.get("QUERY_STRING", "")).items()}
        body = json.dumps(self.neutron.list_networks(**query)).encode()
        start_response("200 OK", [("Content-Type", "application/json")])
        return [body]

    def create_flavor(self, name: str, *, vcpus: int, ram: int, disk: int) -> str:
        body = {"flavor": {"name": name, "vcpus": vcpus, "ram": ram, "disk": disk}}
        flavor: dict[str, Any] = self.admin.api_post("/flavors", body).body["flavor"]
        return str(flavor["id"])

