"""The container image, as far as it can be checked without a container engine.

The Dockerfile is parsed and held to what the README promises (a non-root user, the state
directory as a volume the CLI uses, the metrics port, ``reconciler`` as the entrypoint),
and the image's Python install is reproduced from exactly the files it COPYs: a wheel is
built from that build context alone, installed into an empty directory, and the quickstart
(validate, plan, apply) runs from it with the state in ``RECONCILER_STATE_DIR`` — so a file
the image forgets to copy, or package data the wheel leaves out, fails here.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.conftest import EXAMPLE, NOW, REPO

DOCKERFILE = REPO / "Dockerfile"


def _instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order, continuation lines joined, comments dropped."""
    joined = re.sub(r"\\\n", " ", DOCKERFILE.read_text(encoding="utf-8"))
    found: list[tuple[str, str]] = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            found.append((word.upper(), rest.strip()))
    return found


def _one(name: str) -> str:
    values = [rest for word, rest in _instructions() if word == name]
    assert len(values) == 1, f"{name} appears {len(values)} times in the Dockerfile"
    return values[0]


def test_dockerfile_runs_the_daemon_as_a_non_root_user_with_the_state_volume() -> None:
    user = _one("USER")
    assert user not in ("root", "0") and not user.startswith("0:")
    run = " ".join(rest for word, rest in _instructions() if word == "RUN")
    assert f"useradd --create-home --uid 10001 {user}" in run and f"chown {user} /state" in run
    assert _one("VOLUME") == '["/state"]'
    env = dict(pair.split("=", 1) for pair in shlex.split(_one("ENV")))
    assert env["RECONCILER_STATE_DIR"] == "/state"
    assert _one("EXPOSE") == "9108"  # the daemon's default --listen port
    assert _one("ENTRYPOINT") == '["reconciler"]' and _one("STOPSIGNAL") == "SIGTERM"
    assert "/healthz" in _one("HEALTHCHECK")
    extras = re.search(r"pip install --no-cache-dir '\.\[([a-z,-]+)\]'", run)
    assert extras is not None
    declared = (REPO / "pyproject.toml").read_text(encoding="utf-8")
    for extra in extras.group(1).split(","):
        assert re.search(rf"^{extra} = \[", declared, re.MULTILINE), f"no extra {extra!r} in pyproject.toml"


@pytest.mark.slow
def test_the_image_install_from_its_copied_files_runs_the_quickstart(tmp_path: Path) -> None:
    context = tmp_path / "context"
    context.mkdir()
    for word, rest in _instructions():
        if word != "COPY":
            continue
        *sources, _target = shlex.split(rest)
        for source in sources:
            origin = REPO / source
            if origin.is_dir():
                shutil.copytree(origin, context / source, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                shutil.copy2(origin, context / source)
    wheels, site = tmp_path / "wheels", tmp_path / "site"
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input", "--quiet"]
    # setuptools and wheel come with the test extras, so the build needs no index
    subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(wheels), str(context)],
                   check=True, capture_output=True, timeout=300)
    (wheel,) = wheels.glob("gitops_reconciler-*.whl")
    subprocess.run([*pip, "install", "--no-deps", "--no-index", "--target", str(site), str(wheel)],
                   check=True, capture_output=True, timeout=300)

    desired = tmp_path / "work" / "clusters"
    shutil.copytree(EXAMPLE, desired)
    state = tmp_path / "state"
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECONCILER_") and k != "PYTHONPATH"}
    env.update(PYTHONPATH=str(site), RECONCILER_STATE_DIR=str(state), RECONCILER_NOW=NOW)

    def reconciler(*args: str) -> subprocess.CompletedProcess[str]:
        # -P: nothing from the working directory; the code comes from the installed wheel only
        return subprocess.run([sys.executable, "-P", "-m", "reconciler", *args], cwd=tmp_path / "work",
                              env=env, capture_output=True, text=True, timeout=120)

    probe = "import reconciler, providers; print(reconciler.__file__, providers.__file__)"
    where = subprocess.run([sys.executable, "-P", "-c", probe], cwd=tmp_path / "work", env=env,
                           capture_output=True, text=True, timeout=60, check=True)
    assert where.stdout.count(str(site)) == 2, where.stdout
    validated = reconciler("validate", "clusters")
    assert validated.returncode == 0, validated.stderr
    planned = reconciler("plan", "clusters")
    assert planned.returncode == 0 and "Plan: " in planned.stdout, planned.stderr
    applied = reconciler("apply", "clusters", "--yes")
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert (state / "state.db").exists()
    again = reconciler("plan", "clusters", "--detailed-exitcode")
    assert again.returncode == 0 and "No changes." in again.stdout, again.stdout + again.stderr
