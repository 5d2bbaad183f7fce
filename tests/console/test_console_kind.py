"""The Console kind: parsed like every other kind, its problems located, its hashes checked by argon2id."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from reconciler.config import load_desired_state, load_with_console, resolve_secret
from reconciler.console.access import AuthMethod, Verifier, hash_secret
from reconciler.core.console_model import Role
from reconciler.core.errors import UserError
from tests.console.conftest import PASSWORDS, TOKENS, WriteState, console_yaml


def _errors(folder: Path) -> list[str]:
    with pytest.raises(UserError) as caught:
        load_desired_state(folder)
    return [str(d).replace(str(folder) + "/", "") for d in caught.value.diagnostics]


def test_the_document_is_parsed_with_its_references(write_state: WriteState) -> None:
    folder = write_state(console=console_yaml("  session_hours: 8\n"))
    state, console = load_with_console(folder)
    assert state.deployment == "infra" and len(state.servers) == 3
    assert console is not None and console.name == "console" and console.session_hours == 8
    assert [(u.name, u.role) for u in console.users] == [
        ("ada", Role.ADMIN),
        ("alice", Role.OPERATOR),
        ("victor", Role.VIEWER),
    ]
    victor = console.user("victor")
    assert victor is not None and victor.password_hash.scheme == "file"
    assert victor.password_hash.target == os.path.join(str(folder), "secrets/victor.hash")
    assert victor.location is not None and victor.location.line == 7
    assert [(t.name, t.role) for t in console.tokens] == [("ci", Role.VIEWER), ("deploy", Role.OPERATOR)]


def test_a_folder_without_one_has_none(write_state: WriteState) -> None:
    assert load_with_console(write_state(console=""))[1] is None


def test_oidc_settings(write_state: WriteState) -> None:
    extra = (
        "  oidc: {issuer: 'https://idp.example.com/', client_id: reconciler, "
        "client_secret: {secret: env:OIDC_SECRET}, roles_claim: groups, "
        "roles: {ops: operator, finance: viewer}}\n"
    )
    _, console = load_with_console(write_state(console=console_yaml(extra)))
    assert console is not None and console.oidc is not None
    oidc = console.oidc
    assert oidc.issuer == "https://idp.example.com" and oidc.scopes == ("openid", "profile", "email")
    assert oidc.role_for(["finance", "ops", "x"]) is Role.OPERATOR
    assert oidc.role_for("finance") is Role.VIEWER
    assert oidc.role_for(["x"]) is None and oidc.role_for(3) is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            console_yaml().replace("role: operator", "role: root", 1),
            "console.yaml:6: spec.users.alice.role must be one of viewer, operator, admin; "
            "got the string 'root'",
        ),
        (
            console_yaml().replace("alice:", "Alice:"),
            "console.yaml:6: spec.users key 'Alice' is not a valid user or token name",
        ),
        (
            console_yaml().replace("password_hash: {secret: env:ALICE_HASH}", "password_hash: hunter2"),
            "console.yaml:6: spec.users.alice.password_hash must be a mapping",
        ),
        (
            console_yaml().replace("ci: {role", "alice: {role"),
            "console.yaml:10: token 'alice' has the name of a user",
        ),
        (
            console_yaml(
                "  oidc: {issuer: 'http://idp.example.com', client_id: r, "
                "client_secret: {secret: env:S}, roles: {ops: operator}}\n"
            ),
            "console.yaml:12: spec.oidc.issuer 'http://idp.example.com' is not https://",
        ),
        (
            console_yaml("  sessions: 3\n"),
            "console.yaml:12: unknown field 'sessions' in spec; did you mean 'session_hours'?",
        ),
        (
            "apiVersion: reconciler/v1\nkind: Console\nmetadata: {name: console}\nspec: {}\n",
            "console.yaml:4: spec declares nobody; add users, tokens or oidc",
        ),
    ],
)
def test_bad_documents_are_located(write_state: WriteState, text: str, expected: str) -> None:
    errors = _errors(write_state(console=text))
    assert any(e.startswith(expected) for e in errors), errors


def test_one_console_document_per_desired_state(write_state: WriteState) -> None:
    second = console_yaml().replace("name: console", "name: other")
    folder = write_state(files={"z.yaml": second})
    assert _errors(folder) == [
        "z.yaml:1: a second Console document ('other'; the first is 'console' at console.yaml:1); "
        "declare every user and token in one Console document"
    ]


# --- argon2id -----------------------------------------------------------------------------------------
def test_passwords_and_tokens_are_checked(write_state: WriteState, hash_env: dict[str, str]) -> None:
    _, console = load_with_console(write_state())
    verifier = Verifier(console, resolve_secret)
    alice = verifier.password("alice", PASSWORDS["alice"])
    assert alice is not None and alice.role is Role.OPERATOR and alice.via is AuthMethod.PASSWORD
    assert alice.actor == "console:alice"
    victor = verifier.password("victor", PASSWORDS["victor"])  # its hash is a file: secret
    assert victor is not None and victor.role is Role.VIEWER
    assert verifier.password("alice", PASSWORDS["victor"]) is None
    assert verifier.password("nobody", "x") is None
    assert verifier.password("alice", "") is None
    assert verifier.password("alice", "x" * 5000) is None
    token = verifier.token(TOKENS["deploy"])
    assert token is not None
    assert (token.name, token.role, token.via) == ("deploy", Role.OPERATOR, AuthMethod.TOKEN)
    assert verifier.token(TOKENS["deploy"]) == token  # remembered
    assert verifier.token("not-a-token") is None


def test_an_unreadable_or_foreign_hash_refuses_the_login_and_names_no_value(
    write_state: WriteState,
    hash_env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _, console = load_with_console(write_state())
    monkeypatch.delenv("ALICE_HASH")
    monkeypatch.setenv("ADA_HASH", "$2b$12$bcrypt-is-not-argon2id")
    verifier = Verifier(console, resolve_secret)
    assert verifier.password("alice", PASSWORDS["alice"]) is None
    assert verifier.password("ada", PASSWORDS["ada"]) is None
    out = capsys.readouterr()
    assert PASSWORDS["alice"] not in out.out + out.err and "bcrypt-is" not in out.out + out.err


def test_hash_secret_makes_argon2id() -> None:
    hashed = hash_secret("s3cret")
    assert hashed.startswith("$argon2id$")
