"""providers.aws.spec: what a ``type: aws`` Provider document may say, and what the type can do.

The JSON Schema of the Provider's ``spec`` (``max_parallel`` and ``price_list`` are the
engine's), the built-in instance type table its ``instance_families`` choose from, and the
type's ``Capabilities``. It imports no SDK: ``validate`` reads this module alone, so checking
YAML never loads boto3 (``reconciler.core.provider.type_facts``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from reconciler.core.limits import MAX_POLL_INTERVAL_SECONDS, MAX_WAIT_TIMEOUT_SECONDS
from reconciler.core.provider import Capabilities

USER_DATA_LIMIT = 16 * 1024  # bytes, before base64

# --- instance types --------------------------------------------------------------------
# (vCPUs, memory MiB) per instance type. General families follow the AWS size ladder with
# a fixed memory per vCPU; burstable and older families are listed as they are.
_LADDER = {"large": 2, "xlarge": 4, "2xlarge": 8, "4xlarge": 16, "8xlarge": 32, "12xlarge": 48,
           "16xlarge": 64, "24xlarge": 96, "32xlarge": 128, "48xlarge": 192}
_GIB_PER_VCPU = {"c": 2, "m": 4, "r": 8}


def _ladder(family: str, sizes: Iterable[str]) -> dict[str, tuple[int, int]]:
    gib = _GIB_PER_VCPU[family[0]]
    return {f"{family}.{s}": (_LADDER[s], _LADDER[s] * gib * 1024) for s in sizes}


def _burstable(family: str, vcpus: tuple[int, ...]) -> dict[str, tuple[int, int]]:
    names = ("nano", "micro", "small", "medium", "large", "xlarge", "2xlarge")
    memory = (512, 1024, 2048, 4096, 8192, 16384, 32768)
    return {f"{family}.{n}": (c, m) for n, c, m in zip(names, vcpus, memory, strict=True)}


_GEN5 = ("large", "xlarge", "2xlarge", "4xlarge", "8xlarge", "12xlarge", "16xlarge", "24xlarge")
_GEN6 = (*_GEN5, "32xlarge")
INSTANCE_TYPES: dict[str, tuple[int, int]] = {
    **_burstable("t2", (1, 1, 1, 2, 2, 4, 8)),
    **_burstable("t3", (2, 2, 2, 2, 2, 4, 8)),
    **_burstable("t3a", (2, 2, 2, 2, 2, 4, 8)),
    **_ladder("c5", ("large", "xlarge", "2xlarge", "4xlarge", "12xlarge", "24xlarge")),
    "c5.9xlarge": (36, 73728),
    "c5.18xlarge": (72, 147456),
    **_ladder("m5", _GEN5),
    **_ladder("r5", _GEN5),
    **_ladder("c6i", _GEN6),
    **_ladder("m6i", _GEN6),
    **_ladder("r6i", _GEN6),
    **_ladder("c7i", (*_GEN5, "48xlarge")),
    **_ladder("m7i", (*_GEN5, "48xlarge")),
    **_ladder("r7i", (*_GEN5, "48xlarge")),
}
FAMILIES = tuple(sorted({name.split(".")[0] for name in INSTANCE_TYPES}))
DEFAULT_FAMILIES = ("t3", "c6i", "m6i", "r6i")

# --- the spec --------------------------------------------------------------------------
# JSON Schema of a ``type: aws`` Provider's spec (max_parallel and price_list are the engine's).
SPEC_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["region"],
    "properties": {
        "region": {"type": "string", "pattern": "^[a-z]{2}(-[a-z]+)+-[0-9]+$",
                   "description": "AWS region, e.g. us-east-1"},
        "endpoint_url": {"type": "string", "pattern": "^https?://",
                         "description": "an EC2-compatible endpoint instead of AWS's own"},
        "profile": {"type": "string", "minLength": 1,
                    "description": "named profile; otherwise boto3's default credential chain"},
        "subnet_id": {"type": "string", "pattern": "^subnet-[0-9a-f]+$"},
        "security_group_ids": {"type": "array", "uniqueItems": True,
                               "items": {"type": "string", "pattern": "^sg-[0-9a-f]+$"}},
        "key_name": {"type": "string", "minLength": 1, "description": "EC2 key pair for new servers"},
        "instance_families": {"type": "array", "minItems": 1, "items": {"enum": list(FAMILIES)},
                              "description": "families to pick from when a template gives only a size"},
        "max_attempts": {"type": "integer", "minimum": 1, "maximum": 20,
                         "description": "attempts per API call in botocore's standard retry mode"},
        "page_size": {"type": "integer", "minimum": 5, "maximum": 1000,
                      "description": "results per listing page (MaxResults); 1000 unless testing"},
        "poll_interval": {"type": "number", "exclusiveMinimum": 0, "maximum": MAX_POLL_INTERVAL_SECONDS},
        "wait_timeout": {"type": "number", "exclusiveMinimum": 0, "maximum": MAX_WAIT_TIMEOUT_SECONDS},
        "cloudwatch": {"type": "boolean",
                       "description": "read usage (CPU, network) from CloudWatch for measured billing; "
                                      "default true, false for an endpoint without CloudWatch"},
        "cloudwatch_endpoint_url": {"type": "string", "pattern": "^https?://",
                                    "description": "the CloudWatch endpoint; default endpoint_url"},
    },
}


CAPABILITIES = Capabilities(
    resize_in_place=True, resize_needs_restart=True, update_tags=True, start_stop=True,
    snapshots=True, metrics=True, paginated=True, flavor_defines_size=True,
    user_data_max_bytes=USER_DATA_LIMIT,
)
