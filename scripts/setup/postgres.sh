#!/usr/bin/env bash
# Start a throwaway PostgreSQL server for the PostgreSQL store tests, and say where it is.
#
#   eval "$(bash scripts/setup/postgres.sh)"     # exports RECONCILER_TEST_POSTGRES=postgresql://…
#   bash scripts/setup/postgres.sh --stop        # stop it again
#
# Idempotent: installs the `postgresql` package with apt-get only when no PostgreSQL
# server binaries are found (needs root), creates a cluster only when its folder has none,
# starts the server only when it is not running, creates the database only when missing.
# The cluster lives in $RECONCILER_PG_DIR (default: $TMPDIR/reconciler-test-postgres); it
# listens on 127.0.0.1 only, on a free port, with a random password (scram-sha-256), and
# trades durability for speed (fsync, synchronous_commit and full_page_writes off) — a
# test server, never a place for real ledgers. As root, initdb and the server run as the
# `postgres` user, as PostgreSQL requires.
#
# Options: --no-install (never call apt-get), --stop (stop the server and exit).
# Output: the one `export …` line on stdout; progress and errors on stderr. Exit status
# non-zero (with the reason) when no server could be started; the tests then start their
# own server if PostgreSQL is installed, or skip naming the reason.
set -uo pipefail

BASE=${RECONCILER_PG_DIR:-${TMPDIR:-/tmp}/reconciler-test-postgres}
DATA="$BASE/data"
DBNAME=reconciler_test
INSTALL=1
STOP=0
for arg in "$@"; do
  case "$arg" in
    --no-install) INSTALL=0 ;;
    --stop) STOP=1 ;;
    *) echo "setup/postgres: unknown option $arg" >&2; exit 2 ;;
  esac
done

say() { echo "setup/postgres: $*" >&2; }
fail() { say "$*"; exit 1; }

find_bindir() {
  local dir
  for dir in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    [ -x "$dir/initdb" ] && [ -x "$dir/pg_ctl" ] && { echo "$dir"; return 0; }
  done
  if command -v pg_config >/dev/null 2>&1; then
    dir=$(pg_config --bindir 2>/dev/null)
    [ -n "$dir" ] && [ -x "$dir/initdb" ] && { echo "$dir"; return 0; }
  fi
  dir=$(dirname "$(command -v initdb 2>/dev/null || echo /nonexistent/initdb)")
  [ -x "$dir/initdb" ] && [ -x "$dir/pg_ctl" ] && { echo "$dir"; return 0; }
  return 1
}

BINDIR=$(find_bindir)
if [ -z "$BINDIR" ]; then
  [ "$STOP" -eq 1 ] && exit 0
  [ "$INSTALL" -eq 1 ] || fail "no PostgreSQL server binaries (initdb, pg_ctl) found"
  [ "$(id -u)" -eq 0 ] || fail "PostgreSQL is not installed and installing it needs root"
  command -v apt-get >/dev/null 2>&1 || fail "PostgreSQL is not installed and apt-get is not available"
  say "installing postgresql with apt-get"
  export DEBIAN_FRONTEND=noninteractive
  if ! apt-get install -y -q postgresql >/dev/null 2>&1; then
    apt-get update -q >/dev/null 2>&1
    apt-get install -y -q postgresql >&2 || fail "apt-get install postgresql failed"
  fi
  BINDIR=$(find_bindir) || fail "postgresql installed, but initdb/pg_ctl are still not found"
fi

# Run a PostgreSQL server program as the postgres user when we are root.
as_owner() {
  if [ "$(id -u)" -eq 0 ]; then
    if command -v runuser >/dev/null 2>&1; then
      runuser -u postgres -- "$@"
    else
      su postgres -s /bin/sh -c "$(printf '%q ' "$@")"
    fi
  else
    "$@"
  fi
}

running() { [ -f "$DATA/PG_VERSION" ] && as_owner "$BINDIR/pg_ctl" status -D "$DATA" >/dev/null 2>&1; }

