"""providers.openstack.spec: what a ``type: openstack`` Provider document may say, and what the type can do.

The JSON Schema of the Provider's ``spec`` (``max_parallel`` and ``price_list`` are the
engine's) and the type's ``Capabilities``. It imports no SDK: ``validate`` reads this module
alone, so checking YAML never loads openstacksdk (``reconciler.core.provider.type_facts``).
"""

from __future__ import annotations

from typing import Any

from reconciler.core.limits import MAX_POLL_INTERVAL_SECONDS, MAX_WAIT_TIMEOUT_SECONDS
from reconciler.core.provider import Capabilities

MAX_PAGE = 1000
USER_DATA_MAX = 65535  # bytes of base64 Nova accepts

_ENV_NAME = "^[A-Za-z_][A-Za-z0-9_]*$"
SPEC_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "cloud": {"type": "string", "minLength": 1,
                  "description": "a cloud named in clouds.yaml (OS_CLIENT_CONFIG_FILE, ./clouds.yaml, "
                                 "~/.config/openstack/clouds.yaml or /etc/openstack/clouds.yaml)"},
        "auth_url": {"type": "string", "pattern": "^https?://",
                     "description": "Keystone URL, when no clouds.yaml entry is used"},
        "username": {"type": "string", "minLength": 1},
        "username_env": {"type": "string", "pattern": _ENV_NAME},
        "password_env": {"type": "string", "pattern": _ENV_NAME},
        "application_credential_id_env": {"type": "string", "pattern": _ENV_NAME},
        "application_credential_secret_env": {"type": "string", "pattern": _ENV_NAME},
        "project_name": {"type": "string", "minLength": 1},
        "project_id": {"type": "string", "minLength": 1},
        "user_domain_name": {"type": "string", "minLength": 1, "default": "Default"},
        "project_domain_name": {"type": "string", "minLength": 1, "default": "Default"},
        "region": {"type": "string", "minLength": 1},
        "interface": {"enum": ["public", "internal", "admin"],
                      "description": "which catalog endpoint to use (default: clouds.yaml's, else public)"},
        "network": {"type": "string", "minLength": 1,
                    "description": "network uuid or name for new servers; 'auto' (the default) lets "
                                   "Nova pick or allocate one, 'none' attaches none"},
        "security_groups": {"type": "array", "items": {"type": "string", "minLength": 1},
                            "uniqueItems": True},
        "key_name": {"type": "string", "minLength": 1, "description": "a Nova keypair"},
        "availability_zone": {"type": "string", "minLength": 1},
        "boot_from_volume": {"type": "boolean", "default": False,
                             "description": "root disk as a Cinder volume of exactly disk_gb, deleted with "
                                            "the server (else the flavor's root disk must hold disk_gb)"},
        "verify_tls": {"type": "boolean",
                       "description": "check the TLS certificate (default: clouds.yaml's, else true)"},
        "page_size": {"type": "integer", "minimum": 1, "maximum": MAX_PAGE, "default": MAX_PAGE},
        "wait_timeout": {"type": "number", "exclusiveMinimum": 0, "maximum": MAX_WAIT_TIMEOUT_SECONDS,
                         "default": 600,
                         "description": "seconds to wait for a build, resize, stop or delete"},
        "poll_interval": {"type": "number", "exclusiveMinimum": 0, "maximum": MAX_POLL_INTERVAL_SECONDS,
                          "default": 2},
    },
    "additionalProperties": False,
}


CAPABILITIES = Capabilities(
    resize_in_place=True, resize_needs_restart=True, update_tags=True, start_stop=True,
    snapshots=True, metrics=True, paginated=True, flavor_defines_size=True,
    user_data_max_bytes=USER_DATA_MAX // 4 * 3,  # the most whose base64 fits USER_DATA_MAX
)
