"""The console over HTTP: sessions, CSRF, roles, rate limits, headers, the JSON API (TestClient)."""

from __future__ import annotations

import time
from typing import Any

import pytest
from starlette.testclient import TestClient

from reconciler.console.setup import Console
from reconciler.core.records import AuditAction
from tests.console.conftest import PASSWORDS, TOKENS
from tests.console.support import CSRF_INPUT, FakeLoop, login

App = tuple[Console, FakeLoop, TestClient]


def test_a_page_without_a_session_redirects_to_login(console_app: App) -> None:
    _, _, client = console_app
    answer = client.get("/", follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"] == "/login?next=%2F"
    form = client.get("/login")
    assert CSRF_INPUT.search(form.text) and 'name="username"' in form.text and 'name="password"' in form.text


def test_login_sets_a_signed_session_cookie_and_the_page_carries_its_csrf(console_app: App) -> None:
    _, _, client = console_app
    form = client.get("/login?next=/plan")
    token = CSRF_INPUT.search(form.text)
    assert token is not None
    answer = client.post(
        "/login",
        data={"username": "alice", "password": PASSWORDS["alice"], "csrf": token.group(1), "next": "/plan"},
        follow_redirects=False,
    )
    assert answer.status_code == 303 and answer.headers["location"] == "/plan"
    cookie = next(v for k, v in answer.headers.multi_items() if k == "set-cookie" and "rc_session=" in v)
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Max-Age=43200" in cookie
    page = client.get("/")
    assert page.status_code == 200 and '<meta name="csrf" content="' in page.text
    assert 'id="user">alice<' in page.text and "shop/web/0" in page.text


def test_wrong_password_and_forged_login_forms(console_app: App) -> None:
    _, _, client = console_app
    token = CSRF_INPUT.search(client.get("/login").text)
    assert token is not None
    wrong = client.post("/login", data={"username": "alice", "password": "nope", "csrf": token.group(1)})
    assert wrong.status_code == 401 and "wrong user name or password" in wrong.text
    assert "rc_session" not in client.cookies
    no_csrf = client.post("/login", data={"username": "alice", "password": PASSWORDS["alice"]})
    assert no_csrf.status_code == 403
    forged = client.post(
        "/login", data={"username": "alice", "password": PASSWORDS["alice"], "csrf": "x" * 43}
    )
    assert forged.status_code == 403
    client.cookies.clear()  # no login cookie: a form posted from elsewhere
    elsewhere = client.post(
        "/login", data={"username": "alice", "password": PASSWORDS["alice"], "csrf": token.group(1)}
    )
    assert elsewhere.status_code == 403 and "rc_session" not in client.cookies
    assert client.get("/", follow_redirects=False).status_code == 303


def test_logins_are_rate_limited_per_name_and_a_success_clears_it(console_app: App) -> None:
    console, _, client = console_app
    for _ in range(5):
        token = CSRF_INPUT.search(client.get("/login").text)
        assert token is not None
        answer = client.post(
            "/login", data={"username": "victor", "password": "guess", "csrf": token.group(1)}
        )
        assert answer.status_code == 401
    token = CSRF_INPUT.search(client.get("/login").text)
    assert token is not None
    locked = client.post(
        "/login",
        data={"username": "victor", "password": PASSWORDS["victor"], "csrf": token.group(1)},
        follow_redirects=False,
    )
    assert locked.status_code == 429 and 1 <= int(locked.headers["retry-after"]) <= 301
    login(TestClient(console.app), "alice")  # another name from the same address still may
    console.runtime.limiter._clock = lambda: time.monotonic() + 301  # the window passes
    login(client, "victor")


def test_the_address_limit_holds_across_names(console_app: App) -> None:
    console, _, client = console_app
    console.runtime.limiter.per_address = 3
    for name in ("a1", "a2", "a3"):
        token = CSRF_INPUT.search(client.get("/login").text)
        assert token is not None
        client.post("/login", data={"username": name, "password": "x", "csrf": token.group(1)})
    token = CSRF_INPUT.search(client.get("/login").text)
    assert token is not None
    answer = client.post(
        "/login", data={"username": "alice", "password": PASSWORDS["alice"], "csrf": token.group(1)}
    )
    assert answer.status_code == 429


def _sync(client: TestClient, headers: dict[str, str] | None = None) -> Any:
    return client.post("/api/v1/sync", headers=headers or {})


def test_sync_by_role_and_csrf(console_app: App) -> None:
    console, loop, client = console_app
    assert _sync(client).status_code == 401
    csrf = login(client, "alice")
    assert _sync(client).status_code == 403  # no CSRF token
    assert _sync(client, {"X-CSRF-Token": "wrong"}).status_code == 403
    answer = _sync(client, {"X-CSRF-Token": csrf})
    assert answer.status_code == 202 and loop.syncs == 1
    store = console.runtime.ws.existing_store()
    assert store is not None
    entries = store.recent_audit("infra", [AuditAction.CONSOLE], limit=10)
    assert [(e.record.actor, e.record.commit[:6]) for e in entries] == [("console:alice", "012345")]
    assert (
        '"request": "sync"' in entries[0].record.detail and '"role": "operator"' in entries[0].record.detail
    )

    viewer = TestClient(console.app)
    viewer_csrf = login(viewer, "victor")
    refused = _sync(viewer, {"X-CSRF-Token": viewer_csrf})
    assert refused.status_code == 403 and "operator" in refused.json()["error"]
    assert loop.syncs == 1


def test_bearer_tokens(console_app: App) -> None:
    _, loop, client = console_app
    ci = {"Authorization": f"Bearer {TOKENS['ci']}"}
    deploy = {"Authorization": f"Bearer {TOKENS['deploy']}"}
    listed = client.get("/api/v1/servers", headers=ci)
    assert listed.status_code == 200
    assert [s["key"] for s in listed.json()["servers"]] == ["shop/db/0", "shop/web/0", "shop/web/1"]
    for path in ("/api/v1/clusters", "/api/v1/plan", "/api/v1/usage", "/api/v1/audit", "/api/v1/status"):
        assert client.get(path, headers=ci).status_code == 200, path
    assert _sync(client, ci).status_code == 403
    assert _sync(client, deploy).status_code == 202 and loop.syncs == 1
    assert client.get("/api/v1/servers", headers={"Authorization": "Bearer nope"}).status_code == 401
    assert client.get("/api/v1/servers").status_code == 401


def test_retry_and_run_backups_for_an_operator(console_app: App) -> None:
    _, loop, client = console_app
    csrf = login(client, "alice")
    headers = {"X-CSRF-Token": csrf}
    assert client.post("/api/v1/servers/shop/web/1/retry", headers=headers).status_code == 202
    assert client.post("/api/v1/servers/shop/web/0/retry", headers=headers).status_code == 404
    assert client.post("/api/v1/backups", headers=headers).status_code == 202
    assert loop.retried == ["shop/web/1"] and loop.backups == 1
    form = client.post("/actions/sync", data={"csrf": csrf, "back": "/plan"}, follow_redirects=False)
    assert form.status_code == 303 and form.headers["location"].startswith("/plan?flash=sync%20requested")
    assert client.post("/actions/sync", data={"back": "/"}).status_code == 403
    assert loop.syncs == 1


def test_only_an_admin_acknowledges_an_alert(console_app: App) -> None:
    from reconciler.core.audit_detail import AlertDetail
    from reconciler.core.model import AlertEvent
    from reconciler.run.audit import AuditWriter, RunContext

    console, _, client = console_app
    store = console.runtime.ws.store()
    writer = AuditWriter(store, console.runtime.ws.clock, "infra", RunContext("r1", "daemon"))
    seq = writer.alert("shop/web/0", AlertDetail(AlertEvent.APPLY_FAILED, "create shop/web/0 failed")).seq
    csrf = login(client, "alice")
    assert "create shop/web/0 failed" in client.get("/").text
    assert client.post(f"/api/v1/alerts/{seq}/ack", headers={"X-CSRF-Token": csrf}).status_code == 403
    admin = TestClient(console.app)
    admin_csrf = login(admin, "ada")
    assert "Acknowledge" in admin.get("/").text
    assert (
        admin.post(f"/api/v1/alerts/{seq + 99}/ack", headers={"X-CSRF-Token": admin_csrf}).status_code == 404
    )
    assert admin.post(f"/api/v1/alerts/{seq}/ack", headers={"X-CSRF-Token": admin_csrf}).status_code == 202
    assert "create shop/web/0 failed" not in admin.get("/").text


def test_security_headers(console_app: App) -> None:
    _, _, client = console_app
    for path in ("/login", "/static/console.js", "/api/v1/servers"):
        answer = client.get(path)
        csp = answer.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp
        assert answer.headers["x-frame-options"] == "DENY"
        assert answer.headers["x-content-type-options"] == "nosniff"
    assert client.get("/login").headers["cache-control"] == "no-store"
    page = client.get("/login").text
    assert "<script>" not in page and " style=" not in page and "onclick" not in page


def test_bad_input_is_answered_not_raised(console_app: App) -> None:
    _, _, client = console_app
    login(client, "victor")
    bad = client.get("/?page=abc")
    assert bad.status_code == 400 and "page must be a whole number" in bad.text
    assert client.get("/api/v1/servers?status=flying").json() == {
        "error": "status 'flying' is not one of: pending, running, stopped, error, absent"
    }
    assert client.get("/audit?since=yesterday").status_code == 400
    assert client.get("/clusters/nope").status_code == 400
    big = client.post("/api/v1/sync", content=b"x" * (2 << 20), headers={"content-type": "text/plain"})
    assert big.status_code == 413


def test_every_page_renders_for_a_viewer(console_app: App) -> None:
    _, _, client = console_app
    login(client, "victor")
    for path in (
        "/",
        "/clusters/shop",
        "/plan",
        "/usage",
        "/usage?period=7d&by=server",
        "/audit",
        "/audit?action=console&actor=alice",
        "/backups",
        "/?part=servers&sync=pending",
    ):
        answer = client.get(path)
        assert answer.status_code == 200, (path, answer.text[:500])
        assert len(answer.content) < 200_000
        assert "Sync now" not in answer.text  # a viewer has no such button
    csv = client.get("/usage.csv?period=30d&by=cluster")
    assert csv.status_code == 200 and csv.headers["content-type"].startswith("text/csv")
    assert "attachment" in csv.headers["content-disposition"]


def test_an_operator_sees_the_buttons(console_app: App) -> None:
    _, _, client = console_app
    login(client, "alice")
    page = client.get("/").text
    assert 'id="sync-now"' in page and 'id="run-backups"' in page and ">Retry</button>" in page


def test_sessions_expire_and_follow_the_console_document(console_app: App) -> None:
    console, _, client = console_app
    login(client, "alice")
    assert client.get("/", follow_redirects=False).status_code == 200
    rt = console.runtime
    spec = rt.cache.access
    assert spec is not None
    import dataclasses

    from reconciler.core.console_model import Role

    demoted = dataclasses.replace(
        spec, users=tuple(dataclasses.replace(u, role=Role.VIEWER) for u in spec.users)
    )
    rt.cache.access = demoted
    assert "Sync now" not in client.get("/").text  # the role declared now counts
    rt.cache.access = dataclasses.replace(spec, users=tuple(u for u in spec.users if u.name != "alice"))
    assert client.get("/", follow_redirects=False).status_code == 303  # removed: signed out
    rt.cache.access = spec
    assert client.get("/", follow_redirects=False).status_code == 200
    rt.clock = lambda: time.time() + 12 * 3600 + 1
    assert client.get("/", follow_redirects=False).status_code == 303  # expired


def test_logout(console_app: App) -> None:
    _, _, client = console_app
    csrf = login(client, "alice")
    assert client.post("/logout", data={}).status_code == 403  # CSRF
    answer = client.post("/logout", data={"csrf": csrf}, follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"] == "/login"
    assert client.get("/", follow_redirects=False).status_code == 303


def test_passwords_and_tokens_are_never_logged(console_app: App, capsys: pytest.CaptureFixture[str]) -> None:
    _, _, client = console_app
    token = CSRF_INPUT.search(client.get("/login").text)
    assert token is not None
    client.post("/login", data={"username": "alice", "password": "Sekrit-Typo-1", "csrf": token.group(1)})
    login(client, "alice")
    client.get("/api/v1/servers", headers={"Authorization": "Bearer Bogus-Token-77"})
    client.get("/api/v1/servers", headers={"Authorization": f"Bearer {TOKENS['ci']}"})
    out = capsys.readouterr()
    for secret in ("Sekrit-Typo-1", PASSWORDS["alice"], "Bogus-Token-77", TOKENS["ci"]):
        assert secret not in out.out + out.err


def test_the_audit_page_filters_and_verifies(console_app: App) -> None:
    from reconciler.core.records import AuditRecord, Outcome

    console, _, client = console_app
    store = console.runtime.ws.store()
    from datetime import UTC, datetime

    for i, (actor, key, commit) in enumerate(
        [("ada", "shop/web/0", "aaa111"), ("bob", "shop/web/1", "bbb222"), ("ada", "shop/db/0", "bbb222")]
    ):
        record = AuditRecord(
            "infra", f"r{i}", actor, AuditAction.UPDATE, Outcome.SUCCEEDED, key=key, commit=commit,
            author="Carol <carol@example.com>" if key == "shop/db/0" else "",
        )
        store.append(record, at=datetime(2026, 11, 1 + i, tzinfo=UTC))
    csrf = login(client, "victor")

    def keys(query: str) -> list[str]:
        answer = client.get(f"/api/v1/audit?{query}")
        assert answer.status_code == 200, answer.text
        return [e["key"] for e in answer.json()["entries"]]

    assert keys("") == ["shop/db/0", "shop/web/1", "shop/web/0"]
    assert keys("actor=ada") == ["shop/db/0", "shop/web/0"]
    assert keys("commit=bbb") == ["shop/db/0", "shop/web/1"]
    assert keys("key=shop/web/1") == ["shop/web/1"]
    assert keys("key=shop/web") == ["shop/web/1", "shop/web/0"]  # a key and the keys below it
    assert keys("actor=CAROL") == ["shop/db/0"]  # the change's author too, ignoring case
    assert keys("action=update&since=2026-11-02T00:00:00Z&until=2026-11-03T00:00:00Z") == ["shop/web/1"]
    assert keys("per_page=1&page=2") == ["shop/web/1"]
    page = client.get("/audit?actor=bob")
    assert page.status_code == 200 and "shop/web/1" in page.text and "shop/db/0" not in page.text
    assert client.post("/audit/verify", data={}).status_code == 403
    verified = client.post("/audit/verify", data={"csrf": csrf})
    assert (
        verified.status_code == 200 and "Audit ledger intact: 3 entries, hash chain verified" in verified.text
    )
