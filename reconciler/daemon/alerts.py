"""daemon.alerts: tell people when the daemon needs them — webhook POSTs and log lines, never blocking.

An ``Alert`` is one event (``AlertEvent``: apply failed, provider error, failover, scale,
invalid commit, backup failed or overdue, budget exceeded) with a one-line summary and a
few details. ``AlertSink`` documents in the desired state say where alerts go:

* ``webhook``: the alert as a JSON object, POSTed to ``url`` with a timeout; a timeout, a
  connection error, HTTP 429 or 5xx is retried ``retries`` times with a doubling pause;
  other 4xx are not (the request itself is wrong). The URL and header values may be
  secret references, resolved at send time and never logged.
* ``log``: one structured log line (``event=alert``) per alert.

With no AlertSink declared, every alert is logged. Delivery runs in one background thread
fed by a queue, so a slow webhook never delays reconciling; ``close`` drains the queue
within a time bound at shutdown. The same alert (event, subject, summary) raised again
within ``repeat_after`` seconds is suppressed: a server that fails every cycle alerts once
an hour, not every minute.
"""

from __future__ import annotations

import json
import queue
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

import structlog

from reconciler import __version__
from reconciler.core.clock import isoformat
from reconciler.core.model import AlertEvent, AlertSink, AlertSinkType, SecretRef

log = structlog.get_logger("reconciler.daemon.alerts")

SecretResolver = Callable[[SecretRef], str]
DeliveryHook = Callable[[str, "Alert", bool], None]  # (sink name, alert, delivered)


class Severity(StrEnum):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


SEVERITY: Mapping[AlertEvent, Severity] = {
    AlertEvent.APPLY_FAILED: Severity.WARNING,
    AlertEvent.PROVIDER_ERROR: Severity.CRITICAL,
    AlertEvent.FAILOVER: Severity.WARNING,
    AlertEvent.SCALE: Severity.INFO,
    AlertEvent.INVALID_COMMIT: Severity.WARNING,
    AlertEvent.BACKUP_FAILED: Severity.CRITICAL,
    AlertEvent.BACKUP_OVERDUE: Severity.WARNING,
    AlertEvent.BUDGET_EXCEEDED: Severity.WARNING,
    AlertEvent.POLICY_DENIED: Severity.WARNING,
}

DEFAULT_SINK = AlertSink(name="log", type=AlertSinkType.LOG)


@dataclass(frozen=True)
class Alert:
    """One thing worth telling a person; ``subject`` is a server key, member, commit or budget."""

    event: AlertEvent
    summary: str
    deployment: str
    at: datetime
    subject: str = ""
    commit: str = ""
    details: Mapping[str, Any] = field(default_factory=dict)  # JSON-able; never a secret value

    @property
    def severity(self) -> Severity:
        return SEVERITY[self.event]

    def payload(self) -> dict[str, Any]:
        """What a webhook receives."""
        return {
            "source": "gitops-reconciler",
            "version": __version__,
            "event": self.event.value,
            "severity": self.severity.value,
            "summary": self.summary,
            "deployment": self.deployment,
            "subject": self.subject,
            "commit": self.commit,
            "at": isoformat(self.at),
            "details": dict(self.details),
        }


@dataclass(frozen=True)
class _Job:
    sink: AlertSink
    alert: Alert


_STOP = object()


