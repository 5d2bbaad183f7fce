"""audit_detail_daemon: the typed details of the daemon's own audit entries, and of policy decisions.

Its lifecycle (``DaemonStarted``/``DaemonStopped`` in ``run.start``/``run.end``), scale
decisions, failovers and failure sightings, alerts sent, commits adopted or rejected (an
invalid commit, or one a deny Policy refuses), plans refused, and change windows overridden
(``apply --override-window``). Each encodes to the exact text the ledger holds and decodes to None on
anything else (see ``audit_detail``, which dispatches on the entry's action).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, ClassVar, Self

from reconciler.core.audit_detail_base import (
    JsonDetail,
    Malformed,
    TextDetail,
    int_field,
    number,
    optional_text,
    text_field,
)
from reconciler.core.model import AlertEvent, ScaleMetric, ServerStatus

# --- the daemon's lifecycle ---------------------------------------------------------------------
_DAEMON_STARTED = re.compile(r"daemon (\S+) started: (.*) branch (\S+), every (\S+)s", re.DOTALL)
_DAEMON_STOPPED = re.compile(r"daemon (\S+) stopped")


@dataclass(frozen=True)
class DaemonStarted(TextDetail):
    """A daemon's ``run.start``: who, following which source and branch, how often.

    The interval is written with ``:g`` (six significant digits)."""

    identity: str
    source: str
    branch: str
    interval: float  # seconds

    def encode(self) -> str:
        return f"daemon {self.identity} started: {self.source} branch {self.branch}, every {self.interval:g}s"

    @classmethod
    def _parse(cls, text: str) -> Self | None:
        match = _DAEMON_STARTED.fullmatch(text)
        if match is None:
            return None
        return cls(identity=match[1], source=match[2], branch=match[3], interval=float(match[4]))


@dataclass(frozen=True)
class DaemonStopped(TextDetail):
    """A daemon's ``run.end``: it stopped cleanly."""

    identity: str

    def encode(self) -> str:
        return f"daemon {self.identity} stopped"

    @classmethod
    def _parse(cls, text: str) -> Self | None:
        match = _DAEMON_STOPPED.fullmatch(text)
        return None if match is None else cls(identity=match[1])


# --- decisions, and who was told ----------------------------------------------------------------
@dataclass(frozen=True)
class ScaleDetail(JsonDetail):
    """A scale decision: the member's count from and to, and the metric values that drove it.

    ``values``: (server key, utilisation) sorted by key, as the JSON object lists them."""

    _sort_keys: ClassVar[bool] = True

    current: int
    desired: int
    metric: ScaleMetric
    target: float
    mean: float | None
    values: tuple[tuple[str, float], ...]
    reason: str

    def _fields(self) -> dict[str, object]:
        return {
            "from": self.current,
            "to": self.desired,
            "metric": self.metric.value,
            "target": self.target,
            "mean": self.mean,
            "values": dict(self.values),
            "reason": self.reason,
        }

    @classmethod
    def _from_fields(cls, data: dict[str, Any]) -> Self:
        values = data["values"]
        if not isinstance(values, dict):
            raise Malformed("values")
        mean = data.get("mean")
        return cls(
            current=int_field(data, "from"),
            desired=int_field(data, "to"),
            metric=ScaleMetric(text_field(data, "metric")),
            target=number(data["target"], "target"),
            mean=None if mean is None else number(mean, "mean"),
            values=tuple(sorted((str(k), number(v, "values")) for k, v in values.items())),
            reason=text_field(data, "reason"),
        )


@dataclass(frozen=True)
class FailoverDetail(JsonDetail):
    """A failover that goes ahead: replace, restart or start, the server's status and id, why."""

    _sort_keys: ClassVar[bool] = True

    mode: str  # "replace", "restart" or "start"
    status: str  # the failed server's status ("" when unknown)
    resource_id: str
    reason: str

    def _fields(self) -> dict[str, object]:
        return {
            "mode": self.mode,
            "status": self.status,
            "resource_id": self.resource_id,
            "reason": self.reason,
        }

    @classmethod
    def _from_fields(cls, data: dict[str, Any]) -> Self:
        return cls(
            mode=text_field(data, "mode"),
            status=text_field(data, "status"),
            resource_id=text_field(data, "resource_id"),
            reason=text_field(data, "reason"),
        )


