"""The daemon's HTTP listener: probes, Prometheus metrics parsed by prometheus-client, the git hook."""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest
from prometheus_client.parser import text_string_to_metric_families

from reconciler.core.errors import UserError
from reconciler.daemon.http import DaemonMetrics, Probes, StatusServer, parse_listen, start_server


class Fake:
    def __init__(self) -> None:
        self.healthy = (True, "ok")
        self.readiness = (False, "no valid commit to reconcile yet")
        self.hooks = 0

    def hook(self) -> None:
        self.hooks += 1


@pytest.fixture
def served() -> Iterator[tuple[StatusServer, Fake, DaemonMetrics]]:
    fake, metrics = Fake(), DaemonMetrics()
    server = start_server(
        "127.0.0.1:0", metrics, Probes(lambda: fake.healthy, lambda: fake.readiness, fake.hook)
    )
    yield server, fake, metrics
    server.shutdown()
    server.server_close()


def _call(url: str, method: str = "GET", body: bytes | None = None) -> tuple[int, str]:
    request = urllib.request.Request(url, data=body, method=method)
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_probes_follow_the_daemon(served: tuple[StatusServer, Fake, DaemonMetrics]) -> None:
    server, fake, _ = served
    assert _call(server.url + "/healthz") == (200, "ok\n")
    assert _call(server.url + "/readyz") == (503, "no valid commit to reconcile yet\n")
    fake.readiness, fake.healthy = (True, "ok"), (False, "no progress for 700s")
    assert _call(server.url + "/readyz") == (200, "ok\n")
    assert _call(server.url + "/healthz") == (503, "no progress for 700s\n")
    assert _call(server.url + "/nope")[0] == 404


def test_git_hook_asks_for_a_fetch(served: tuple[StatusServer, Fake, DaemonMetrics]) -> None:
    server, fake, _ = served
    assert _call(server.url + "/hooks/git", "POST", b'{"ref": "refs/heads/main"}') == (
        202,
        "fetch scheduled\n",
    )
    assert _call(server.url + "/hooks/git?x=1", "POST", b"")[0] == 202
    assert fake.hooks == 2
    assert _call(server.url + "/hooks/other", "POST", b"{}")[0] == 404
    assert _call(server.url + "/hooks/git")[0] == 404  # GET does nothing


def test_metrics_are_prometheus_text(served: tuple[StatusServer, Fake, DaemonMetrics]) -> None:
    server, _, metrics = served
    metrics.cycles.labels("converged").inc(3)
    metrics.changes.labels("create", "sim", "succeeded").inc(2)
    metrics.servers.labels("sim", "running").set(4)
    metrics.hourly_cost.labels("USD").set(0.04)
    metrics.cycle_duration.observe(0.3)
    metrics.last_sync.set(1_795_000_000)
    status, text = _call(server.url + "/metrics")
    assert status == 200
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    assert samples[("reconciler_cycles_total", (("outcome", "converged"),))] == 3
    key = (
        "reconciler_changes_applied_total",
        (("action", "create"), ("provider", "sim"), ("status", "succeeded")),
    )
    assert samples[key] == 2
    assert samples[("reconciler_servers", (("provider", "sim"), ("state", "running")))] == 4
    assert samples[("reconciler_hourly_cost", (("currency", "USD"),))] == 0.04
    assert samples[("reconciler_cycle_duration_seconds_count", ())] == 1
    assert samples[("reconciler_last_successful_sync_timestamp_seconds", ())] == 1_795_000_000


@pytest.mark.parametrize("text", ["9108", "localhost", "host:port", ":9108", "h:70000"])
def test_listen_must_be_host_and_port(text: str) -> None:
    with pytest.raises(UserError, match="is not HOST:PORT"):
        parse_listen(text)
    assert parse_listen("[::1]:9108") == ("::1", 9108)


def test_the_cli_default_is_the_listener_default() -> None:
    from reconciler.cli import daemon as commands_daemon
    from reconciler.daemon import http as daemon_http

    assert commands_daemon.DEFAULT_LISTEN == daemon_http.DEFAULT_LISTEN
