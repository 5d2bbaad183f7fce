"""Alerts: AlertSink documents, webhook delivery (retries, timeouts, secrets in headers), the log
sink, event filters and repeat suppression — against a real HTTP server."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest
import structlog

from reconciler.config import load_desired_state, resolve_secret
from reconciler.core.model import AlertEvent, AlertSink, AlertSinkType, SecretRef
from reconciler.daemon.alerts import Alert, Alerter
from tests.daemon.conftest import PROVIDERS, TEMPLATES, Receiver, cluster

T0 = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)


def _alert(event: AlertEvent = AlertEvent.APPLY_FAILED, summary: str = "create shop/web/0 failed") -> Alert:
    return Alert(
        event=event,
        summary=summary,
        deployment="shop",
        at=T0,
        subject="shop/web/0",
        commit="abc123",
        details={"provider": "sim", "retry_in_seconds": 30},
    )


class Deliveries:
    def __init__(self) -> None:
        self.done: list[tuple[str, str, bool]] = []
        self.event = threading.Event()

    def __call__(self, sink: str, alert: Alert, ok: bool) -> None:
        self.done.append((sink, alert.event.value, ok))
        self.event.set()


def _webhook(url: str | SecretRef, **kw: object) -> AlertSink:
    return AlertSink(name="ops", type=AlertSinkType.WEBHOOK, url=url, **kw)  # type: ignore[arg-type]


def test_alert_sinks_are_read_from_the_desired_state(tmp_path: Path) -> None:
    (tmp_path / "all.yaml").write_text(
        PROVIDERS
        + "---\n"
        + TEMPLATES
        + "---\n"
        + cluster(1)
        + """\
---
apiVersion: reconciler/v1
kind: AlertSink
metadata:
  name: pager
spec:
  type: webhook
  url: {secret: env:PAGER_URL}
  events: [failover, provider-error]
  headers:
    Authorization: {secret: env:PAGER_TOKEN}
    X-Team: platform
  retries: 5
---
apiVersion: reconciler/v1
kind: AlertSink
metadata:
  name: audit-log
spec:
  type: log
"""
    )
    state = load_desired_state(tmp_path)
    log_sink, pager = state.alert_sinks
    assert (log_sink.name, log_sink.type, log_sink.events) == ("audit-log", AlertSinkType.LOG, ())
    assert pager.url == SecretRef("env", "PAGER_URL") and pager.retries == 5 and pager.timeout_seconds == 5
    assert pager.headers == (("Authorization", SecretRef("env", "PAGER_TOKEN")), ("X-Team", "platform"))
    assert pager.wants(AlertEvent.FAILOVER) and not pager.wants(AlertEvent.SCALE)
    assert log_sink.wants(AlertEvent.SCALE)


def test_webhook_gets_the_alert_as_json_with_secret_headers(
    receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOOK_TOKEN", "Bearer s3cret")
    deliveries = Deliveries()
    alerter = Alerter(resolve_secret=resolve_secret, on_delivery=deliveries)
    alerter.configure([_webhook(receiver.url, headers=(("Authorization", SecretRef("env", "HOOK_TOKEN")),))])
    assert alerter.raise_alert(_alert())
    payload = receiver.wait_for(lambda a: True)
    assert alerter.close(5)
    assert payload["_headers"]["authorization"] == "Bearer s3cret"
    del payload["_headers"]
    assert payload == {
        "source": "gitops-reconciler",
        "version": payload["version"],
        "event": "apply-failed",
        "severity": "warning",
        "summary": "create shop/web/0 failed",
        "deployment": "shop",
        "subject": "shop/web/0",
        "commit": "abc123",
        "at": "2026-11-02T10:00:00Z",
        "details": {"provider": "sim", "retry_in_seconds": 30},
    }
    assert deliveries.done == [("ops", "apply-failed", True)]


def test_webhook_retries_server_errors_but_not_client_errors(receiver: Receiver) -> None:
    deliveries = Deliveries()
    alerter = Alerter(resolve_secret=resolve_secret, on_delivery=deliveries, backoff=0.01)
    alerter.configure([_webhook(receiver.url, retries=3)])
    receiver.failures_left = 2
    alerter.raise_alert(_alert())
    receiver.wait_for(lambda a: True)
    assert receiver.attempts == 3

    receiver.failures_left, receiver.fail_status = 5, 400
    alerter.raise_alert(_alert(summary="another"))
    assert alerter.close(5)
    assert receiver.attempts == 4  # a 400 is not retried: the request itself is wrong
    assert deliveries.done == [("ops", "apply-failed", True), ("ops", "apply-failed", False)]


def test_a_slow_webhook_times_out_without_holding_anyone_up(receiver: Receiver) -> None:
    deliveries = Deliveries()
    alerter = Alerter(resolve_secret=resolve_secret, on_delivery=deliveries, backoff=0.01)
    alerter.configure([_webhook(receiver.url, timeout_seconds=0.2, retries=1)])
    receiver.delay = 0.5
    alerter.raise_alert(_alert())  # returns at once: delivery is in the background
    assert deliveries.event.wait(5)
    assert deliveries.done == [("ops", "apply-failed", False)] and receiver.attempts == 2
    alerter.close(5)


def test_filters_repeats_and_the_default_log_sink() -> None:
    deliveries = Deliveries()
    alerter = Alerter(resolve_secret=resolve_secret, on_delivery=deliveries)
    with structlog.testing.capture_logs() as logs:
        assert alerter.raise_alert(_alert(AlertEvent.SCALE, "shop/web: 2 → 3 servers"))  # no sinks: the log
        assert not alerter.raise_alert(_alert(AlertEvent.SCALE, "shop/web: 2 → 3 servers"))  # a repeat
        alerter.configure(
            [AlertSink(name="only-failover", type=AlertSinkType.LOG, events=(AlertEvent.FAILOVER,))]
        )
        assert alerter.raise_alert(_alert(AlertEvent.SCALE, "shop/web: 3 → 4 servers"))  # nobody wants it
        assert alerter.raise_alert(_alert(AlertEvent.FAILOVER, "shop/web/0 is error; replace"))
        assert alerter.close(5)
    alerts = [entry for entry in logs if entry["event"] == "alert"]
    assert [(a["sink"], a["alert_event"], a["summary"]) for a in alerts] == [
        ("log", "scale", "shop/web: 2 → 3 servers"),
        ("only-failover", "failover", "shop/web/0 is error; replace"),
    ]
    assert alerts[0]["severity"] == "info" and alerts[1]["subject"] == "shop/web/0"


def test_a_missing_secret_fails_the_delivery_and_names_only_the_sink(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_SUCH_URL", raising=False)
    deliveries = Deliveries()
    alerter = Alerter(resolve_secret=resolve_secret, on_delivery=deliveries)
    alerter.configure([_webhook(SecretRef("env", "NO_SUCH_URL"))])
    with structlog.testing.capture_logs() as logs:
        alerter.raise_alert(_alert())
        alerter.close(5)
    assert deliveries.done == [("ops", "apply-failed", False)]
    assert any(e["event"] == "alert sink misconfigured" and e["sink"] == "ops" for e in logs)
