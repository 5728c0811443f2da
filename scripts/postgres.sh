#!/usr/bin/env bash
# A throwaway PostgreSQL cluster on 127.0.0.1 for Palisade's store tests (Debian's `postgresql`).
#
#   scripts/postgres.sh start PORT DIR   initdb in DIR (trust auth, loopback only), start, wait until ready,
#                                        create database "palisade"; prints the URL
#   scripts/postgres.sh stop PORT DIR    stop it (fast shutdown) and delete DIR
#   scripts/postgres.sh url PORT         print postgres://postgres@127.0.0.1:PORT/palisade
#
# PostgreSQL refuses to run as root: as root the cluster runs as the "postgres" user (created by the
# package) or "nobody", and DIR is chowned to it. The socket directory is DIR itself.
set -Eeuo pipefail
{
NAME=$(basename "$0")
log() { printf '[%s] %s\n' "$NAME" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
usage() { sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }

cmd=${1:-}; PORT=${2:-}; DIR=${3:-}
[ -n "$cmd" ] && [ -n "$PORT" ] || usage
case "$PORT" in *[!0-9]*) die "PORT must be a number: $PORT" ;; esac
url() { echo "postgres://postgres@127.0.0.1:$PORT/palisade"; }

BIN=
for d in /usr/lib/postgresql/*/bin; do [ -x "$d/pg_ctl" ] && BIN=$d; done

as_user() {
  if [ "$(id -u)" = 0 ]; then
    local u=postgres
    id -u postgres >/dev/null 2>&1 || u=nobody
    runuser -u "$u" -- "$@"
  else
    "$@"
  fi
}

case "$cmd" in
  url) url ;;
  start)
    [ -n "$DIR" ] || usage
    [ -n "$BIN" ] || die "PostgreSQL is not installed (apt-get install postgresql)"
    mkdir -p "$DIR"
    if [ "$(id -u)" = 0 ]; then
      u=postgres; id -u postgres >/dev/null 2>&1 || u=nobody
      chown -R "$u" "$DIR"; chmod 700 "$DIR"
    fi
    if [ ! -f "$DIR/data/PG_VERSION" ]; then
      as_user "$BIN/initdb" -D "$DIR/data" -U postgres --auth=trust --encoding=UTF8 --locale=C.UTF-8 >"$DIR/initdb.log" 2>&1 \
        || { cat "$DIR/initdb.log" >&2; die "initdb failed"; }
    fi
    as_user "$BIN/pg_ctl" -D "$DIR/data" -l "$DIR/postgres.log" -w -t 60 \
      -o "-c listen_addresses=127.0.0.1 -p $PORT -c unix_socket_directories=$DIR -c max_connections=200 -c fsync=on" start >/dev/null \
      || { tail -20 "$DIR/postgres.log" >&2; die "pg_ctl start failed"; }
    for _ in $(seq 1 50); do
      "$BIN/pg_isready" -h 127.0.0.1 -p "$PORT" -q && break
      sleep 0.2
    done
    "$BIN/psql" -h 127.0.0.1 -p "$PORT" -U postgres -d postgres -qtAc \
      "SELECT 1 FROM pg_database WHERE datname = 'palisade'" | grep -q 1 \
      || "$BIN/psql" -h 127.0.0.1 -p "$PORT" -U postgres -d postgres -qc "CREATE DATABASE palisade" >/dev/null
    log "PostgreSQL on 127.0.0.1:$PORT (data in $DIR)"
    url
    ;;
  stop)
    [ -n "$DIR" ] || usage
    if [ -n "$BIN" ] && [ -f "$DIR/data/postmaster.pid" ]; then
      as_user "$BIN/pg_ctl" -D "$DIR/data" -m fast -w -t 60 stop >/dev/null 2>&1 || true
    fi
    rm -rf "$DIR"
    ;;
  *) usage ;;
esac
exit 0
}
