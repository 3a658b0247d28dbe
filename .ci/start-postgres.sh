#!/usr/bin/env bash
# Starts a throwaway PostgreSQL 15 cluster for the store's conformance suite and prints
#   export MUSTER_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:PORT/postgres
# as the last line of stdout, so CI can run:   eval "$(bash .ci/start-postgres.sh)"
# Everything else goes to stderr. The server is left running; stop it with
#   runuser -u postgres -- /usr/lib/postgresql/15/bin/pg_ctl -D "$MUSTER_PG_DIR/data" stop
#
# Settings (environment):
#   MUSTER_PG_DIR   the cluster's directory (default /tmp/muster-ci-postgres). A cluster this
#                   script left there earlier is stopped and removed first, so running it twice
#                   gives a fresh, empty cluster.
#   MUSTER_PG_PORT  the first port to try (default 54329); the next free one is used if taken.
set -euo pipefail

exec 3>&1 1>&2 # stdout is reserved for the final export line

PG_VERSION=15
PGBIN="/usr/lib/postgresql/${PG_VERSION}/bin"
DIR="${MUSTER_PG_DIR:-/tmp/muster-ci-postgres}"
PORT="${MUSTER_PG_PORT:-54329}"

log() { echo "start-postgres: $*"; }

if [[ ! -x "$PGBIN/initdb" || ! -x "$PGBIN/pg_ctl" ]]; then
    log "PostgreSQL ${PG_VERSION} binaries missing; installing postgresql-${PG_VERSION}"
    apt-get update
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "postgresql-${PG_VERSION}"
fi

# PostgreSQL refuses to run as root: as root, run its programs as the `postgres` user.
if [[ $EUID -eq 0 ]]; then
    if ! id postgres >/dev/null 2>&1; then
        log "creating the postgres system user"
        useradd --system --user-group --home-dir /var/lib/postgresql --shell /bin/bash postgres
    fi
    as_pg() { runuser -u postgres -- "$@"; }
    OWNER=postgres
else
    as_pg() { "$@"; }
    OWNER="$(id -un)"
fi

# Clean up what an earlier run of this script left in DIR.
if [[ -e "$DIR" ]]; then
    if [[ -f "$DIR/data/postmaster.pid" ]]; then
        log "stopping the cluster an earlier run left in $DIR"
        as_pg "$PGBIN/pg_ctl" -D "$DIR/data" -m immediate -w -t 30 stop || true
    fi
    rm -rf "$DIR"
fi
mkdir -p "$DIR/sock"
chown -R "$OWNER" "$DIR"
chmod 700 "$DIR"

port_in_use() { (exec 4<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
for _ in $(seq 1 100); do
    port_in_use "$PORT" || break
    log "port $PORT is in use; trying $((PORT + 1))"
    PORT=$((PORT + 1))
done
if port_in_use "$PORT"; then
    log "no free port found"
    exit 1
fi

log "initdb in $DIR/data"
as_pg "$PGBIN/initdb" -D "$DIR/data" -A trust -U postgres -E UTF8 --locale=C.UTF-8 >"$DIR/initdb.log" ||
    { cat "$DIR/initdb.log"; exit 1; }

# The server must not inherit any descriptor beyond 0-2 (fd 3 is the caller's stdout, maybe a
# `$(...)` pipe that would then never reach end-of-file), so close them all in a subshell first.
start_server() (
    for fd in /proc/self/fd/*; do
        fd="${fd##*/}"
        if [[ "$fd" -gt 2 ]]; then eval "exec $fd>&-" 2>/dev/null || true; fi
    done
    as_pg "$PGBIN/pg_ctl" -D "$DIR/data" -l "$DIR/server.log" -w -t 60 \
        -o "-c listen_addresses=127.0.0.1 -p $PORT -k $DIR/sock -c max_connections=200 -c shared_buffers=64MB" \
        start </dev/null
)

log "starting on 127.0.0.1:$PORT"
if ! start_server; then
    cat "$DIR/server.log" || true
    exit 1
fi

for _ in $(seq 1 60); do
    if "$PGBIN/pg_isready" -q -h 127.0.0.1 -p "$PORT" -U postgres; then
        log "ready (data dir $DIR/data, log $DIR/server.log)"
        echo "export MUSTER_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:${PORT}/postgres" >&3
        exit 0
    fi
    sleep 0.5
done
log "the server did not become ready"
cat "$DIR/server.log" || true
exit 1
