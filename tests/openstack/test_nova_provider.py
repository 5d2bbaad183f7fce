"""The OpenStack provider against a real Nova: what it writes, how it lists, sizes, images, resizes.

The shared conformance suite (``test_conformance.py``) covers the contract; these tests cover
what is Nova's own: metadata and tags as Nova stores them, the user data Nova received,
pages capped by Nova's ``max_limit``, flavors picked by size, image names, a resize left
unconfirmed, a root volume, and one counted call per request Nova actually served.
"""

from __future__ import annotations

import base64
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from nova.tests import fixtures as nova_fixtures

from providers.openstack.common import MARK_DISK, MARK_IMAGE, MARK_SIZE, owner_tag, token_tag
from providers.openstack.provider import OpenStackProvider
from reconciler.core.errors import PermanentError, TransientError
from reconciler.core.model import (
    TAG_KEY,
    TAG_OWNER,
    TAG_SPEC_HASH,
    TAG_TOKEN,
    ObservedServer,
    ServerStatus,
    Size,
)
from reconciler.core.retry import RetryPolicy, call_with_retry
from tests.openstack.conftest import MakeProvider
from tests.openstack.helpers import IMAGE_ID, SMALL, TAGS, USER_DATA, request, resize
from tests.openstack.novacloud import AMBIGUOUS_IMAGE_NAME, UNIQUE_IMAGE_NAME, NovaCloud, Project

NO_SLEEP = RetryPolicy(attempts=3, base_delay=0.0, max_delay=0.0, sleep=lambda _s: None)


def test_create_writes_marks_tags_and_user_data_and_counts_every_request(
    project: Project, make_provider: MakeProvider, owner: str
) -> None:
    provider = make_provider()
    req = request(owner, "web/front/0")
    created = provider.create(req)

    raw = project.server(created.resource_id)
    assert raw["status"] == "ACTIVE" and raw["name"] == "web-front-0"
    marks = raw["metadata"]
    assert (marks[TAG_OWNER], marks[TAG_KEY], marks[TAG_SPEC_HASH], marks[TAG_TOKEN]) == (
        owner, "web/front/0", req.spec_hash, req.token)
    assert (marks[MARK_IMAGE], marks[MARK_DISK]) == (IMAGE_ID, "1")
    assert (marks["env"], marks["team"]) == ("test", "red")
    assert MARK_SIZE not in marks  # the template named its flavor
    assert sorted(raw["tags"]) == sorted([owner_tag(owner), token_tag(req.token)])
    assert raw["flavor"]["original_name"] == "m1.tiny"
    assert raw["OS-EXT-SRV-ATTR:user_data"] == base64.b64encode(USER_DATA.encode()).decode()
    # One listing (is it there already?), the flavor list, the create, then polls until ACTIVE.
    calls = provider.calls
    assert (calls["servers.list"], calls["flavors.list"], calls["servers.create"]) == (1, 1, 1)
    assert provider.total_calls == project.gateway.total  # every request Nova served was counted


def test_observe_is_one_call_and_trusts_metadata_not_tags(
    project: Project, make_provider: MakeProvider, owner: str
) -> None:
    provider = make_provider()
    with ThreadPoolExecutor(max_workers=3) as pool:
        ours = list(pool.map(provider.create, [request(owner, f"app/api/{i}") for i in range(3)]))
    # A server someone made by hand, copying our owner tag but not our metadata.
    project.api.post_server({"server": {"name": "copycat", "imageRef": IMAGE_ID, "flavorRef": "1",
                                        "networks": "none", "tags": [owner_tag(owner)],
                                        "metadata": {TAG_OWNER: owner + "-else", TAG_KEY: "app/api/9"}}})
    provider.calls.clear()
    before = project.gateway.total

    seen = provider.observe(owner)

    assert [s.resource_id for s in seen] == [s.resource_id for s in sorted(ours, key=lambda s: s.key)]
    assert all(s.status is ServerStatus.RUNNING and s.tags == tuple(sorted(TAGS)) for s in seen)
    assert dict(provider.calls) == {"servers.list": 1}
    assert project.gateway.total - before == 1


@pytest.fixture
def nova_max_limit(nova: NovaCloud) -> Iterator[int]:
    """Nova configured to serve at most 2 items per page, whatever a client asks for."""
    patch = nova_fixtures.ConfPatcher(max_limit=2, group="api")
    patch.setUp()
    try:
        yield 2
    finally:
        patch.cleanUp()