class Alerter:
    """Queues alerts and delivers them to the configured sinks from one background thread."""

    def __init__(
        self,
        *,
        resolve_secret: SecretResolver,
        repeat_after: float = 3600.0,
        on_delivery: DeliveryHook | None = None,
        backoff: float = 0.5,
    ) -> None:
        self._resolve = resolve_secret
        self._repeat_after = repeat_after
        self._on_delivery = on_delivery
        self._backoff = backoff
        self._sinks: tuple[AlertSink, ...] = ()
        self._last_sent: dict[tuple[str, str, str], float] = {}
        self._queue: queue.Queue[object] = queue.Queue(maxsize=1000)
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="alerts", daemon=True)
        self._thread.start()

    def configure(self, sinks: Sequence[AlertSink]) -> None:
        """Use these sinks from now on (the daemon passes those of the commit it reconciles)."""
        self._sinks = tuple(sinks)

    def raise_alert(self, alert: Alert) -> bool:
        """Queue the alert for every sink that wants it; False when suppressed as a repeat."""
        ident = (alert.event.value, alert.subject, alert.summary)
        now = time.monotonic()
        last = self._last_sent.get(ident)
        if last is not None and now - last < self._repeat_after:
            return False
        self._last_sent[ident] = now
        for sink in self._sinks or (DEFAULT_SINK,):
            if sink.wants(alert.event):
                try:
                    self._queue.put_nowait(_Job(sink, alert))
                except queue.Full:
                    log.error(
                        "alert queue full; alert dropped", alert_event=alert.event.value, sink=sink.name
                    )
        return True

    def close(self, timeout: float = 10.0) -> bool:
        """Deliver what is queued (within ``timeout`` seconds), then stop; True when all went out."""
        self._stopping.set()
        try:
            self._queue.put(_STOP, timeout=max(timeout, 0.1))
        except queue.Full:
            return False
        self._thread.join(timeout)
        return not self._thread.is_alive()

    # --- delivery ---------------------------------------------------------------------------
    def _run(self) -> None:
        while True:
            job = self._queue.get()
            if job is _STOP:
                return
            assert isinstance(job, _Job)
            try:
                delivered = self._deliver(job.sink, job.alert)
            except Exception:  # a bug in one delivery must not stop all alerting
                log.exception("alert delivery crashed", sink=job.sink.name)
                delivered = False
            if self._on_delivery is not None:
                self._on_delivery(job.sink.name, job.alert, delivered)

    def _deliver(self, sink: AlertSink, alert: Alert) -> bool:
        if sink.type is AlertSinkType.LOG:
            payload = alert.payload()
            log.warning(
                "alert",
                sink=sink.name,
                alert_event=payload.pop("event"),
                severity=payload.pop("severity"),
                summary=payload.pop("summary"),
                **{k: v for k, v in payload.items() if k not in ("source", "version")},
            )
            return True
        return self._post(sink, alert)

    def _text(self, value: str | SecretRef) -> str:
        return self._resolve(value) if isinstance(value, SecretRef) else value

    def _post(self, sink: AlertSink, alert: Alert) -> bool:
        try:
            url = self._text(sink.url or "")
            headers = {name: self._text(value) for name, value in sink.headers}
        except Exception as exc:  # a missing secret: say which sink, never the value
            log.error("alert sink misconfigured", sink=sink.name, error=str(exc))
            return False
        if not url.startswith(("http://", "https://")):
            log.error("alert sink misconfigured: its url is not http(s)", sink=sink.name)
            return False
        headers.setdefault("Content-Type", "application/json")
        headers.setdefault("User-Agent", f"gitops-reconciler/{__version__}")
        body = json.dumps(alert.payload(), sort_keys=True).encode()
        pause = self._backoff
        for attempt in range(sink.retries + 1):
            retry, problem = self._post_once(url, headers, body, sink.timeout_seconds)
            if problem is None:
                return True
            if not retry or attempt == sink.retries:
                log.error(
                    "alert not delivered",
                    sink=sink.name,
                    alert_event=alert.event.value,
                    attempts=attempt + 1,
                    error=problem,
                )
                return False
            log.info("alert delivery failed; retrying", sink=sink.name, attempt=attempt + 1, error=problem)
            self._stopping.wait(pause)  # no pause once shutting down: close() bounds the drain
            pause *= 2
        return False

    @staticmethod
    def _post_once(
        url: str, headers: Mapping[str, str], body: bytes, timeout: float
    ) -> tuple[bool, str | None]:
        """One POST: (worth retrying, problem or None when delivered)."""
        request = urllib.request.Request(url, data=body, headers=dict(headers), method="POST")
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - http(s) only
                response.read()
            return False, None
        except urllib.error.HTTPError as exc:
            retry = exc.code == 429 or exc.code >= 500
            return retry, f"HTTP {exc.code}"
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            return True, f"{type(exc).__name__}: {reason}"
