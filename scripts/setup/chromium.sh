#!/usr/bin/env bash
# Install headless Chromium and its WebDriver for the HTML usage-report test (tests/billing/test_html.py)
# and the web console's browser tests (tests/console/test_browser.py, Selenium + chromium-driver).
#
#   sudo bash scripts/setup/chromium.sh
#
# Debian/Ubuntu, run as root, with only the distribution mirrors reachable. Idempotent: when a
# chromium binary and chromedriver are already on PATH nothing is installed. Exit status 0 when
# `chromium --version` and `chromedriver --version` answer afterwards; otherwise non-zero with
# the reason on stderr, and the Chromium tests skip, naming the reason.
set -uo pipefail

fail() {
  echo "setup/chromium: $*" >&2
  echo "setup/chromium: the headless-Chromium report test will be skipped" >&2
  exit 1
}
say() { echo "setup/chromium: $*"; }

found() {
  { command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; } \
    && command -v chromedriver >/dev/null 2>&1
}

if found; then
  say "already installed: $( (chromium --version || chromium-browser --version) 2>/dev/null | head -n1)," \
    "$(chromedriver --version 2>/dev/null | head -n1)"
  exit 0
fi
[ "$(id -u)" -eq 0 ] || fail "must run as root (it installs a package)"
command -v apt-get >/dev/null 2>&1 || fail "apt-get not found: this script supports Debian/Ubuntu only"

export DEBIAN_FRONTEND=noninteractive
say "installing the chromium and chromium-driver packages"
apt-get update -qq || fail "apt-get update failed"
apt-get install -y -qq chromium chromium-driver fonts-dejavu-core >/dev/null \
  || fail "apt-get install chromium chromium-driver failed"
found || fail "chromium or chromedriver is still not on PATH after installing"
say "installed: $( (chromium --version || chromium-browser --version) 2>/dev/null | head -n1)"
