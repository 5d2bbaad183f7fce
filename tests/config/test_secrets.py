"""Secret references: read only on demand, every missing one reported where it was written, and
``file:`` secrets only from small regular files outside the system trees."""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from reconciler.config import check_secrets, load_desired_state, resolve_secret
from reconciler.config import secrets as secrets_module
from reconciler.config.secrets import MAX_SECRET_FILE_BYTES
from reconciler.core.errors import UserError
from reconciler.core.model import DesiredServer, ResolvedInput, SecretRef, Size
from tests.config.conftest import WriteFiles


def test_env_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DB_PASSWORD", "hunter2")
    assert resolve_secret(SecretRef("env", "DB_PASSWORD")) == "hunter2"
    monkeypatch.delenv("DB_PASSWORD")
    with pytest.raises(UserError) as caught:
        resolve_secret(SecretRef("env", "DB_PASSWORD"))
    assert caught.value.diagnostics[0].message == (
        "secret env:DB_PASSWORD is not set; export DB_PASSWORD or change the reference"
    )


def test_file_secret_drops_one_trailing_newline(tmp_path: Path) -> None:
    (tmp_path / "a").write_text("value\n\n")
    (tmp_path / "b").write_text("value\r\n")
    (tmp_path / "c").write_text("value")
    assert resolve_secret(SecretRef("file", str(tmp_path / "a"))) == "value\n"
    assert resolve_secret(SecretRef("file", str(tmp_path / "b"))) == "value"
    assert resolve_secret(SecretRef("file", str(tmp_path / "c"))) == "value"
    with pytest.raises(UserError) as caught:
        resolve_secret(SecretRef("file", str(tmp_path / "missing")))
    assert "does not exist; create the file or change the reference" in str(caught.value)


STATE = {
    "p.yaml": "apiVersion: reconciler/v1\nkind: Provider\nmetadata: {name: sim}\nspec: {type: simcloud}\n",
    "t.yaml": """\
apiVersion: reconciler/v1
kind: ServerTemplate
metadata: {name: app}
spec:
  image: {simcloud: img}
  size: {cpus: 1, memory_mb: 512, disk_gb: 5}
  inputs:
    password: {type: string}
    api_key: {type: string}
    cert: {type: string}
""",
    "inputs.yaml": """\
apiVersion: reconciler/v1
kind: Inputs
metadata: {name: all}
spec:
  scope: global
  values:
    password: {secret: env:RECONCILER_TEST_DB_PASSWORD}
    cert: {secret: "file:certs/cert.pem"}
""",
    "shop.yaml": """\
apiVersion: reconciler/v1
kind: Cluster
metadata: {name: shop}
spec:
  provider: sim
  members:
    app:
      template: app
      count: 2
      inputs:
        api_key: {secret: env:RECONCILER_TEST_API_KEY}
    db:
      template: app
      count: 1
""",
}


