"""A server's life on the test driver: create, observe, update, replace, delete — checked with raw libvirt."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from providers.libvirt.provider import LibvirtProvider
from providers.libvirt.xml import NS
from reconciler.core.errors import PermanentError
from reconciler.core.model import ServerStatus, Size, UpdateRequest
from tests.libvirt.faults import Faults, libvirt_error
from tests.libvirt.fixtures import NOW, OWNER, SIZE, make_request
from tests.libvirt.world import IMAGE, TEST_POOL, TestDriverWorld


def _mark(world: TestDriverWorld, name: str, mark: str) -> str | None:
    return world.xml(name).findtext(f"metadata/{{{NS}}}server/{{{NS}}}{mark}")


def test_create_defines_starts_and_marks_a_domain(world: TestDriverWorld, provider: LibvirtProvider) -> None:
    request = make_request(flavor="m1.small")
    server = provider.create(request)

    root = world.xml("shop-web-0")
    assert root.get("type") == "kvm"
    assert world.domain("shop-web-0").state(0)[0] == 1  # VIR_DOMAIN_RUNNING
    assert (root.findtext("vcpu"), root.find("memory").text) == ("1", str(512 * 1024))  # type: ignore[union-attr]
    names = ("owner", "key", "spec-hash", "generation", "token", "cluster", "member", "image", "disk-gb",
             "flavor")
    marks = {m: _mark(world, "shop-web-0", m) for m in names}
    assert marks == {"owner": OWNER, "key": "shop/web/0", "spec-hash": "abc123", "generation": "0",
                     "token": request.token, "cluster": "shop", "member": "web", "image": IMAGE,
                     "disk-gb": "10", "flavor": "m1.small"}
    assert _mark(world, "shop-web-0", "created-at") == "2026-11-01T12:00:00Z"
    [disk] = root.findall("devices/disk[@device='disk']/source")
    volume = f"shop-web-0-{server.resource_id[:8]}.qcow2"  # named after the domain's UUID
    assert (disk.get("pool"), disk.get("volume")) == (TEST_POOL, volume)
    assert root.find("devices/interface[@type='network']/source").get("network") == "default"  # type: ignore[union-attr]
    assert sorted(world.volumes()) == sorted([IMAGE, volume])
    overlay = world.pool().storageVolLookupByName(volume).XMLDesc(0)
    assert f"<path>/{TEST_POOL}/{IMAGE}</path>" in overlay  # a copy-on-write overlay of the image
    assert "<capacity unit='bytes'>10737418240</capacity>" in overlay

    assert server.resource_id == world.domain("shop-web-0").UUIDString()
    assert (server.status, server.size, server.flavor, server.created_at) == (ServerStatus.RUNNING, SIZE,
                                                                             "m1.small", NOW)
    assert provider.observe(OWNER) == [server]
    assert provider.lookup(OWNER, request.token) == server


def test_the_test_driver_takes_no_seed_upload_so_the_domain_goes_without(
        world: TestDriverWorld, provider: LibvirtProvider, caplog: pytest.LogCaptureFixture) -> None:
    provider.create(make_request("shop/web/0"))
    assert "without its cloud-init seed" in caplog.text
    assert world.xml("shop-web-0").find("devices/disk[@device='cdrom']") is None
    assert _mark(world, "shop-web-0", "seed") is None
    provider.calls.clear()
    provider.create(make_request("shop/web/1"))  # learnt: no second attempt
    assert provider.calls["virStorageVolUpload"] == 0
    assert not any(v.endswith("-seed.iso") for v in world.volumes())


def test_interface_types_and_clone_disks(world: TestDriverWorld,
                                         make_provider: Callable[..., LibvirtProvider]) -> None:
    make_provider(interface_type="bridge", network="br0", disk_mode="clone").create(make_request("a/b/0"))
    make_provider(interface_type="user", domain_type="qemu", cloud_init=False).create(make_request("a/b/1"))
    bridged, user = world.xml("a-b-0"), world.xml("a-b-1")
    assert bridged.find("devices/interface[@type='bridge']/source").get("bridge") == "br0"  # type: ignore[union-attr]
    assert user.find("devices/interface[@type='user']") is not None and user.get("type") == "qemu"
    clone = world.pool().storageVolLookupByName(bridged.find("devices/disk/source").get("volume"))  # type: ignore[union-attr]
    assert "<backingStore>" not in clone.XMLDesc(0)


def test_observe_reads_only_owned_domains_and_leaves_others_alone(
        world: TestDriverWorld, provider: LibvirtProvider) -> None:
    world.define_plain("handmade")
    before = {name: world.domain(name).XMLDesc(0) for name in ("test", "handmade")}
    mine = provider.create(make_request())
    theirs = provider.create(make_request("shop/db/0", owner="someone-else"))
    provider.calls.clear()

    assert provider.observe(OWNER) == [mine]
    assert provider.observe("someone-else") == [theirs]
    assert provider.calls["virConnectListAllDomains"] == 2  # one listing per observe
    assert {name: world.domain(name).XMLDesc(0) for name in ("test", "handmade")} == before


@pytest.mark.parametrize(("action", "status"), [
    ("suspend", ServerStatus.STOPPED), ("destroy", ServerStatus.STOPPED), ("resume", ServerStatus.RUNNING)])
def test_observe_maps_domain_states(world: TestDriverWorld, provider: LibvirtProvider, action: str,
                                    status: ServerStatus) -> None:
    provider.create(make_request())
    dom = world.domain("shop-web-0")
    if action == "resume":
        dom.suspend()
    getattr(dom, action)()
    [seen] = provider.observe(OWNER)
    assert seen.status is status


def test_a_domain_without_created_at_is_an_error_and_not_found_by_lookup(
        world: TestDriverWorld, provider: LibvirtProvider) -> None:
    request = make_request()
    Faults(provider).fail(libvirt_error(8, "unsupported"), operation="virDomainCreate")  # VIR_ERR_INVALID_ARG
    with pytest.raises(PermanentError):
        provider.create(request)
    [half] = provider.observe(OWNER)
    assert half.status is ServerStatus.ERROR and half.created_at is None
    assert provider.lookup(OWNER, request.token) is None
    provider.delete(half)  # an abandoned half-create is cleaned up like any server
    assert provider.observe(OWNER) == [] and world.volumes() == [IMAGE]


def test_update_tags_in_place_without_a_restart(world: TestDriverWorld, provider: LibvirtProvider) -> None:
    server = provider.create(make_request())
    domain_id = world.domain("shop-web-0").ID()
    tags = (("team", "blue"), ("env", "prod"))
    request = UpdateRequest(size=SIZE, flavor="m1.small", tags=tags, allow_restart=False)
    updated = provider.update(server, request)
    assert updated.tags == (("env", "prod"), ("team", "blue")) and updated.flavor == "m1.small"
    assert world.domain("shop-web-0").ID() == domain_id  # never restarted
    inactive = world.domain("shop-web-0").XMLDesc(2)  # VIR_DOMAIN_XML_INACTIVE: the next boot keeps them
    assert 'key="env">prod<' in inactive and "m1.small" in inactive
    assert provider.observe(OWNER) == [updated]


def test_resize_restarts_when_allowed(world: TestDriverWorld, provider: LibvirtProvider) -> None:
    server = provider.create(make_request())
    domain_id = world.domain("shop-web-0").ID()
    bigger = Size(cpus=2, memory_mb=1024, disk_gb=10)
    updated = provider.update(server, UpdateRequest(size=bigger, flavor=None, tags=server.tags))
    assert (updated.resource_id, updated.size) == (server.resource_id, bigger)
    assert updated.status is ServerStatus.RUNNING
    dom = world.domain("shop-web-0")
    assert dom.ID() != domain_id  # a new run of the same domain
    assert (dom.info()[3], dom.info()[1]) == (2, 1024 * 1024)  # vCPUs, max memory KiB
    assert provider.calls["virDomainShutdown"] == 1


def test_resize_refused_before_anything_changes_when_no_restart_is_allowed(
        world: TestDriverWorld, provider: LibvirtProvider) -> None:
    server = provider.create(make_request())
    before = world.domain("shop-web-0").XMLDesc(0)
    with pytest.raises(PermanentError) as refused:
        provider.update(server, UpdateRequest(size=Size(2, 1024, 10), flavor=None, tags=(("team", "x"),),
                                              allow_restart=False))
    assert refused.value.code == "RESTART_NOT_ALLOWED" and "restart" in str(refused.value)
    assert world.domain("shop-web-0").XMLDesc(0) == before


def test_a_stopped_server_is_resized_without_being_started(world: TestDriverWorld,
                                                           provider: LibvirtProvider) -> None:
    server = provider.stop(provider.create(make_request()))
    updated = provider.update(server, UpdateRequest(size=Size(2, 768, 10), flavor=None, tags=server.tags,
                                                    allow_restart=False))
    assert (updated.size, updated.status) == (Size(2, 768, 10), ServerStatus.STOPPED)
    assert provider.start(updated).status is ServerStatus.RUNNING


def test_a_size_that_does_not_start_is_rolled_back(world: TestDriverWorld, provider: LibvirtProvider) -> None:
    server = provider.create(make_request())
    Faults(provider).fail(libvirt_error(1, "internal error: qemu refused the new size"),
                          operation="virDomainCreate")
    with pytest.raises(PermanentError) as failed:
        provider.update(server, UpdateRequest(size=Size(4, 2048, 10), flavor=None, tags=server.tags))
    assert "old size" in str(failed.value) and "qemu refused" in str(failed.value)
    [seen] = provider.observe(OWNER)
    assert (seen.size, seen.status) == (SIZE, ServerStatus.RUNNING)


def test_limits_and_disk_changes_are_permanent_errors(world: TestDriverWorld,
                                                      provider: LibvirtProvider) -> None:
    server = provider.create(make_request())
    with pytest.raises(PermanentError) as too_many:
        provider.update(server, UpdateRequest(size=Size(64, 512, 10), flavor=None, tags=server.tags))
    assert too_many.value.code == "TOO_MANY_VCPUS" and "(32)" in str(too_many.value)
    with pytest.raises(PermanentError) as disk:
        provider.update(server, UpdateRequest(size=Size(1, 512, 20), flavor=None, tags=server.tags))
    assert disk.value.code == "DISK_RESIZE_NOT_SUPPORTED"
    assert provider.observe(OWNER) == [server]


def test_replace_then_delete_the_old_generation(world: TestDriverWorld, provider: LibvirtProvider) -> None:
    old = provider.create(make_request(spec_hash="spec-a"))
    new = provider.create(make_request(generation=1, spec_hash="spec-b"))
    assert world.domain_names() == ["shop-web-0", "shop-web-0-g1", "test"]
    provider.delete(old)
    assert provider.observe(OWNER) == [new]
    assert world.domain_names() == ["shop-web-0-g1", "test"]
    assert world.volumes() == sorted([IMAGE, f"shop-web-0-g1-{new.resource_id[:8]}.qcow2"])


def test_delete_removes_domain_and_volumes_and_is_idempotent(world: TestDriverWorld,
                                                            provider: LibvirtProvider) -> None:
    server = provider.create(make_request())
    provider.delete(server)
    provider.delete(server)
    assert world.domain_names() == ["test"] and world.volumes() == [IMAGE]
    assert provider.observe(OWNER) == []


def test_missing_image_or_pool_is_a_clear_permanent_error(
        world: TestDriverWorld, make_provider: Callable[..., LibvirtProvider]) -> None:
    with pytest.raises(PermanentError) as image:
        make_provider().create(make_request(image="debian-12.qcow2"))
    assert image.value.code == "IMAGE_NOT_FOUND"
    assert "'debian-12.qcow2' not found in storage pool 'default-pool'" in str(image.value)
    with pytest.raises(PermanentError) as pool:
        make_provider(storage_pool="ssd").create(make_request())
    assert pool.value.code == "POOL_NOT_FOUND" and "spec.storage_pool" in str(pool.value)
    world.pool().destroy()
    with pytest.raises(PermanentError) as stopped:
        make_provider().create(make_request())
    assert stopped.value.code == "POOL_INACTIVE" and "virsh pool-start default-pool" in str(stopped.value)
    assert world.domain_names() == ["test"]  # nothing was defined


def test_a_name_taken_by_a_domain_we_do_not_own_is_refused(world: TestDriverWorld,
                                                          provider: LibvirtProvider) -> None:
    world.define_plain("shop-web-0")
    with pytest.raises(PermanentError) as taken:
        provider.create(make_request())
    assert taken.value.code == "NAME_TAKEN" and "shop-web-0" in str(taken.value)
    assert _mark(world, "shop-web-0", "owner") is None


def test_domain_definitions_are_validated(provider: LibvirtProvider) -> None:
    with pytest.raises(PermanentError) as invalid:
        provider.domains.define("<domain type='kvm'><name>x</name><memory>lots</memory></domain>")
    assert invalid.value.code == "VIR_ERR_XML_INVALID_SCHEMA" and "invalid XML" in str(invalid.value)
