"""Secret references: read only on demand, and every missing one reported where it was written."""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.config import check_secrets, load_desired_state, resolve_secret
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