def test_check_secrets_lists_every_missing_secret_where_it_was_written(
    write_files: WriteFiles, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("RECONCILER_TEST_DB_PASSWORD", raising=False)
    monkeypatch.delenv("RECONCILER_TEST_API_KEY", raising=False)
    root = write_files(STATE)
    state = load_desired_state(root)  # planning needs no secret
    with pytest.raises(UserError) as caught:
        check_secrets(state.servers)
    assert [str(d) for d in caught.value.diagnostics] == [
        f"{root}/inputs.yaml:7: secret env:RECONCILER_TEST_DB_PASSWORD is not set; export "
        "RECONCILER_TEST_DB_PASSWORD or change the reference",
        f"{root}/inputs.yaml:8: secret file:{root}/certs/cert.pem does not exist; create the file or change "
        "the reference",
        f"{root}/shop.yaml:11: secret env:RECONCILER_TEST_API_KEY is not set; export RECONCILER_TEST_API_KEY "
        "or change the reference",
    ]


def test_check_secrets_passes_when_all_are_there(
    write_files: WriteFiles, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RECONCILER_TEST_DB_PASSWORD", "pw")
    monkeypatch.setenv("RECONCILER_TEST_API_KEY", "key")
    root = write_files({**STATE, "certs/cert.pem": "-----BEGIN CERTIFICATE-----\n"})
    check_secrets(load_desired_state(root).servers)


def test_check_secrets_falls_back_to_the_server_location() -> None:
    server = DesiredServer(
        key="shop/app/0",
        name="shop-app-0",
        cluster="shop",
        member="app",
        ordinal=0,
        provider="sim",
        provider_type="simcloud",
        template="app",
        image="img",
        size=Size(1, 512, 5),
        flavor=None,
        inputs=(ResolvedInput("token", SecretRef("env", "RECONCILER_TEST_UNSET_XYZ"), "from a plan"),),
    )
    with pytest.raises(UserError) as caught:
        check_secrets([server])
    assert [str(d) for d in caught.value.diagnostics] == [
        "shop/app: secret env:RECONCILER_TEST_UNSET_XYZ is not set; export RECONCILER_TEST_UNSET_XYZ or "
        "change "
        "the reference (input 'token')"
    ]


# --- file: secrets are small regular files outside /proc, /sys and /dev ------------------------------
def _refusal(ref: SecretRef) -> str:
    """resolve_secret's refusal of ``ref``, from a thread that must not hang (a FIFO would, if opened)."""
    outcome: list[BaseException | str] = []

    def resolve() -> None:
        try:
            outcome.append(resolve_secret(ref))
        except BaseException as exc:  # handed back to the test
            outcome.append(exc)

    thread = threading.Thread(target=resolve, daemon=True)
    thread.start()
    thread.join(5)
    assert not thread.is_alive(), f"reading {ref} hangs"
    [result] = outcome
    assert isinstance(result, UserError), f"{ref} was read: {result!r}"
    [diagnostic] = result.diagnostics
    assert str(ref) in diagnostic.message  # the reference, named as written
    return diagnostic.message


def _fifo(folder: Path) -> Path:
    path = folder / "pipe"
    os.mkfifo(path)
    return path


def _socket(folder: Path) -> Path:
    path = folder / "sock"
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(path))
    server.close()
    return path


def _link(folder: Path, target: str | Path, name: str = "link") -> Path:
    path = folder / name
    path.symlink_to(target)
    return path


REFUSED: list[tuple[str, Callable[[Path], str | Path], str]] = [
    ("fifo", _fifo, "is a FIFO (named pipe), not a regular file; point the reference at a file"),
    ("directory", lambda tmp: tmp, "is a directory, not a regular file"),
    ("socket", _socket, "is a socket, not a regular file"),
    ("proc-environ", lambda tmp: "/proc/self/environ", "is under /proc, which holds live system state"),
    ("proc-relative", lambda tmp: f"{tmp}/{'../' * 30}proc/self/environ", "is under /proc"),
    ("sys", lambda tmp: "/sys/kernel/hostname", "is under /sys, which holds live system state"),
    ("dev-null", lambda tmp: "/dev/null", "is under /dev, which holds live system state"),
    ("dev-stdin", lambda tmp: "/dev/stdin", "is under /dev"),
    ("link-to-proc", lambda tmp: _link(tmp, "/proc/self/environ"), "(a link to /proc/"),
    ("link-chain-to-dev", lambda tmp: _link(tmp, _link(tmp, "/dev/zero", "inner"), "outer"), "under /dev"),
    ("link-to-fifo", lambda tmp: _link(tmp, _fifo(tmp)), "is a FIFO (named pipe)"),
    ("link-loop", lambda tmp: _link(tmp, tmp / "link"), "cannot be read"),
    ("too-large", lambda tmp: _write(tmp / "big", "Q" * (64 * 1024 + 1)), "is larger than 64 KiB"),
]


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


@pytest.mark.parametrize(("kind", "make", "problem"), REFUSED, ids=[r[0] for r in REFUSED])
def test_a_file_secret_that_is_not_a_small_regular_file_is_refused_by_name(
    kind: str, make: Callable[[Path], str | Path], problem: str, tmp_path: Path
) -> None:
    message = _refusal(SecretRef("file", str(make(tmp_path))))
    assert problem in message
    assert "Q" * 100 not in message


def test_a_file_secret_of_exactly_the_limit_is_read(tmp_path: Path) -> None:
    (tmp_path / "max").write_text("k" * MAX_SECRET_FILE_BYTES)
    assert resolve_secret(SecretRef("file", str(tmp_path / "max"))) == "k" * MAX_SECRET_FILE_BYTES
    link = _link(tmp_path, tmp_path / "max", "to-max")  # a link to a regular file is fine
    assert len(resolve_secret(SecretRef("file", str(link)))) == MAX_SECRET_FILE_BYTES


def test_a_file_swapped_for_a_fifo_after_the_check_is_refused_without_hanging(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pipe = _fifo(tmp_path)
    regular = _write(tmp_path / "regular", "x")
    real_stat = os.stat

    def stat_says_regular(path: Any, *args: Any, **kwargs: Any) -> os.stat_result:
        return real_stat(regular if str(path) == str(pipe) else path, *args, **kwargs)

    monkeypatch.setattr(secrets_module.os, "stat", stat_says_regular)
    assert "is a FIFO (named pipe)" in _refusal(SecretRef("file", str(pipe)))


def test_check_secrets_reports_a_refused_file_where_the_reference_was_written(
    write_files: WriteFiles, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RECONCILER_TEST_DB_PASSWORD", "pw")
    monkeypatch.setenv("RECONCILER_TEST_API_KEY", "key")
    files = dict(STATE)
    files["inputs.yaml"] = STATE["inputs.yaml"].replace("file:certs/cert.pem", "file:/proc/self/environ")
    root = write_files(files)
    with pytest.raises(UserError) as caught:
        check_secrets(load_desired_state(root).servers)
    assert [str(d) for d in caught.value.diagnostics] == [
        f"{root}/inputs.yaml:8: secret file:/proc/self/environ (a link to /proc/{os.getpid()}/environ) is "
        "under /proc, which holds live system state, not secret files; keep the secret in a file of its "
        "own and point the reference at it"
    ]
