"""keys: server keys ``cluster/member/ordinal`` and member names ``cluster/member``, in one place.

Every server the YAML asks for is keyed ``cluster/member/ordinal`` (``shop/web/2``); its
member is ``cluster/member`` (``shop/web``). Keys stay plain ``str`` in the model, the plan
and the ledgers; this module is where they are taken apart and put together.

Two ways to read a key:

* ``ServerKey.parse`` raises ``ValueError`` saying what is wrong — for keys we built
  ourselves, where a malformed one is a bug;
* ``ServerKey.try_parse`` returns ``None`` instead — for keys read back from a cloud's tags
  or a ledger, which may be foreign or hand-edited.

A key is well-formed when it has exactly three ``/``-separated parts, cluster and member are
not empty, and the ordinal is a non-negative integer written in canonical decimal (``0``,
``7``, ``12``; not ``07``, ``+7`` or ``-1``), so that ``str(ServerKey.parse(text)) == text``.

``cluster_of`` and ``member_of`` never raise: they answer for a key or a member, well-formed
or not (see each). ``natural_key`` sorts keys as people read them (``web/2`` before ``web/10``).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

SEPARATOR = "/"

_ORDINAL = re.compile(r"0|[1-9][0-9]*")
_DIGITS = re.compile(r"([0-9]+)")


def _problem(cluster: str, name: str) -> str | None:
    """What is wrong with a cluster or member name as a part of a key, or None."""
    for what, part in (("cluster", cluster), ("member", name)):
        if not part:
            return f"the {what} is empty"
        if SEPARATOR in part:
            return f"the {what} {part!r} contains {SEPARATOR!r}"
    return None


@dataclass(frozen=True, order=True)
class ServerKey:
    """One server's key. Ordered by cluster, then member name, then ordinal as a number.

    ``name`` is the member's name inside its cluster (``web``; ``DesiredServer.member``);
    ``member`` is the member as the rest of the code names it (``shop/web``).
    """

    cluster: str
    name: str
    ordinal: int

    def __post_init__(self) -> None:
        problem = _problem(self.cluster, self.name)
        if problem is None and (not isinstance(self.ordinal, int) or self.ordinal < 0):
            problem = f"the ordinal {self.ordinal!r} is not a non-negative integer"
        if problem is not None:
            raise ValueError(f"not a server key ({problem})")

    @classmethod
    def parse(cls, text: str) -> ServerKey:
        """``shop/web/2`` → ``ServerKey("shop", "web", 2)``; ``ValueError`` naming the fault otherwise."""
        parts = text.split(SEPARATOR)
        if len(parts) != 3:
            raise ValueError(
                f"malformed server key {text!r}: expected cluster/member/ordinal, "
                f"found {len(parts)} part{'' if len(parts) == 1 else 's'}"
            )
        cluster, name, ordinal = parts
        problem = _problem(cluster, name)
        if problem is None and not _ORDINAL.fullmatch(ordinal):
            problem = f"the ordinal {ordinal!r} is not a non-negative integer in canonical form"
        if problem is not None:
            raise ValueError(f"malformed server key {text!r}: {problem}")
        return cls(cluster, name, int(ordinal))

    @classmethod
    def try_parse(cls, text: str) -> ServerKey | None:
        """Like ``parse``, but ``None`` for a malformed key (a foreign or hand-edited one)."""
        try:
            return cls.parse(text)
        except ValueError:
            return None

    @classmethod
    def of(cls, member: str, ordinal: int) -> ServerKey:
        """The key of server ``ordinal`` of ``member`` (``cluster/member``)."""
        cluster, name = parse_member(member)
        return cls(cluster, name, ordinal)

    @property
    def member(self) -> str:
        """``cluster/member``: the member this server belongs to."""
        return format_member(self.cluster, self.name)

    def __str__(self) -> str:
        return f"{self.cluster}{SEPARATOR}{self.name}{SEPARATOR}{self.ordinal}"


def format_member(cluster: str, name: str) -> str:
    """``("shop", "web")`` → ``shop/web``: a member's name as keys, alerts and counts use it."""
    return f"{cluster}{SEPARATOR}{name}"


def parse_member(text: str) -> tuple[str, str]:
    """``shop/web`` → ``("shop", "web")``; ``ValueError`` unless exactly two non-empty parts."""
    parts = text.split(SEPARATOR)
    if len(parts) != 2:
        raise ValueError(
            f"malformed member {text!r}: expected cluster/member, "
            f"found {len(parts)} part{'' if len(parts) == 1 else 's'}"
        )
    cluster, name = parts
    problem = _problem(cluster, name)
    if problem is not None:
        raise ValueError(f"malformed member {text!r}: {problem}")
    return cluster, name


def cluster_of(text: str) -> str:
    """The cluster of a key or a member: everything before the first ``/`` (all of it without one)."""
    return text.partition(SEPARATOR)[0]


def member_of(text: str) -> str:
    """The member of a key, or a member itself: its first two parts.

    ``shop/web/0`` → ``shop/web``; ``shop/web`` → ``shop/web``; a text without ``/`` comes back
    as it is. A malformed key still gets an answer (``a/b/c/d`` → ``a/b``), never an error.
    """
    return SEPARATOR.join(text.split(SEPARATOR)[:2])


def natural_key(text: str) -> tuple[tuple[tuple[str | int, ...], ...], str]:
    """A sort key that orders keys part by part, runs of digits as numbers.

    ``shop/web/2`` sorts before ``shop/web/10`` and ``web2`` before ``web10``. Parts compare
    one at a time, so ``a/x/0`` sorts before ``a-b/x/0`` (plain string order would put the
    ``-`` first, since it sorts before ``/``). Any text is accepted; texts that read as the
    same numbers (``web/02``, ``web/2``) fall back to plain string order, so the order is total.
    """
    return tuple(map(_part_key, text.split(SEPARATOR))), text


@functools.lru_cache(maxsize=4096)
def _part_key(part: str) -> tuple[str | int, ...]:
    """One part's key: text and numbers in turn (cached: clusters, members and indexes repeat
    across thousands of keys, so a sort of 10,000 keys splits a few hundred distinct parts)."""
    return tuple(int(chunk) if i % 2 else chunk for i, chunk in enumerate(_DIGITS.split(part)))