def test_observe_follows_pages_when_nova_caps_them(
    project: Project, make_provider: MakeProvider, owner: str, nova_max_limit: int
) -> None:
    provider = make_provider()  # asks for 1000 per page
    with ThreadPoolExecutor(max_workers=5) as pool:
        made = list(pool.map(provider.create, [request(owner, f"big/node/{i}") for i in range(5)]))
    provider.calls.clear()
    before = project.gateway.requests["GET /v2.1/servers/detail"]

    seen = provider.observe(owner)

    assert sorted(s.resource_id for s in seen) == sorted(s.resource_id for s in made)
    assert dict(provider.calls) == {"servers.list": 3}  # 2 + 2 + 1
    assert project.gateway.requests["GET /v2.1/servers/detail"] - before == 3


def test_flavor_picked_by_size_and_resized_by_size(
    project: Project, make_provider: MakeProvider, owner: str
) -> None:
    provider = make_provider()
    asked = Size(cpus=1, memory_mb=1000, disk_gb=1)
    server = provider.create(request(owner, "app/worker/0", flavor=None, size=asked))
    assert (server.flavor, server.size) == ("m1.small", asked)  # the asked size, not the flavor's 2048 MB
    assert project.server(server.resource_id)["metadata"][MARK_SIZE] == "1,1000,m1.small"
    [seen] = provider.observe(owner)
    assert (seen.flavor, seen.size) == ("m1.small", asked)

    bigger = Size(cpus=2, memory_mb=3000, disk_gb=1)
    grown = provider.update(server, resize(bigger, None))
    assert (grown.resource_id, grown.flavor, grown.size, grown.status) == (
        server.resource_id, "m1.medium", bigger, ServerStatus.RUNNING)
    assert project.server(server.resource_id)["flavor"]["original_name"] == "m1.medium"

    provider.calls.clear()
    same_flavor = Size(cpus=2, memory_mb=3500, disk_gb=1)
    again = provider.update(grown, resize(same_flavor, None))
    assert (again.flavor, again.size) == ("m1.medium", same_flavor)
    assert "servers.action.resize" not in provider.calls  # m1.medium still fits: metadata only


def test_image_by_name_and_unknown_images(project: Project, make_provider: MakeProvider, owner: str) -> None:
    provider = make_provider()
    named = provider.create(request(owner, "web/front/0", image=UNIQUE_IMAGE_NAME))
    assert named.image == UNIQUE_IMAGE_NAME
    images = {i["name"]: i["id"] for i in project.images()}
    assert project.server(named.resource_id)["image"]["id"] == images[UNIQUE_IMAGE_NAME]

    with pytest.raises(PermanentError) as ambiguous:
        provider.create(request(owner, "web/front/1", image=AMBIGUOUS_IMAGE_NAME))
    assert ambiguous.value.code == "AmbiguousImage"
    with pytest.raises(PermanentError) as unknown_name:
        provider.create(request(owner, "web/front/2", image="no-such-image"))
    assert unknown_name.value.code == "UnknownImage"
    missing = str(uuid.uuid4())
    with pytest.raises(PermanentError) as unknown_id:
        provider.create(request(owner, "web/front/3", image=missing))
    assert unknown_id.value.code == "BadRequest"
    assert "Can not find requested image" in str(unknown_id.value)  # Nova's own words
    with pytest.raises(PermanentError) as flavor:
        provider.create(request(owner, "web/front/4", flavor="m9.galactic"))
    assert flavor.value.code == "UnknownFlavor" and "m1.tiny" in str(flavor.value)
    with pytest.raises(PermanentError) as disk:
        provider.create(request(owner, "web/front/5", flavor="m1.small", size=Size(1, 2048, 30)))
    assert disk.value.code == "FlavorDiskTooSmall"
    assert [s.key for s in provider.observe(owner)] == ["web/front/0"]


def test_lost_create_answer_is_found_again_not_duplicated(
    project: Project, make_provider: MakeProvider, owner: str
) -> None:
    provider = make_provider()
    project.gateway.lose["POST /v2.1/servers"] = 1  # Nova creates it; the answer never arrives
    retries: list[TransientError] = []

    server = call_with_retry(lambda: provider.create(request(owner, "db/main/0")), NO_SLEEP,
                             on_retry=lambda _n, exc, _w: retries.append(exc))

    assert [e.code for e in retries] == ["HTTP502"]
    assert project.gateway.statuses("POST /v2.1/servers") == [202]  # one create, and Nova took it
    assert [s["id"] for s in project.servers()] == [server.resource_id]


def test_resize_policy_and_disk_are_respected(
    project: Project, make_provider: MakeProvider, owner: str
) -> None:
    provider = make_provider()
    server = provider.create(request(owner, "db/main/0"))
    with pytest.raises(PermanentError) as no_restart:
        provider.update(server, resize(SMALL, "m1.small", allow_restart=False))
    assert no_restart.value.code == "RestartNotAllowed"
    with pytest.raises(PermanentError) as disk:
        provider.update(server, resize(Size(1, 512, 5), "m1.tiny"))
    assert disk.value.code == "DiskChangeNeedsReplace"
    assert project.server(server.resource_id)["flavor"]["original_name"] == "m1.tiny"
    assert not any("/action" in r for r in project.gateway.requests)


