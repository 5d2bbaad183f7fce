"""The shape of a bad-input case, how to write one to disk, and the YAML most cases build on."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class BadCase:
    name: str
    files: dict[str, str]  # relative filename -> YAML text ("../x.yaml" lands beside the case folder)
    expected: tuple[str, ...]  # exact diagnostic lines, file relative to the case dir: "shop.yaml:7: ..."
    env: dict[str, str] = field(default_factory=dict)
    # relative name -> "fifo", "socket" or "link:TARGET" (a symbolic link whose text is TARGET)
    special: dict[str, str] = field(default_factory=dict)


def write_case(case: BadCase, root: Path) -> None:
    """Write the case's files under ``root`` (text as UTF-8; surrogate escapes become raw bytes),
    then its special entries: named pipes, sockets and symbolic links."""
    root.mkdir(parents=True, exist_ok=True)
    for name, text in case.files.items():
        target = root / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(text.encode("utf-8", "surrogateescape"))
    for name, kind in case.special.items():
        target = root / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if kind == "fifo":
            os.mkfifo(target)
        elif kind == "socket":
            _bind_socket(target)
        elif kind.startswith("link:"):
            os.symlink(kind.removeprefix("link:"), target)
        else:
            raise ValueError(f"unknown special entry {kind!r}")


def _bind_socket(target: Path) -> None:
    """A Unix socket file at ``target`` (bound from its folder: socket paths are short)."""
    here = os.getcwd()
    os.chdir(target.parent)
    try:
        with socket.socket(socket.AF_UNIX) as sock:
            sock.bind(target.name)
    finally:
        os.chdir(here)


def expected_lines(case: BadCase, root: Path) -> list[str]:
    """The expected diagnostics with the folder, as the user named it, in front."""
    return [f"{root}/{line}" for line in case.expected]


# A provider and a template most cases build on (line numbers matter: see the comments).
BASE = """\
apiVersion: reconciler/v1
kind: Provider
metadata:
  name: sim
spec:
  type: simcloud
---
apiVersion: reconciler/v1
kind: ServerTemplate
metadata:
  name: web
spec:
  image:
    simcloud: debian-12
  size:
    cpus: 1
    memory_mb: 1024
    disk_gb: 10
  inputs:
    port:
      type: integer
      default: 8080
    tier:
      type: string
      default: small
      allowed: [small, large]
    password:
      type: string
      sensitive: true
  scripts:
    boot: |
      echo {{ port }} {{ tier }}
"""
# line 6: type: simcloud / line 13: image: / line 16: cpus / line 20: port / line 32: the boot script


def cluster(members: str, head: str = "  provider: sim\n") -> str:
    """A Cluster 'shop' (members start on line 8: line 7 is 'members:')."""
    return (
        "apiVersion: reconciler/v1\nkind: Cluster\nmetadata:\n  name: shop\nspec:\n"
        + head
        + "  members:\n"
        + members
    )


WEB = "    web:\n      template: web\n      count: 2\n"  # lines 8-10
