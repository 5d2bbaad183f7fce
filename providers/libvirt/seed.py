"""providers.libvirt.seed: the cloud-init NoCloud seed, as an ISO 9660 image built in memory.

cloud-init's NoCloud datasource reads ``user-data`` and ``meta-data`` from a filesystem
labelled ``cidata``. The libvirt provider attaches such an image as a read-only CD-ROM; it
builds the bytes here and uploads them into a volume of the storage pool through libvirt's
stream API, so nothing has to run on the libvirt host and ``qemu+ssh://`` hosts work too.

The image is the one ``genisoimage -volid cidata -joliet`` makes for two small files: a
primary volume descriptor with ISO level 1 names (``USER_DAT.;1``) and a Joliet
supplementary descriptor carrying the real names (``user-data``), which is what Linux
mounts. One root directory, no subdirectories, no Rock Ridge. Only ``build_seed`` and
``seed_files`` are public; the layout is fixed:

    16 primary descriptor · 17 Joliet descriptor · 18 terminator · 19–22 path tables
    23 primary root directory · 24 Joliet root directory · 25… file contents
"""

from __future__ import annotations

import math
import re
import struct
from collections.abc import Callable, Mapping
from datetime import UTC, datetime

SECTOR = 2048
VOLUME_ID = "cidata"
_FIRST_FILE_SECTOR = 25


def seed_files(*, instance_id: str, hostname: str, user_data: str) -> dict[str, bytes]:
    """The NoCloud files for one server (``user_data`` may hold secrets: never log the result)."""
    meta = f"instance-id: {instance_id}\nlocal-hostname: {hostname}\n"
    return {"meta-data": meta.encode(), "user-data": user_data.encode()}


def build_seed(files: Mapping[str, bytes], *, when: datetime, volume_id: str = VOLUME_ID) -> bytes:
    """An ISO 9660 + Joliet image holding ``files`` in its root directory."""
    names = sorted(files)
    extents: dict[str, int] = {}
    sector = _FIRST_FILE_SECTOR
    for name in names:
        extents[name] = sector
        sector += math.ceil(len(files[name]) / SECTOR)
    total = sector
    when = when.astimezone(UTC)

    def root(sector_no: int, ident: Callable[[str], bytes]) -> bytes:
        records = [_record(ident_byte, sector_no, SECTOR, True, when) for ident_byte in (b"\x00", b"\x01")]
        entries = sorted((ident(n), n) for n in names)
        records += [_record(key, extents[n], len(files[n]), False, when) for key, n in entries]
        blob = b"".join(records)
        if len(blob) > SECTOR:
            raise ValueError("too many files for a one-sector seed directory")
        return blob.ljust(SECTOR, b"\x00")

    image = bytearray(total * SECTOR)
    image[16 * SECTOR:17 * SECTOR] = _descriptor(
        1, total, root_sector=23, path_tables=(19, 20), escape=b"", text=_achars, when=when,
        volume_id=volume_id)
    image[17 * SECTOR:18 * SECTOR] = _descriptor(
        2, total, root_sector=24, path_tables=(21, 22), escape=b"%/E", text=_ucs2, when=when,
        volume_id=volume_id)
    image[18 * SECTOR:19 * SECTOR] = (b"\xffCD001\x01").ljust(SECTOR, b"\x00")
    for number, root_sector in ((19, 23), (21, 24)):
        image[number * SECTOR:(number + 1) * SECTOR] = _path_table(root_sector, "<").ljust(SECTOR, b"\x00")
        image[(number + 1) * SECTOR:(number + 2) * SECTOR] = _path_table(root_sector, ">").ljust(
            SECTOR, b"\x00")
    image[23 * SECTOR:24 * SECTOR] = root(23, _level1_name)
    image[24 * SECTOR:25 * SECTOR] = root(24, lambda n: n.encode("utf-16-be"))
    for name in names:
        start = extents[name] * SECTOR
        image[start:start + len(files[name])] = files[name]
    return bytes(image)


def _both16(value: int) -> bytes:
    return struct.pack("<H", value) + struct.pack(">H", value)


def _both32(value: int) -> bytes:
    return struct.pack("<I", value) + struct.pack(">I", value)


def _level1_name(name: str) -> bytes:
    """``user-data`` → ``USER_DAT.;1``: the 8.3 d-character name older readers see."""
    stem = re.sub(r"[^A-Z0-9_]", "_", name.upper())[:8]
    return f"{stem}.;1".encode("ascii")


def _achars(text: str, length: int) -> bytes:
    return text.encode("ascii").ljust(length, b" ")[:length]


def _ucs2(text: str, length: int) -> bytes:
    encoded = text.encode("utf-16-be")
    return (encoded + b"\x00\x20" * length)[:length]


def _record(ident: bytes, extent: int, size: int, is_dir: bool, when: datetime) -> bytes:
    """One directory record (ECMA-119 9.1), padded to an even length."""
    length = 33 + len(ident) + (1 - len(ident) % 2)
    stamp = bytes([when.year - 1900, when.month, when.day, when.hour, when.minute, when.second, 0])
    body = (bytes([length, 0]) + _both32(extent) + _both32(size) + stamp
            + bytes([2 if is_dir else 0, 0, 0]) + _both16(1) + bytes([len(ident)]) + ident)
    return body.ljust(length, b"\x00")


def _path_table(root_sector: int, order: str) -> bytes:
    """The path table of a tree with only a root directory (ECMA-119 9.4)."""
    return struct.pack(f"{order}BBIH", 1, 0, root_sector, 1) + b"\x00\x00"


def _descriptor(kind: int, total: int, *, root_sector: int, path_tables: tuple[int, int], escape: bytes,
                text: Callable[[str, int], bytes], when: datetime, volume_id: str) -> bytes:
    """A primary (1) or Joliet supplementary (2) volume descriptor (ECMA-119 8.4/8.5)."""
    stamp = when.strftime("%Y%m%d%H%M%S00").encode("ascii") + b"\x00"
    unset = b"0" * 16 + b"\x00"
    d = bytearray(SECTOR)
    d[0:7] = bytes([kind]) + b"CD001\x01"
    d[8:40] = text("LINUX", 32)
    d[40:72] = text(volume_id, 32)
    d[80:88] = _both32(total)
    d[88:88 + len(escape)] = escape
    d[120:124] = _both16(1)
    d[124:128] = _both16(1)
    d[128:132] = _both16(SECTOR)
    d[132:140] = _both32(10)
    d[140:144] = struct.pack("<I", path_tables[0])
    d[148:152] = struct.pack(">I", path_tables[1])
    d[156:190] = _record(b"\x00", root_sector, SECTOR, True, when)
    d[190:318] = text("", 128)
    d[318:446] = text("", 128)
    d[446:574] = text("", 128)
    d[574:702] = text("GITOPS-RECONCILER", 128)
    d[702:739] = text("", 37)
    d[739:776] = text("", 37)
    d[776:813] = text("", 37)
    d[813:830] = stamp
    d[830:847] = stamp
    d[847:864] = unset
    d[864:881] = unset
    d[881] = 1
    return bytes(d)
