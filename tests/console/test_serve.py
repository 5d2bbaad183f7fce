"""The console on a real uvicorn on 127.0.0.1, the console and hash-password commands, vendored htmx."""

from __future__ import annotations

import hashlib
import http.client
import io
from pathlib import Path

import pytest
from argon2 import PasswordHasher

from reconciler.cli.main import main
from reconciler.console import serve
from reconciler.console.app import check_exposure
from reconciler.core.errors import UserError
from tests.console.conftest import WriteState
from tests.console.support import FakeLoop, console_for

STATIC = Path(__file__).resolve().parents[2] / "reconciler" / "console" / "static"
HTMX_SHA256 = "d6fdc75f204e6bdefa99b69bf1e6d4ac69b8a364f77929f45c13476b4000f717"  # htmx.org 2.0.11


def _get(server: serve.WebServer, path: str) -> http.client.HTTPResponse:
    host, port = server.address
    connection = http.client.HTTPConnection(host, port, timeout=5)
    connection.request("GET", path)
    return connection.getresponse()


def test_served_by_uvicorn_on_loopback(
    write_state: WriteState, hash_env: dict[str, str], tmp_path: Path
) -> None:
    folder = write_state()
    console = console_for(folder, tmp_path / "state", FakeLoop(folder))
    server = serve.start(console.app, "127.0.0.1:0")
    try:
        assert server.url.startswith("http://127.0.0.1:")
        home = _get(server, "/")
        assert home.status == 303 and home.getheader("location") == "/login?next=%2F"
        login = _get(server, "/login")
        body = login.read().decode()
        assert login.status == 200 and 'name="csrf"' in body
        assert login.getheader("x-frame-options") == "DENY"
        script = _get(server, "/static/htmx.min.js")
        assert script.status == 200 and "javascript" in (script.getheader("content-type") or "")
        assert hashlib.sha256(script.read()).hexdigest() == HTMX_SHA256
    finally:
        console.stop()
        server.shutdown()
        server.server_close()


def test_a_busy_address_is_one_error(tmp_path: Path) -> None:
    sock = serve.bind("127.0.0.1:0")
    try:
        port = sock.getsockname()[1]
        with pytest.raises(UserError, match=f"--listen 127.0.0.1:{port}: cannot listen there"):
            serve.bind(f"127.0.0.1:{port}")
    finally:
        sock.close()


def test_exposure_needs_a_console_document() -> None:
    assert check_exposure("127.0.0.1:9110", None) is True
    assert check_exposure("[::1]:9110", None) is True
    assert check_exposure("localhost:9110", None) is True
    with pytest.raises(
        UserError,
        match="0.0.0.0:9110 is not a loopback address, and the desired state has no Console document",
    ):
        check_exposure("0.0.0.0:9110", None)


def test_the_console_command_refuses_to_expose_an_open_console(
    write_state: WriteState, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = write_state(console="")
    code = main(["--state-dir", str(tmp_path / "s"), "console", str(folder), "--listen", "0.0.0.0:0"])
    assert code == 1
    assert (
        "is not a loopback address, and the desired state has no Console document" in capsys.readouterr().err
    )


def test_the_console_command_reports_bad_yaml_located(
    write_state: WriteState, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = write_state(
        console="apiVersion: reconciler/v1\nkind: Console\nmetadata: {name: c}\nspec: {users: 3}\n"
    )
    assert main(["--state-dir", str(tmp_path / "s"), "console", str(folder)]) == 1
    err = capsys.readouterr().err
    assert f"{folder}/console.yaml:4: spec.users must be a mapping" in err and "Traceback" not in err


def test_hash_password(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("correct horse\n"))
    assert main(["hash-password"]) == 0
    hashed = capsys.readouterr().out.strip()
    assert hashed.startswith("$argon2id$") and PasswordHasher().verify(hashed, "correct horse")


def test_htmx_is_vendored_with_its_license() -> None:
    assert hashlib.sha256((STATIC / "htmx.min.js").read_bytes()).hexdigest() == HTMX_SHA256
    assert "Zero-Clause BSD" in (STATIC / "htmx.LICENSE").read_text()
    assert HTMX_SHA256 in (STATIC / "VENDORED.md").read_text()


def _self_signed(folder: Path) -> tuple[str, str]:
    import datetime as dt

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(hours=1))
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return str(cert_path), str(key_path)


def test_served_over_https_cookies_are_secure(
    write_state: WriteState, hash_env: dict[str, str], tmp_path: Path
) -> None:
    import httpx

    folder = write_state()
    console = console_for(folder, tmp_path / "state", FakeLoop(folder))
    cert, key = _self_signed(tmp_path)
    server = serve.start(console.app, "127.0.0.1:0", tls_cert=cert, tls_key=key)
    try:
        assert server.url.startswith("https://127.0.0.1:")
        answer = httpx.get(server.url + "/login", verify=False)
        assert answer.status_code == 200
        assert answer.headers["strict-transport-security"].startswith("max-age=")
        assert "Secure" in answer.headers["set-cookie"] and "HttpOnly" in answer.headers["set-cookie"]
    finally:
        console.stop()
        server.shutdown()
        server.server_close()
