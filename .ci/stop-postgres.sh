#!/usr/bin/env bash
# Stops and removes the throwaway cluster that start-postgres.sh started.
set -u
DIR="${MUSTER_PG_DIR:-/tmp/muster-ci-postgres}"
PGBIN=/usr/lib/postgresql/15/bin
[[ -f "$DIR/data/postmaster.pid" ]] || exit 0
if [[ $EUID -eq 0 ]]; then
    runuser -u postgres -- "$PGBIN/pg_ctl" -D "$DIR/data" -m fast -w -t 30 stop >/dev/null
else
    "$PGBIN/pg_ctl" -D "$DIR/data" -m fast -w -t 30 stop >/dev/null
fi
rm -rf "$DIR"
