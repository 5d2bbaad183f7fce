"""Fixtures of the console tests: a desired state on simcloud with a Console document, cheap
argon2id hashes of known passwords and tokens, and the environment that holds them."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from argon2 import PasswordHasher

from tests.daemon.conftest import PROVIDERS, TEMPLATES, cluster

# Cheap parameters: the tests check the flow, not argon2's cost (the console's own hashes use
# argon2-cffi's defaults).
FAST = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)

PASSWORDS = {"alice": "alice-pw-1", "victor": "victor-pw-1", "ada": "ada-pw-1"}
TOKENS = {"ci": "tok-ci-0123456789", "deploy": "tok-deploy-0123456789"}


def console_yaml(extra: str = "") -> str:
    return f"""\
apiVersion: reconciler/v1
kind: Console
metadata: {{name: console}}
spec:
  users:
    alice: {{role: operator, password_hash: {{secret: env:ALICE_HASH}}}}
    victor: {{role: viewer, password_hash: {{secret: file:secrets/victor.hash}}}}
    ada: {{role: admin, password_hash: {{secret: env:ADA_HASH}}}}
  tokens:
    ci: {{role: viewer, token_hash: {{secret: env:CI_TOKEN_HASH}}}}
    deploy: {{role: operator, token_hash: {{secret: env:DEPLOY_TOKEN_HASH}}}}
{extra}"""


@pytest.fixture(scope="session")
def hashes() -> dict[str, str]:
    return {name: FAST.hash(text) for name, text in {**PASSWORDS, **TOKENS}.items()}


@pytest.fixture
def hash_env(monkeypatch: pytest.MonkeyPatch, hashes: dict[str, str]) -> dict[str, str]:
    env = {
        "ALICE_HASH": hashes["alice"],
        "ADA_HASH": hashes["ada"],
        "CI_TOKEN_HASH": hashes["ci"],
        "DEPLOY_TOKEN_HASH": hashes["deploy"],
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


WriteState = Callable[..., Path]


@pytest.fixture
def write_state(tmp_path: Path, hashes: dict[str, str]) -> WriteState:
    """Write a desired-state folder ``infra`` (shop: db + ``web`` web servers) with a Console."""

    def write(web: int = 2, console: str | None = None, files: dict[str, str] | None = None) -> Path:
        folder = tmp_path / "infra"
        folder.mkdir(exist_ok=True)
        texts = {
            "providers.yaml": PROVIDERS,
            "templates.yaml": TEMPLATES,
            "shop.yaml": cluster(web),
            "console.yaml": console_yaml() if console is None else console,
            **(files or {}),
        }
        for name, text in texts.items():
            if text:
                (folder / name).write_text(text, encoding="utf-8")
        (folder / "secrets").mkdir(exist_ok=True)
        (folder / "secrets" / "victor.hash").write_text(hashes["victor"] + "\n", encoding="utf-8")
        return folder

    return write


@pytest.fixture
def console_app(write_state: WriteState, hash_env: dict[str, str], tmp_path: Path):  # type: ignore[no-untyped-def]
    """A console beside a fake loop, over the ``infra`` desired state: (console, loop, client)."""
    from starlette.testclient import TestClient

    from tests.console.support import FakeLoop, console_for

    folder = write_state()
    loop = FakeLoop(folder)
    console = console_for(folder, tmp_path / "state", loop)
    with TestClient(console.app) as client:
        yield console, loop, client


# --- the console beside a real daemon (``reconciler run`` as a subprocess) -------------------------------
from tests.daemon.conftest import (  # noqa: E402 - the daemon tests' fixtures, shared
    DaemonProcess,
    GitRepo,
    StartDaemon,
    repo,
    start_daemon,
    state_dir,
)

__all__ = ["repo", "start_daemon", "state_dir"]


@pytest.fixture
def console_daemon(
    repo: GitRepo, start_daemon: StartDaemon, hash_env: dict[str, str], hashes: dict[str, str]
) -> DaemonProcess:
    """``reconciler run`` on simcloud with a Console document in its repository, converged once;
    cycles then run only when asked (sync now) or on a new commit."""
    repo.commit(
        {"console.yaml": console_yaml(), "secrets/victor.hash": hashes["victor"] + "\n"},
        "who may use the console",
    )
    return start_daemon(repo, interval=600)
