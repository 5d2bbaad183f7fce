"""providers.simcloud.spec: the JSON Schema of a simcloud Provider's ``spec``, with its documented maxima.

The numbers' maxima are ``reconciler.core.limits``' (README's "Limits" lists them); the provider
checks them again for a config that never met the schema (one read back from a plan file).
"""

from __future__ import annotations

from typing import Any

from providers.simcloud.storage import (
    DEFAULT_STATE_FILE,
    LEDGER_HINT,
    LEDGER_PATTERN,
    STATE_FILE_HINT,
    STATE_FILE_MAX,
    STATE_FILE_PATTERN,
)
from reconciler.core.limits import MAX_SIM_CAPACITY, MAX_SIM_LATENCY_MS, MAX_SIM_PAGE_SIZE

SPEC_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "latency_ms": {
            "type": "number",
            "minimum": 0,
            "maximum": MAX_SIM_LATENCY_MS,
            "default": 0,
            "description": "sleep this long on every API call",
        },
        "error_rate": {
            "type": "number",
            "minimum": 0,
            "maximum": 1,
            "default": 0,
            "description": "fraction of API calls failing with a transient error",
        },
        "seed": {
            "type": "integer",
            "default": 0,
            "description": "makes error_rate failures deterministic",
        },
        "page_size": {
            "type": "integer",
            "minimum": 1,
            "maximum": MAX_SIM_PAGE_SIZE,
            "default": 1000,
            "description": "servers per listing call",
        },
        "capacity": {
            "type": "integer",
            "minimum": 0,
            "maximum": MAX_SIM_CAPACITY,
            "description": "most servers this provider may hold",
        },
        "state_file": {
            "type": "string",
            "pattern": STATE_FILE_PATTERN,
            "patternErrorMessage": STATE_FILE_HINT,
            "maxLength": STATE_FILE_MAX,
            "not": {"type": "string", "pattern": LEDGER_PATTERN},
            "errorMessage": LEDGER_HINT,
            "default": DEFAULT_STATE_FILE,
            "description": "SQLite file name in the state directory (a plain name, not state.db)",
        },
    },
}
