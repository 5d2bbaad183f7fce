#!/usr/bin/env bash
# Install the npm package oidc-provider (a real OpenID provider, under Node) for the console's
# OpenID login test (tests/console/test_oidc.py), into a cache folder outside the repository:
#
#   bash scripts/setup/oidc-provider.sh        # prints the folder on stdout
#
# The folder is $RECONCILER_OIDC_PROVIDER_DIR, else $XDG_CACHE_HOME/reconciler/oidc-provider
# (~/.cache/… by default). Needs node and npm (Debian: apt-get install nodejs npm; the test
# command installs them) and the npm registry. Idempotent: an installed copy of the pinned
# version is kept. Exit status 0 when the package is there afterwards; otherwise non-zero with
# the reason on stderr, and the OpenID test skips, naming the reason.
set -uo pipefail

VERSION=8.8.1
DIR=${RECONCILER_OIDC_PROVIDER_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/reconciler/oidc-provider}

fail() {
  echo "setup/oidc-provider: $*" >&2
  echo "setup/oidc-provider: the console's OpenID login test will be skipped" >&2
  exit 1
}

command -v node >/dev/null 2>&1 || fail "node not found (Debian package nodejs)"
command -v npm >/dev/null 2>&1 || fail "npm not found (Debian package npm)"
installed="$DIR/node_modules/oidc-provider/package.json"
if [ -f "$installed" ] && grep -q "\"version\": \"$VERSION\"" "$installed"; then
  echo "$DIR"
  exit 0
fi
mkdir -p "$DIR" || fail "cannot create $DIR"
[ -f "$DIR/package.json" ] || echo '{"name": "reconciler-test-oidc-provider", "private": true}' >"$DIR/package.json"
npm install --prefix "$DIR" --no-audit --no-fund --loglevel=error "oidc-provider@$VERSION" >&2 \
  || fail "npm install oidc-provider@$VERSION failed"
[ -f "$installed" ] || fail "oidc-provider is still not installed in $DIR"
echo "$DIR"
