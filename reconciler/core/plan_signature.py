"""core.plan_signature: a plan file is signed over its whole content, and refused when edited.

The signature is HMAC-SHA256 over the plan's canonical JSON (keys sorted, no white space)
without its ``signature`` member, with a key kept outside the plan and outside git (see
``run.keys``). It is written into the plan file as

    "signature": {"alg": "HMAC-SHA256", "key_id": "<16 hex>", "mac": "<64 hex>"}

``key_id`` names the key (a hash of it, never the key) so a refusal can say "signed with
another key". Verification compares in constant time. Any change to any byte of meaning —
a change's key or resource id, the observed basis, a provider's settings, a cost — breaks
the signature; so does removing it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from typing import Any

from reconciler.core.errors import Diagnostic, UserError

ALGORITHM = "HMAC-SHA256"
FIELD = "signature"


class PlanSignatureError(UserError):
    """A plan file whose signature is missing, malformed or does not match its content."""

    def __init__(self, source: str, message: str) -> None:
        super().__init__(Diagnostic(file=source, line=None, message=message))


def key_id(key: bytes) -> str:
    """A public name for a key: the first 16 hex digits of SHA-256 over a labelled copy of it."""
    return hashlib.sha256(b"reconciler plan key id\0" + key).hexdigest()[:16]


def _canonical(data: Mapping[str, Any]) -> bytes:
    body = {k: v for k, v in data.items() if k != FIELD}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _mac(data: Mapping[str, Any], key: bytes) -> str:
    return hmac.new(key, _canonical(data), hashlib.sha256).hexdigest()


def sign(data: Mapping[str, Any], key: bytes) -> dict[str, Any]:
    """``data`` with its signature member set (any previous one replaced)."""
    signed = {k: v for k, v in data.items() if k != FIELD}
    signed[FIELD] = {"alg": ALGORITHM, "key_id": key_id(key), "mac": _mac(data, key)}
    return signed


def verify(data: Mapping[str, Any], key: bytes, *, source: str) -> None:
    """Raise ``PlanSignatureError`` unless ``data`` carries a valid signature by ``key``."""
    found = data.get(FIELD)
    if found is None:
        raise PlanSignatureError(
            source,
            "the plan is not signed; apply only plans written by `reconciler plan "
            "--format json` with the same plan key (RECONCILER_PLAN_KEY or the state dir's plan.key)",
        )
    if not isinstance(found, dict) or found.get("alg") != ALGORITHM or not isinstance(found.get("mac"), str):
        raise PlanSignatureError(source, "the plan's signature is malformed; make a new plan")
    if found.get("key_id") != key_id(key):
        raise PlanSignatureError(
            source,
            f"the plan was signed with another plan key (key id {found.get('key_id')!r}, "
            f"this reconciler's is {key_id(key)!r}); apply it where it was made, or make a new plan",
        )
    if not hmac.compare_digest(found["mac"], _mac(data, key)):
        raise PlanSignatureError(
            source,
            "the plan's signature does not match its content — it was edited after it "
            "was made; nothing was applied. Make a new plan and review that",
        )