if [ "$STOP" -eq 1 ]; then
  if running; then
    as_owner "$BINDIR/pg_ctl" stop -D "$DATA" -m fast -w >/dev/null 2>&1 || fail "pg_ctl stop failed"
    say "stopped the server in $DATA"
  fi
  exit 0
fi

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

mkdir -p "$BASE" || fail "cannot create $BASE"
chmod 755 "$BASE"
if command -v flock >/dev/null 2>&1; then  # two test runs setting up at once take turns
  exec 9>"$BASE/setup.lock"
  flock -w 120 9 || fail "another setup holds $BASE/setup.lock"
fi
if [ "$(id -u)" -eq 0 ]; then
  id postgres >/dev/null 2>&1 || fail "running as root, but there is no postgres user to run the server"
fi

# --- the cluster ----------------------------------------------------------------------------
if [ ! -f "$DATA/PG_VERSION" ]; then
  rm -rf "$DATA"
  mkdir -p "$DATA"
  [ "$(id -u)" -eq 0 ] && chown postgres: "$DATA"
  chmod 700 "$DATA"
  PASSWORD=$(head -c 18 /dev/urandom | od -An -tx1 | tr -d ' \n')
  pwfile="$BASE/initdb.pw"
  (umask 077; printf '%s\n' "$PASSWORD" >"$pwfile")
  [ "$(id -u)" -eq 0 ] && chown postgres: "$pwfile"
  say "initdb in $DATA"
  as_owner "$BINDIR/initdb" -D "$DATA" -U postgres --auth=scram-sha-256 --pwfile="$pwfile" \
    -E UTF8 --locale=C --no-sync >/dev/null 2>"$BASE/initdb.log" \
    || { cat "$BASE/initdb.log" >&2; fail "initdb failed"; }
  rm -f "$pwfile"
  printf '%s\n' "$PASSWORD" >"$BASE/password"
  chmod 600 "$BASE/password"
  rm -f "$BASE/port"
fi
PASSWORD=$(cat "$BASE/password" 2>/dev/null) || fail "$BASE/password is missing; delete $BASE and run again"

# --- the server -----------------------------------------------------------------------------
if ! running; then
  PORT=$(cat "$BASE/port" 2>/dev/null || true)
  if [ -z "$PORT" ] || ! python3 -c "import socket,sys; socket.socket().bind(('127.0.0.1', int(sys.argv[1])))" \
    "$PORT" 2>/dev/null; then
    PORT=$(free_port) || fail "cannot find a free port"
  fi
  echo "$PORT" >"$BASE/port"
  touch "$BASE/server.log"
  [ "$(id -u)" -eq 0 ] && chown postgres: "$BASE/server.log"
  say "starting the server on 127.0.0.1:$PORT"
  # 9>&-: the server must not inherit (and so hold for its lifetime) the setup lock
  as_owner "$BINDIR/pg_ctl" start -D "$DATA" -w -t 60 -l "$BASE/server.log" \
    -o "-c listen_addresses=127.0.0.1 -c port=$PORT -c unix_socket_directories='$DATA' \
        -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" \
    >/dev/null 9>&- || { tail -n 20 "$BASE/server.log" >&2; fail "pg_ctl start failed"; }
fi
PORT=$(cat "$BASE/port")

# --- the database ---------------------------------------------------------------------------
export PGPASSWORD="$PASSWORD"
psql=("$BINDIR/psql" -X -q -t -A -h 127.0.0.1 -p "$PORT" -U postgres -d postgres)
exists=$("${psql[@]}" -c "SELECT 1 FROM pg_database WHERE datname = '$DBNAME'") \
  || fail "the server on 127.0.0.1:$PORT does not answer"
if [ "$exists" != "1" ]; then
  "${psql[@]}" -c "CREATE DATABASE $DBNAME" || fail "cannot create database $DBNAME"
fi

URL="postgresql://postgres:$PASSWORD@127.0.0.1:$PORT/$DBNAME"
say "ready: postgresql://postgres:***@127.0.0.1:$PORT/$DBNAME"
echo "export RECONCILER_TEST_POSTGRES='$URL'"
