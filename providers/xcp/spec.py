"""providers.xcp.spec: what a ``type: xcp`` Provider document may say, and what the type can do.

The JSON Schema of the Provider's ``spec`` (``max_parallel`` and ``price_list`` are the
engine's) and the type's ``Capabilities``. It imports no SDK: ``validate`` reads this module
alone, so checking YAML never loads XenAPI (``reconciler.core.provider.type_facts``).
"""

from __future__ import annotations

from typing import Any

from reconciler.core.limits import MAX_WAIT_TIMEOUT_SECONDS
from reconciler.core.provider import Capabilities

_ENV_NAME = "^[A-Za-z_][A-Za-z0-9_]*$"

SPEC_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["url", "network"],
    "properties": {
        "url": {"type": "string", "pattern": "^https?://",
                "description": "XAPI endpoint of the pool master, e.g. https://xcp-master"},
        "username": {"type": "string", "minLength": 1},
        "username_env": {"type": "string", "pattern": _ENV_NAME},
        "password_env": {"type": "string", "pattern": _ENV_NAME},
        "password_file": {"type": "string", "minLength": 1},
        "sr": {"type": "string", "minLength": 1,
               "description": "storage repository (name-label or uuid) for new disks; "
                              "default: the pool's default SR"},
        "network": {"type": "string", "minLength": 1,
                    "description": "network (name-label or uuid) the VIF is attached to"},
        "verify_tls": {"type": "boolean", "default": True},
        "timeout_seconds": {"type": "number", "exclusiveMinimum": 0, "maximum": MAX_WAIT_TIMEOUT_SECONDS,
                            "default": 60},
    },
    "additionalProperties": False,
}

CAPABILITIES = Capabilities(
    resize_in_place=True, resize_needs_restart=True, update_tags=True, start_stop=True,
    snapshots=True, metrics=True, paginated=False,
)
