"""OpenID Connect login, through authlib, against a real OpenID provider on 127.0.0.1.

The provider is the npm package ``oidc-provider`` under Node (``tests/console/oidc/provider.mjs``),
installed by ``scripts/setup/oidc-provider.sh``; the console runs on uvicorn. The whole
protocol is real: discovery, the authorization redirect with PKCE, the code exchange at the
token endpoint with the client secret, the signed ID token checked against the key set.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from reconciler.console import serve
from reconciler.core.console_model import Role
from tests.console.conftest import console_yaml
from tests.console.support import CSRF_META, FakeLoop, console_for
from tests.daemon.conftest import PROVIDERS, TEMPLATES, cluster, free_port

NODE = shutil.which("node")
PACKAGE_DIR = Path(
    os.environ.get("RECONCILER_OIDC_PROVIDER_DIR")
    or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "reconciler" / "oidc-provider"
)
INSTALLED = (PACKAGE_DIR / "node_modules" / "oidc-provider" / "package.json").is_file()
SCRIPT = Path(__file__).parent / "oidc" / "provider.mjs"
SECRET = "oidc-client-secret-for-the-test"

pytestmark = [
    pytest.mark.skipif(
        NODE is None,
        reason="node is not installed (Debian package nodejs); the OpenID test "
        "runs a real OpenID provider under Node: CI installs it",
    ),
    pytest.mark.skipif(
        not INSTALLED,
        reason=f"the npm package oidc-provider is not in {PACKAGE_DIR}: run scripts/setup/oidc-provider.sh",
    ),
]


@dataclass
class Setup:
    console_url: str
    issuer: str
    console: object


@pytest.fixture(scope="module")
def oidc_console(tmp_path_factory: pytest.TempPathFactory, hashes: dict[str, str]) -> Iterator[Setup]:
    """One provider and one console for the module (Node starts slowly): the tests sign in afresh."""
    tmp_path = tmp_path_factory.mktemp("oidc")
    sock = serve.bind("127.0.0.1:0")
    console_url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    port = free_port()
    log = (tmp_path / "oidc-provider.log").open("w")
    node = subprocess.Popen(
        [str(NODE), str(SCRIPT), str(PACKAGE_DIR), str(port), SECRET, f"{console_url}/oidc/callback"],
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
        stdin=subprocess.DEVNULL,
    )
    saved = {name: os.environ.get(name) for name in ("OIDC_SECRET", "ALICE_HASH", "ADA_HASH")}
    try:
        assert node.stdout is not None
        first = node.stdout.readline()  # "ready ISSUER", or "" when node exits
        assert first.startswith("ready "), (tmp_path / "oidc-provider.log").read_text()
        issuer = first.split()[1]
        os.environ.update(OIDC_SECRET=SECRET, ALICE_HASH=hashes["alice"], ADA_HASH=hashes["ada"])
        extra = (
            f"  oidc: {{issuer: '{issuer}', client_id: reconciler, "
            "client_secret: {secret: env:OIDC_SECRET}, roles_claim: groups, "
            "roles: {ops: operator, finance: viewer}}\n"
        )
        folder = tmp_path / "infra"
        folder.mkdir()
        texts = {
            "providers.yaml": PROVIDERS,
            "templates.yaml": TEMPLATES,
            "shop.yaml": cluster(2),
            "console.yaml": console_yaml(extra).replace("file:secrets/victor.hash", "env:ALICE_HASH"),
        }
        for name, text in texts.items():
            (folder / name).write_text(text, encoding="utf-8")
        console = console_for(folder, tmp_path / "state", FakeLoop(folder), listen=console_url[7:])
        server = serve.WebServer(console.app, sock).start()
        try:
            yield Setup(console_url, issuer, console)
        finally:
            console.stop()
            server.shutdown()
            server.server_close()
    finally:
        node.terminate()
        node.wait(timeout=10)
        log.close()
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _sign_in(setup: Setup, who: str, next_path: str = "/") -> tuple[httpx.Client, httpx.Response]:
    client = httpx.Client(timeout=15, follow_redirects=True)
    answer = client.get(f"{setup.console_url}/oidc/login", params={"login_hint": who, "next": next_path})
    return client, answer


def test_an_operator_signs_in_through_the_provider(oidc_console: Setup) -> None:
    login_page = httpx.get(f"{oidc_console.console_url}/login")
    assert f"Sign in with {oidc_console.issuer}" in login_page.text
    client, answer = _sign_in(oidc_console, "alice", "/plan")
    assert answer.status_code == 200, answer.text[:2000]
    assert str(answer.url) == f"{oidc_console.console_url}/plan"
    assert 'id="user">alice@example.com<' in answer.text and "role-operator" in answer.text
    history = [str(r.url).split("?")[0] for r in answer.history]
    assert history[0] == f"{oidc_console.console_url}/oidc/login"
    assert any(url.startswith(f"{oidc_console.issuer}/auth") for url in history)
    assert f"{oidc_console.console_url}/oidc/callback" in history
    csrf = CSRF_META.search(client.get(f"{oidc_console.console_url}/").text)
    assert csrf is not None
    synced = client.post(f"{oidc_console.console_url}/api/v1/sync", headers={"X-CSRF-Token": csrf.group(1)})
    assert synced.status_code == 202
    store = oidc_console.console.runtime.ws.existing_store()  # type: ignore[attr-defined]
    from reconciler.core.records import AuditAction

    entry = store.recent_audit("infra", [AuditAction.CONSOLE], limit=5)[0]
    assert entry.record.actor == "console:alice@example.com" and '"via": "oidc"' in entry.record.detail


def test_roles_follow_the_claim_and_the_mapping_in_git(oidc_console: Setup) -> None:
    client, answer = _sign_in(oidc_console, "finn")
    assert answer.status_code == 200 and "role-viewer" in answer.text and 'id="sync-now"' not in answer.text
    rt = oidc_console.console.runtime  # type: ignore[attr-defined]
    spec = rt.cache.access
    remapped = dataclasses.replace(spec.oidc, roles=(("finance", Role.ADMIN), ("ops", Role.OPERATOR)))
    rt.cache.access = dataclasses.replace(spec, oidc=remapped)
    assert "role-admin" in client.get(f"{oidc_console.console_url}/").text
    rt.cache.access = dataclasses.replace(
        spec, oidc=dataclasses.replace(spec.oidc, roles=(("ops", Role.OPERATOR),))
    )
    assert "/login" in str(client.get(f"{oidc_console.console_url}/").url)  # no role any more: signed out


def test_an_account_without_a_role_is_refused(oidc_console: Setup) -> None:
    _, answer = _sign_in(oidc_console, "eve")
    assert answer.status_code == 403
    assert "no value of its 'groups' claim maps to a console role" in answer.text


def test_a_callback_not_started_here_is_refused(oidc_console: Setup) -> None:
    answer = httpx.get(f"{oidc_console.console_url}/oidc/callback", params={"code": "x", "state": "y"})
    assert answer.status_code == 403 and "was not started here" in answer.text
    denied = httpx.get(f"{oidc_console.console_url}/oidc/callback", params={"error": "access_denied"})
    assert denied.status_code == 403 and "access_denied" in denied.text
