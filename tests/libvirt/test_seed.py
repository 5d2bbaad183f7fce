"""The NoCloud seed image: read back with an independent ISO 9660 reader (and blkid, where installed)."""

from __future__ import annotations

import shutil
import struct
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest

from providers.libvirt.seed import SECTOR, build_seed, seed_files

WHEN = datetime(2026, 11, 1, 12, 30, 5, tzinfo=UTC)
USER_DATA = "#!/bin/sh\nset -eu\nDB_PASSWORD='s3cret'\necho ready > /etc/motd\n" * 200  # > 2 sectors


def _directory(image: bytes, descriptor_sector: int) -> dict[bytes, bytes]:
    """The root directory of a volume descriptor as {identifier: file content} (ECMA-119 9.1)."""
    descriptor = image[descriptor_sector * SECTOR:(descriptor_sector + 1) * SECTOR]
    root = descriptor[156:190]
    extent, size = struct.unpack_from("<I", root, 2)[0], struct.unpack_from("<I", root, 10)[0]
    listing = image[extent * SECTOR:extent * SECTOR + size]
    files, offset = {}, 0
    while offset < len(listing) and listing[offset]:
        length, name_length = listing[offset], listing[offset + 32]
        name = listing[offset + 33:offset + 33 + name_length]
        (start,), (data_size,) = struct.unpack_from("<I", listing, offset + 2), struct.unpack_from(
            "<I", listing, offset + 10)
        if not listing[offset + 25] & 2:  # not a directory
            files[name] = image[start * SECTOR:start * SECTOR + data_size]
        offset += length
    return files


def test_seed_holds_user_data_and_meta_data_under_joliet_names() -> None:
    files = seed_files(instance_id="6d1c-uuid", hostname="shop-web-0", user_data=USER_DATA)
    image = build_seed(files, when=WHEN)
    assert len(image) % SECTOR == 0
    assert image[16 * SECTOR:16 * SECTOR + 6] == b"\x01CD001"  # primary volume descriptor
    assert image[17 * SECTOR:17 * SECTOR + 6] == b"\x02CD001"  # supplementary (Joliet)
    assert image[18 * SECTOR] == 0xFF  # set terminator
    assert image[16 * SECTOR + 40:16 * SECTOR + 46] == b"cidata"  # the label NoCloud looks for
    assert image[17 * SECTOR + 88:17 * SECTOR + 91] == b"%/E"  # Joliet, UCS-2 level 3
    assert image[17 * SECTOR + 40:17 * SECTOR + 52] == "cidata".encode("utf-16-be")

    joliet = {name.decode("utf-16-be"): data for name, data in _directory(image, 17).items()}
    assert joliet == {"meta-data": b"instance-id: 6d1c-uuid\nlocal-hostname: shop-web-0\n",
                      "user-data": USER_DATA.encode()}
    assert _directory(image, 16) == {b"META_DAT.;1": joliet["meta-data"], b"USER_DAT.;1": joliet["user-data"]}


def test_seed_is_deterministic_and_dated() -> None:
    files = seed_files(instance_id="i", hostname="h", user_data="")
    image = build_seed(files, when=WHEN)
    assert image == build_seed(files, when=WHEN)
    assert image[16 * SECTOR + 813:16 * SECTOR + 829] == b"2026110112300500"
    assert _directory(image, 17)["user-data".encode("utf-16-be")] == b""


@pytest.mark.skipif(shutil.which("blkid") is None, reason="blkid (util-linux) is not installed")
def test_blkid_sees_an_iso9660_labelled_cidata(tmp_path: Path) -> None:
    path = tmp_path / "seed.iso"
    path.write_bytes(build_seed(seed_files(instance_id="i", hostname="h", user_data="x"), when=WHEN))
    probe = subprocess.run(["blkid", "-p", "-o", "export", str(path)], capture_output=True, text=True,
                           check=True)
    values = dict(line.split("=", 1) for line in probe.stdout.splitlines() if "=" in line)
    assert (values["TYPE"], values["LABEL"]) == ("iso9660", "cidata")
