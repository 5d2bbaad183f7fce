"""Every case of the bad-input corpus fails with exactly its expected diagnostics, and fast."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from reconciler.config import load_desired_state
from reconciler.core.errors import UserError
from tests.config.bad_cases import CASES, BadCase, expected_lines, write_case


def test_corpus_is_large_and_distinct() -> None:
    assert len(CASES) >= 45
    assert len({case.name for case in CASES}) == len(CASES)
    assert len({(tuple(sorted(c.files.items())), tuple(sorted(c.special.items()))) for c in CASES}) == len(
        CASES
    )


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_bad_input_is_reported_exactly(
    case: BadCase, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in case.env.items():
        monkeypatch.setenv(name, value)
    root = tmp_path / "case"
    root.mkdir()
    write_case(case, root)
    started = time.monotonic()
    with pytest.raises(UserError) as caught:
        load_desired_state(root)
    elapsed = time.monotonic() - started
    assert [str(d) for d in caught.value.diagnostics] == expected_lines(case, root)
    assert elapsed < 1.0, f"{case.name} took {elapsed:.2f}s"


def test_diagnostics_name_the_folder_as_the_user_did(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    case = next(c for c in CASES if c.name == "unknown-template")
    (tmp_path / "infra" / "clusters").mkdir(parents=True)
    write_case(case, tmp_path / "infra" / "clusters")
    monkeypatch.chdir(tmp_path / "infra")
    with pytest.raises(UserError) as caught:
        load_desired_state(Path("clusters"))
    assert str(caught.value.diagnostics[0]).startswith("clusters/shop.yaml:9: member shop/web names")
