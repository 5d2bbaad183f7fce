"""Boot scripts are measured against the user data each provider type accepts, when loading."""

from __future__ import annotations

import base64

import pytest

from reconciler.config import load_desired_state
from reconciler.core.errors import UserError
from reconciler.core.provider import provider_class
from tests.config.conftest import WriteFiles

SETTINGS = {
    "aws": "  region: us-east-1\n",
    "openstack": "  cloud: shop\n  region: RegionOne\n  network: private\n",
    "simcloud": "",
}
HEAD = "#!/bin/sh\n# "


def _state(kind: str, script_bytes: int, fill: str = "x", count: int = 2) -> dict[str, str]:
    """A provider of ``kind`` and a member of ``count`` servers whose boot script has ``script_bytes``."""
    comment = fill * ((script_bytes - len(HEAD) - 1) // len(fill.encode()))
    assert len((HEAD + comment + "\n").encode()) == script_bytes
    return {
        "p.yaml": "apiVersion: reconciler/v1\nkind: Provider\nmetadata: {name: cloud}\nspec:\n"
        f"  type: {kind}\n{SETTINGS[kind]}",
        "t.yaml": "apiVersion: reconciler/v1\nkind: ServerTemplate\nmetadata: {name: web}\nspec:\n"
        f"  image: {{{kind}: img-1}}\n  flavor: {{{kind}: m1.small}}\n"
        "  size: {cpus: 1, memory_mb: 1024, disk_gb: 10}\n  scripts:\n    boot: |\n"
        f"      #!/bin/sh\n      # {comment}\n",
        "c.yaml": "apiVersion: reconciler/v1\nkind: Cluster\nmetadata: {name: shop}\nspec:\n"
        f"  provider: cloud\n  members:\n    web: {{template: web, count: {count}}}\n",
    }


def test_the_providers_declare_their_documented_limits() -> None:
    assert provider_class("aws").capabilities.user_data_max_bytes == 16384  # EC2: 16 KB, before base64
    nova = provider_class("openstack").capabilities.user_data_max_bytes
    assert nova is not None  # Nova: 65535 bytes of base64
    assert len(base64.b64encode(b"x" * nova)) <= 65535 < len(base64.b64encode(b"x" * (nova + 1)))
    assert provider_class("simcloud").capabilities.user_data_max_bytes is None


@pytest.mark.parametrize(("kind", "limit"), [("aws", 16384), ("openstack", 49149)])
def test_boot_scripts_up_to_the_limit_load_and_one_byte_more_is_refused(
    kind: str, limit: int, write_files: WriteFiles
) -> None:
    assert len(load_desired_state(write_files(_state(kind, limit))).servers) == 2
    root = write_files(_state(kind, limit + 1))
    with pytest.raises(UserError) as caught:
        load_desired_state(root)
    assert [str(d) for d in caught.value.diagnostics] == [  # once for the member, not per server
        f"{root}/c.yaml:7: the boot scripts of shop/web/0 (template 'web') render to {limit + 1} bytes of "
        f"user data, more than the {limit} that provider 'cloud' ({kind}) accepts; make them shorter, or "
        "have them fetch the rest when the server boots"
    ]


def test_the_limit_counts_utf8_bytes_not_characters(write_files: WriteFiles) -> None:
    root = write_files(_state("aws", 16385, fill="é"))  # about 8,200 characters
    with pytest.raises(UserError) as caught:
        load_desired_state(root)
    assert "render to 16385 bytes of user data, more than the 16384" in str(caught.value)


def test_a_provider_without_a_limit_takes_any_size(write_files: WriteFiles) -> None:
    assert load_desired_state(write_files(_state("simcloud", 100_000))).servers
