"""The OpenStack provider's settings, flavor choice and tags, and its example: no Nova needed.

These run in the main test process too (only openstacksdk must be installed).
"""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("openstack", reason="the openstack extra is not installed")

from providers.openstack.api import OpenStackSettings  # noqa: E402
from providers.openstack.common import NOVA_TAG_MAX, Flavor, find_flavor, nova_tag, owner_tag, pick_flavor  # noqa: E402
from reconciler.config import load_desired_state  # noqa: E402
from reconciler.core.errors import PermanentError, UserError  # noqa: E402
from reconciler.core.model import TAG_OWNER, Size  # noqa: E402

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "clusters-openstack"
FLAVORS = [Flavor(vcpus=1, ram=512, disk=1, name="m1.tiny", id="1"),
           Flavor(vcpus=1, ram=2048, disk=20, name="m1.small", id="2"),
           Flavor(vcpus=2, ram=4096, disk=40, name="m1.medium", id="3"),
           Flavor(vcpus=2, ram=4096, disk=10, name="c1.medium", id="7")]


@pytest.mark.parametrize(("spec", "complaint"), [
    ({}, "either spec.cloud"),
    ({"cloud": "a", "auth_url": "https://keystone"}, "not both"),
    ({"cloud": "a", "password_env": "OS_PASSWORD"}, "belong in clouds.yaml"),
    ({"auth_url": "https://keystone", "username": "u", "project_name": "p"}, "password_env"),
    ({"auth_url": "https://keystone", "username": "u", "password_env": "P"}, "project_name or project_id"),
    ({"auth_url": "https://keystone", "application_credential_id_env": "ID"}, "_secret_env"),
])
def test_settings_refuse_incomplete_or_mixed_credentials(spec: dict[str, str], complaint: str) -> None:
    with pytest.raises(UserError) as caught:
        OpenStackSettings.from_spec("nova", spec)
    assert complaint in str(caught.value) and "provider nova" in str(caught.value)


def test_credentials_are_read_from_the_environment_at_connect_time(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = OpenStackSettings.from_spec("nova", {
        "auth_url": "https://keystone:5000/v3", "username_env": "SHOP_OS_USER",
        "password_env": "SHOP_OS_PASS", "project_name": "shop"})
    monkeypatch.setenv("SHOP_OS_USER", "deployer")
    monkeypatch.delenv("SHOP_OS_PASS", raising=False)
    with pytest.raises(UserError) as caught:
        settings.auth_options()
    assert "SHOP_OS_PASS is not set" in str(caught.value)
    monkeypatch.setenv("SHOP_OS_PASS", "s3cret")
    assert settings.auth_options() == {
        "auth_url": "https://keystone:5000/v3", "project_name": "shop", "username": "deployer",
        "password": "s3cret", "user_domain_name": "Default", "project_domain_name": "Default"}
    assert "s3cret" not in repr(settings)


def test_smallest_fitting_flavor_is_picked() -> None:
    assert pick_flavor(FLAVORS, Size(1, 1000, 1), root_disk=True).name == "m1.small"
    assert pick_flavor(FLAVORS, Size(2, 3000, 30), root_disk=True).name == "m1.medium"
    assert pick_flavor(FLAVORS, Size(2, 3000, 30), root_disk=False).name == "c1.medium"  # disk is a volume
    with pytest.raises(PermanentError) as caught:
        pick_flavor(FLAVORS, Size(4, 512, 1), root_disk=True)
    assert caught.value.code == "NoFlavorFits" and "flavor.openstack" in str(caught.value)
    assert find_flavor(FLAVORS, "3").name == "m1.medium"  # by id when no name matches
    with pytest.raises(PermanentError) as unknown:
        find_flavor(FLAVORS, "m9.galactic")
    assert unknown.value.code == "UnknownFlavor" and "c1.medium, m1.medium" in str(unknown.value)


def test_nova_tags_stay_within_novas_limits() -> None:
    assert owner_tag("shop") == f"{TAG_OWNER}=shop"
    long = owner_tag("a" * 63)
    odd = nova_tag(TAG_OWNER, "team/shop,prod")
    for tag in (long, odd):
        assert len(tag) <= NOVA_TAG_MAX and "," not in tag and "/" not in tag
    assert long != owner_tag("a" * 62) and owner_tag("a" * 63) == long  # distinct and deterministic


def test_example_loads_and_expands() -> None:
    state = load_desired_state(EXAMPLE)
    assert [(p.name, p.type) for p in state.providers] == [("openstack-shop", "openstack")]
    assert sorted(s.key for s in state.servers) == [
        "shop/app/0", "shop/app/1", "shop/db/0", "shop/web/0", "shop/web/1", "shop/web/2"]
    assert {s.provider_type for s in state.servers} == {"openstack"}
    flavors = {s.key.split("/")[1]: s.flavor for s in state.servers}
    assert flavors == {"db": "m1.large", "app": "m1.medium", "web": "m1.small"}
    prices = state.price_list_for("openstack-shop")
    assert prices is not None and {s.flavor for s in state.servers} <= set(prices.flavor_hourly)
    OpenStackSettings.from_spec("openstack-shop", state.providers[0].spec)  # and the provider accepts it