@dataclass(frozen=True)
class FailureSighting(JsonDetail):
    """``failure.seen``: the status a server was first seen failed in (its grace starts)."""

    status: ServerStatus

    def _fields(self) -> dict[str, object]:
        return {"status": self.status.value}

    @classmethod
    def _from_fields(cls, data: dict[str, Any]) -> Self:
        return cls(status=ServerStatus(text_field(data, "status")))


@dataclass(frozen=True)
class AlertDetail(JsonDetail):
    """An alert that was sent: its event and summary."""

    _sort_keys: ClassVar[bool] = True

    event: AlertEvent
    summary: str

    def _fields(self) -> dict[str, object]:
        return {"event": self.event.value, "summary": self.summary}

    @classmethod
    def _from_fields(cls, data: dict[str, Any]) -> Self:
        return cls(event=AlertEvent(text_field(data, "event")), summary=text_field(data, "summary"))


@dataclass(frozen=True)
class CommitAdopted(JsonDetail):
    """A commit the daemon adopted: its message, and the source, branch and daemon."""

    _sort_keys: ClassVar[bool] = True

    message: str
    source: str
    branch: str
    daemon: str

    def _fields(self) -> dict[str, object]:
        return {"message": self.message, "source": self.source, "branch": self.branch, "daemon": self.daemon}

    @classmethod
    def _from_fields(cls, data: dict[str, Any]) -> Self:
        return cls(
            message=text_field(data, "message"),
            source=text_field(data, "source"),
            branch=text_field(data, "branch"),
            daemon=text_field(data, "daemon"),
        )


@dataclass(frozen=True)
class CommitRejected(JsonDetail):
    """A commit whose desired state is invalid: its message, the diagnostics, the commit kept."""

    _sort_keys: ClassVar[bool] = True

    message: str
    errors: tuple[str, ...]
    kept: str | None  # the good commit still reconciled (None: none known)

    def _fields(self) -> dict[str, object]:
        return {"message": self.message, "errors": list(self.errors), "kept": self.kept}

    @classmethod
    def _from_fields(cls, data: dict[str, Any]) -> Self:
        errors = data["errors"]
        if not isinstance(errors, list) or not all(isinstance(e, str) for e in errors):
            raise Malformed("errors")
        return cls(
            message=text_field(data, "message"), errors=tuple(errors), kept=optional_text(data, "kept")
        )


@dataclass(frozen=True)
class PlanRefused(TextDetail):
    """A guard refused the daemon's plan (the entry's ``error`` says which and why)."""

    TEXT: ClassVar[str] = "plan refused"

    def encode(self) -> str:
        return self.TEXT

    @classmethod
    def _parse(cls, text: str) -> Self | None:
        return cls() if text == cls.TEXT else None


@dataclass(frozen=True)
class PolicyDenied(JsonDetail):
    """A commit a deny Policy refuses (its plan, or its desired state, breaks the policy): the
    commit's message, each violation as ``file:line: policy …, rule …: message — keys``, the commit kept."""

    _sort_keys: ClassVar[bool] = True

    message: str
    violations: tuple[str, ...]
    kept: str | None  # the good commit still reconciled (None: none known)

    def _fields(self) -> dict[str, object]:
        return {"message": self.message, "policy_denied": list(self.violations), "kept": self.kept}

    @classmethod
    def _from_fields(cls, data: dict[str, Any]) -> Self:
        found = data["policy_denied"]
        if not isinstance(found, list) or not all(isinstance(v, str) for v in found):
            raise Malformed("policy_denied")
        message, kept = text_field(data, "message"), optional_text(data, "kept")
        return cls(message=message, violations=tuple(found), kept=kept)


@dataclass(frozen=True)
class WindowOverride(JsonDetail):
    """``apply --override-window REASON`` passed open change windows: the reason given, each window
    (``file:line: policy …: message (open … → … UTC)``) and the keys it would have held back."""

    _sort_keys: ClassVar[bool] = True

    reason: str
    windows: tuple[str, ...]
    keys: tuple[str, ...]

    def _fields(self) -> dict[str, object]:
        return {"reason": self.reason, "windows": list(self.windows), "keys": list(self.keys)}

    @classmethod
    def _from_fields(cls, data: dict[str, Any]) -> Self:
        windows, keys = data["windows"], data["keys"]
        for name, value in (("windows", windows), ("keys", keys)):
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise Malformed(name)
        return cls(reason=text_field(data, "reason"), windows=tuple(windows), keys=tuple(keys))
