#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for the store tests.
#
#   .ci/postgres.sh start   # install if needed, init, start; prints the URL
#   .ci/postgres.sh url     # prints the URL of the running cluster
#   .ci/postgres.sh stop    # stops the cluster and deletes its files
#
# Then: PARLEY_TEST_POSTGRES=$(.ci/postgres.sh start) go test ./rendezvous/store/...
#
# The cluster lives in $PARLEY_PG_DIR (default /tmp/parley-ci-postgres),
# listens on 127.0.0.1 only, on $PARLEY_PG_PORT (default 55432, or the next
# free port), with trust authentication and durability off: it is for tests
# and nothing else. `start` reuses a cluster this script already started.
# Run as root, the server runs as the `postgres` user (PostgreSQL refuses to
# run as root) and a missing PostgreSQL is installed with apt-get.
set -euo pipefail

dir="${PARLEY_PG_DIR:-/tmp/parley-ci-postgres}"
data="$dir/data"
log() { echo "postgres.sh: $*" >&2; }

# find_bindir prints the directory holding initdb, pg_ctl and postgres.
find_bindir() {
  local d
  if command -v pg_config >/dev/null 2>&1; then
    d=$(pg_config --bindir 2>/dev/null || true)
    if [ -n "$d" ] && [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ] && [ -x "$d/postgres" ]; then
      echo "$d"; return 0
    fi
  fi
  # Debian and Ubuntu keep the server outside PATH, one directory per
  # major version; take the newest.
  for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    if [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ] && [ -x "$d/postgres" ]; then
      echo "$d"; return 0
    fi
  done
  if command -v initdb >/dev/null 2>&1; then
    d=$(dirname "$(readlink -f "$(command -v initdb)")")
    if [ -x "$d/pg_ctl" ] && [ -x "$d/postgres" ]; then
      echo "$d"; return 0
    fi
  fi
  return 1
}

# as_owner runs a command as the user that owns the cluster.
as_owner() {
  if [ "$(id -u)" -eq 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

url() { echo "postgres://postgres@127.0.0.1:$(cat "$dir/port")/postgres?sslmode=disable"; }

running() { [ -f "$data/PG_VERSION" ] && [ -f "$dir/port" ] && as_owner "$bindir/pg_ctl" -D "$data" status >/dev/null 2>&1; }

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

install() {
  if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    log "PostgreSQL server binaries not found; install PostgreSQL (initdb, pg_ctl, postgres)"
    exit 1
  fi
  log "installing PostgreSQL with apt-get"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq postgresql >&2
}

start() {
  if ! bindir=$(find_bindir); then
    install
    bindir=$(find_bindir) || { log "PostgreSQL installed but initdb not found"; exit 1; }
  fi
  if running; then
    url
    return
  fi
  if [ "$(id -u)" -eq 0 ] && ! id postgres >/dev/null 2>&1; then
    useradd --system --home-dir "$dir" --shell /usr/sbin/nologin postgres
  fi
  mkdir -p "$dir"
  if [ "$(id -u)" -eq 0 ]; then chown postgres: "$dir"; fi
  if [ ! -f "$data/PG_VERSION" ]; then
    rm -rf "$data"
    log "initdb in $data ($bindir)"
    as_owner "$bindir/initdb" -D "$data" -U postgres --auth=trust --encoding=UTF8 --locale=C --no-sync >"$dir/initdb.log" 2>&1 ||
      { cat "$dir/initdb.log" >&2; exit 1; }
  fi
  local port="${PARLEY_PG_PORT:-55432}"
  while port_in_use "$port"; do port=$((port + 1)); done
  echo "$port" >"$dir/port"
  log "starting on 127.0.0.1:$port"
  if ! as_owner "$bindir/pg_ctl" -D "$data" -l "$dir/server.log" -w -t 60 start -o \
    "-c listen_addresses=127.0.0.1 -p $port -k $dir -c max_connections=300 -c fsync=off -c synchronous_commit=off -c full_page_writes=off" >&2; then
    cat "$dir/server.log" >&2
    exit 1
  fi
  for _ in $(seq 50); do
    if "$bindir/pg_isready" -q -h 127.0.0.1 -p "$port"; then
      url
      return
    fi
    sleep 0.2
  done
  log "server did not become ready"; cat "$dir/server.log" >&2
  exit 1
}

stop() {
  bindir=$(find_bindir) || return 0
  if running; then
    as_owner "$bindir/pg_ctl" -D "$data" -m fast -w stop >&2
  fi
  rm -rf "$dir"
}

case "${1:-start}" in
  start) start ;;
  stop) stop ;;
  url) bindir=$(find_bindir) && running && url || { log "not running"; exit 1; } ;;
  *) echo "usage: $0 start|url|stop" >&2; exit 2 ;;
esac
