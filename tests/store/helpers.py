"""Shared values for the store tests: a fixed instant and an audit record factory."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from reconciler.core.records import AuditAction, AuditRecord, Outcome

T0 = datetime(2026, 11, 1, 12, 0, 0, tzinfo=UTC)


def record(**overrides: Any) -> AuditRecord:
    fields: dict[str, Any] = {
        "deployment": "prod",
        "run_id": "run-1",
        "actor": "alice@example.com",
        "action": AuditAction.CREATE,
        "outcome": Outcome.SUCCEEDED,
        "key": "shop/web/0",
        "provider": "sim",
    }
    fields.update(overrides)
    return AuditRecord(**fields)