def test_resize_left_unconfirmed_is_confirmed_by_the_next_update(
    project: Project, make_provider: MakeProvider, owner: str
) -> None:
    provider = make_provider()
    server = provider.create(request(owner, "app/worker/0"))
    project.api.post_server_action(server.resource_id, {"resize": {"flavorRef": "2"}})  # then a crash
    # wait for Nova to settle in VERIFY_RESIZE: the flavor shows m1.small while the resize still runs
    for _ in range(300):
        raw = project.server(server.resource_id)
        if raw["status"] == "VERIFY_RESIZE" and not raw.get("OS-EXT-STS:task_state"):
            break
        time.sleep(0.1)
    [seen] = _wait_observed(provider, owner, lambda s: s.flavor == "m1.small")
    assert project.server(server.resource_id)["status"] == "VERIFY_RESIZE"
    assert (seen.status, seen.size) == (ServerStatus.RUNNING, SMALL)

    new_tags = (("team", "blue"),)
    updated = provider.update(seen, resize(SMALL, "m1.small", tags=new_tags))

    raw = project.server(server.resource_id)
    assert raw["status"] == "ACTIVE" and raw["flavor"]["original_name"] == "m1.small"
    assert updated.tags == new_tags and provider.calls["servers.action.confirmResize"] == 1


def _wait_observed(
    provider: OpenStackProvider, owner: str, done: Callable[[ObservedServer], bool]
) -> list[ObservedServer]:
    seen: list[ObservedServer] = []
    for _ in range(300):
        seen = provider.observe(owner)
        if seen and all(done(s) for s in seen):
            return seen
        time.sleep(0.1)
    raise AssertionError(f"servers never reached the expected state: {seen}")


def test_boot_from_volume_gives_the_disk_asked_for(
    project: Project, make_provider: MakeProvider, owner: str
) -> None:
    provider = make_provider(boot_from_volume=True)
    asked = Size(cpus=1, memory_mb=512, disk_gb=30)  # more than m1.tiny's 1 GB root disk
    server = provider.create(request(owner, "db/main/0", size=asked))
    raw = project.server(server.resource_id)
    assert raw["image"] == "" and len(raw["os-extended-volumes:volumes_attached"]) == 1
    assert (server.size, server.flavor, server.image) == (asked, "m1.tiny", IMAGE_ID)
    provider.delete(server)
    assert project.servers() == [] and provider.observe(owner) == []


def test_network_by_name_security_groups_and_keypair_reach_nova(
    nova: NovaCloud, project: Project, make_provider: MakeProvider, owner: str
) -> None:
    project.api.post_keypair({"keypair": {"name": "ops", "type": "ssh"}})
    provider = make_provider(network="private", security_groups=["default"], key_name="ops")
    first = provider.create(request(owner, "web/front/0"))
    provider.create(request(owner, "web/front/1"))

    raw = project.server(first.resource_id)
    assert raw["key_name"] == "ops" and raw["security_groups"] == [{"name": "default"}]
    ports = nova.neutron.list_ports(True, device_id=first.resource_id)["ports"]
    assert [p["network_id"] for p in ports] == [nova.network_id]  # the network the spec names: "private"
    assert provider.calls["networks.list"] == 1  # the name is looked up once per provider
    with pytest.raises(PermanentError) as unknown:
        make_provider(network="no-such-net").create(request(owner, "web/front/2"))
    assert unknown.value.code == "UnknownNetwork"


def test_observed_status_follows_novas(
    project: Project, make_provider: MakeProvider, owner: str, huge_flavor: str
) -> None:
    """BUILD is pending, ERROR is error, and a server being deleted is no longer observed."""
    provider = make_provider()
    marks = {TAG_OWNER: owner, TAG_KEY: "db/main/0"}
    [huge] = [f["id"] for f in project.api.get_flavors() if f["name"] == huge_flavor]
    made = project.api.post_server({"server": {
        "name": "db-main-0", "imageRef": IMAGE_ID, "flavorRef": huge, "networks": "none",
        "metadata": marks, "tags": [owner_tag(owner)]}})  # ours by its marks, but no host can take it
    [building] = provider.observe(owner)
    assert project.server(made["id"])["status"] == "BUILD" and building.status is ServerStatus.PENDING

    [failed] = _wait_observed(provider, owner, lambda s: s.status is not ServerStatus.PENDING)
    assert failed.status is ServerStatus.ERROR and project.server(made["id"])["status"] == "ERROR"
    provider.delete(failed)
    assert provider.observe(owner) == []
