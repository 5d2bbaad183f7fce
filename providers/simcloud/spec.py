"""providers.simcloud.spec: what a ``type: simcloud`` Provider document may say, and what the type can do.

The JSON Schema of the Provider's ``spec``, with its documented maxima, the rules for the name
of simcloud's state file, and the type's ``Capabilities``. The numbers' maxima are
``reconciler.core.limits``' (README's "Limits" lists them); the provider checks them again for
a config that never met the schema (one read back from a plan file). Like every family's
``spec``, it imports nothing but the core (``reconciler.core.provider.type_facts``).
"""

from __future__ import annotations

import re
from typing import Any

from reconciler.core.limits import MAX_SIM_CAPACITY, MAX_SIM_LATENCY_MS, MAX_SIM_PAGE_SIZE
from reconciler.core.provider import Capabilities

# --- the state file's name ---------------------------------------------------------------
DEFAULT_STATE_FILE = "simcloud.db"
# The ledger's file in the same state directory (``reconciler.store.DEFAULT_FILE``; the
# provider may not import the store, and a test keeps the two equal).
LEDGER_FILE = "state.db"
# A plain file name: ASCII letters, digits, '.', '_' and '-', not starting with '.' (no
# hidden file, no '.' or '..'), no separator, ending in .db. Written so that JSON Schema
# (ECMA 262) and Python read it alike: Python's '$' also matches before a final newline,
# which '(?!\n)' refuses.
STATE_FILE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]*\.db(?!\n)$"
STATE_FILE_MAX = 255  # the longest file name common filesystems take
STATE_FILE_HINT = (
    "is not a plain file name in the state directory; write a name like simcloud.db "
    "(letters, digits, '.', '_' and '-', not starting with '.', ending in .db)"
)
LEDGER_HINT = "is the reconciler's own ledger file; choose another name, like simcloud.db"


def _ledger_pattern() -> str:
    """The ledger's name with its stem in any letter case (a case-insensitive filesystem sees
    one file), the suffix as STATE_FILE_PATTERN has it; ECMA 262 has no inline ``(?i)``."""
    stem = LEDGER_FILE.removesuffix(".db")
    any_case = "".join(f"[{c.upper()}{c.lower()}]" if c.isalpha() else re.escape(c) for c in stem)
    return f"^{any_case}\\.db$"


LEDGER_PATTERN = _ledger_pattern()


def state_file_problem(state_file: object) -> str | None:
    """What is wrong with ``state_file`` as the name of simcloud's file (the schema's wording), or None."""
    if not isinstance(state_file, str) or re.fullmatch(STATE_FILE_PATTERN, state_file) is None:
        return STATE_FILE_HINT
    if len(state_file) > STATE_FILE_MAX:
        return f"is longer than {STATE_FILE_MAX} characters; shorten it"
    if state_file.lower() == LEDGER_FILE:  # the same file where names ignore case
        return LEDGER_HINT
    return None


# --- what the type declares ---------------------------------------------------------------
CAPABILITIES = Capabilities(
    resize_in_place=True,
    resize_needs_restart=True,
    update_tags=True,
    start_stop=True,
    snapshots=True,
    metrics=True,
    paginated=True,
)

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
