#!/usr/bin/env bash
# The one test command: installs everything the tests need into a fresh virtual
# environment (.venv), then runs the type checker, the linter and the test suite.
#   bash scripts/run-tests.sh            # everything
#   bash scripts/run-tests.sh -k crash   # extra arguments go to pytest
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}

if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install --quiet --upgrade pip
"$VENV/bin/python" -m pip install --quiet -e '.[test]'

export PATH="$PWD/$VENV/bin:$PATH"

echo "== mypy"
mypy
echo "== ruff"
ruff check .
echo "== pytest"
pytest -q -p no:cacheprovider "$@"
