"""README's "Bring existing servers under management" commands work as written: each line of
its shell block runs, in order, in a folder holding a copy of the examples, and exits 0."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.e2e.conftest import NOW, REPO

SECTION = "## Bring existing servers under management"


def _commands() -> list[str]:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    block = text.split(SECTION, 1)[1].split("```sh\n", 1)[1].split("```", 1)[0]
    return [line.split("  #", 1)[0].strip() for line in block.splitlines() if line.strip()]


def test_the_commands_run_as_written(tmp_path: Path) -> None:
    shutil.copytree(REPO / "examples", tmp_path / "examples")
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECONCILER_")}
    env.update(
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
        PYTHONPATH=str(REPO),
        RECONCILER_NOW=NOW,
    )
    commands = _commands()
    assert commands[0].startswith("reconciler simcloud create") and "reconciler forget" in commands[-1]
    outputs = []
    for command in commands:
        done = subprocess.run(command, shell=True, cwd=tmp_path, env=env, capture_output=True, text=True,
                              timeout=120, stdin=subprocess.DEVNULL)
        assert done.returncode == 0, f"{command}\n{done.stdout}\n{done.stderr}"
        outputs.append(done.stdout + done.stderr)
    plan = outputs[commands.index("reconciler plan fleet")]
    assert plan.count("(adopt: take over") == 3 and "3 to adopt" in plan and "0 to create" in plan
    assert "can be removed" in outputs[commands.index("reconciler plan fleet --detailed-exitcode")]
    assert "sim/web/1" in outputs[commands.index("reconciler status fleet")]
