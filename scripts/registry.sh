#!/usr/bin/env bash
# Run Debian's docker-registry (distribution v2) on 127.0.0.1 for Palisade's tests.
#
#   scripts/registry.sh start [PORT]        plain registry (default port 5000)
#   scripts/registry.sh start-token [PORT]  registry with bearer-token auth (default port 5002): a token
#                                            server (scripts/token-server.py) on PORT+100 issues RS256 JWTs
#                                            to palisade/s3cret, as Docker Hub's auth service does
#   scripts/registry.sh start-auth [PORT]   registry with htpasswd basic auth (default port 5001),
#                                           user "palisade", password "s3cret"
#   scripts/registry.sh stop [PORT]         stop it and delete its storage (default 5000)
#   scripts/registry.sh status [PORT]       exit 0 if running and answering
#   scripts/registry.sh url [PORT]          print http://127.0.0.1:PORT
#
# State (config, storage, log, pidfile) lives in ${PALISADE_REGISTRY_DIR:-${TMPDIR:-/tmp}/palisade-registry-PORT}.
# Plain HTTP: clients need --tls-verify=false / --dest-tls-verify=false (skopeo) or an insecure flag.
set -Eeuo pipefail
# The whole script is one { ... } block: bash parses it completely before running it, so editing
# (or checking out) this file while it runs cannot make a running instance execute a mix.
{

NAME=$(basename "$0")
AUTH_USER=palisade
AUTH_PASS=s3cret

log() { printf '[%s] %s\n' "$NAME" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
usage() {
  sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

cmd=${1:-}
[ -n "$cmd" ] || usage
case "$cmd" in
  start-auth) PORT=${2:-5001} ;;
  start-token) PORT=${2:-5002} ;;
  start | stop | status | url) PORT=${2:-5000} ;;
  -h | --help | help) usage ;;
  *) log "unknown command: $cmd"; usage ;;
esac
[[ "$PORT" =~ ^[0-9]+$ ]] && [ "$PORT" -ge 1 ] && [ "$PORT" -le 65535 ] || die "bad port: $PORT"

STATE=${PALISADE_REGISTRY_DIR:-${TMPDIR:-/tmp}/palisade-registry-$PORT}
PIDFILE="$STATE/registry.pid"
LOGFILE="$STATE/registry.log"
CONFIG="$STATE/config.yml"
URL="http://127.0.0.1:$PORT"

ensure_tools() {
  local need=()
  [ -x /usr/bin/docker-registry ] || need+=(docker-registry)
  command -v curl >/dev/null || need+=(curl)
  if [ "$1" = auth ]; then command -v htpasswd >/dev/null || need+=(apache2-utils); fi
  if [ "$1" = token ]; then command -v openssl >/dev/null || need+=(openssl); fi
  if [ ${#need[@]} -gt 0 ]; then
    [ "$(id -u)" -eq 0 ] || die "missing ${need[*]} and not root: cannot apt-get install"
    log "installing ${need[*]}"
    apt-get update >&2 || log "WARNING: apt-get update reported errors; trying the install anyway"
    # policy-rc.d-style guard: don't let the package start its own service on :5000.
    DEBIAN_FRONTEND=noninteractive RUNLEVEL=1 apt-get install -y --no-install-recommends "${need[@]}" >&2 \
      || die "apt-get install ${need[*]} failed"
    # If the package's own service got started (systemd machines), it would hold :5000.
    if command -v systemctl >/dev/null && systemctl is-active --quiet docker-registry 2>/dev/null; then
      log "stopping the distribution's docker-registry service (it listens on :5000)"
      systemctl disable --now docker-registry >&2 || true
    fi
  fi
}

running_pid() { # prints the pid if our registry for this port is alive
  [ -f "$PIDFILE" ] || return 1
  local pid
  pid=$(cat "$PIDFILE")
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
  # make sure the pid is still a docker-registry (not a recycled pid)
  grep -q docker-registry "/proc/$pid/cmdline" 2>/dev/null || return 1
  echo "$pid"
}

http_code() { curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$URL/v2/" 2>/dev/null || true; }

port_in_use() {
  if command -v ss >/dev/null; then
    ss -Hltn "sport = :$PORT" 2>/dev/null | grep -q .
  else
    (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null
  fi
}

start() {
  local mode=$1
  ensure_tools "$mode"
  local pid
  if pid=$(running_pid); then
    local code
    code=$(http_code)
    log "already running on $URL (pid $pid, /v2/ answers $code, state $STATE)"
    if [ "$mode" = auth ] && [ ! -f "$STATE/htpasswd" ]; then die "the registry on $PORT runs without auth; stop it first"; fi
    if [ "$mode" = plain ] && [ -f "$STATE/htpasswd" ]; then die "the registry on $PORT runs with auth; stop it first"; fi
    echo "$URL"
    return 0
  fi
  if port_in_use; then die "127.0.0.1:$PORT is already in use by another process (ss -ltnp 'sport = :$PORT')"; fi

  rm -rf "$STATE"
  mkdir -p "$STATE/storage"
  local auth_block=""
  if [ "$mode" = token ]; then
    local tport=$((PORT + 100))
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=palisade-token-issuer" \
      -keyout "$STATE/token.key" -out "$STATE/token.crt" >/dev/null 2>&1 || die "openssl failed"
    setsid python3 "$(dirname "$0")/token-server.py" "$tport" "$STATE/token.crt" "$STATE/token.key" \
      palisade-test-issuer palisade-registry "$AUTH_USER" "$AUTH_PASS" >"$STATE/token.log" 2>&1 </dev/null &
    echo $! >"$STATE/token.pid"
    local j
    for ((j = 0; j < 100; j++)); do
      curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$tport/token" && break
      sleep 0.1
    done
    auth_block="auth:
  token:
    realm: http://127.0.0.1:$tport/token
    service: palisade-registry
    issuer: palisade-test-issuer
    rootcertbundle: $STATE/token.crt"
  fi
  if [ "$mode" = auth ]; then
    htpasswd -Bbn "$AUTH_USER" "$AUTH_PASS" >"$STATE/htpasswd" || die "htpasswd failed"
    auth_block="auth:
  htpasswd:
    realm: palisade-registry
    path: $STATE/htpasswd"
  fi
  cat >"$CONFIG" <<EOF
version: 0.1
log:
  level: info
  formatter: text
storage:
  filesystem:
    rootdirectory: $STATE/storage
  delete:
    enabled: true
  cache:
    blobdescriptor: inmemory
http:
  addr: 127.0.0.1:$PORT
  secret: palisade-test-secret-$PORT
  headers:
    X-Content-Type-Options: [nosniff]
$auth_block
EOF
  log "starting docker-registry on $URL (mode $mode, config $CONFIG, log $LOGFILE)"
  # setsid: its own session, so it outlives the calling shell and a ^C there.
  setsid /usr/bin/docker-registry serve "$CONFIG" >"$LOGFILE" 2>&1 </dev/null &
  pid=$!
  echo "$pid" >"$PIDFILE"

  local want=200
  [ "$mode" = auth ] && want=401
  [ "$mode" = token ] && want=401
  local i code=""
  for ((i = 0; i < 150; i++)); do
    if ! kill -0 "$pid" 2>/dev/null; then
      log "docker-registry exited; last lines of $LOGFILE:"
      tail -n 20 "$LOGFILE" >&2 || true
      rm -f "$PIDFILE"
      die "docker-registry failed to start on $URL"
    fi
    code=$(http_code)
    [ "$code" = "$want" ] && break
    sleep 0.2
  done
  if [ "$code" != "$want" ]; then
    tail -n 20 "$LOGFILE" >&2 || true
    kill "$pid" 2>/dev/null || true
    rm -f "$PIDFILE"
    die "docker-registry on $URL did not answer /v2/ with $want within 30s (last: '$code')"
  fi
  if [ "$mode" = auth ]; then
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 -u "$AUTH_USER:$AUTH_PASS" "$URL/v2/" || true)
    [ "$code" = 200 ] || die "auth registry on $URL rejects $AUTH_USER/$AUTH_PASS (HTTP $code)"
    log "ready: $URL (pid $pid), basic auth $AUTH_USER/$AUTH_PASS"
  else
    log "ready: $URL (pid $pid)"
  fi
  echo "$URL"
}

stop() {
  local pid
  if ! pid=$(running_pid); then
    log "not running on port $PORT"
    [ -d "$STATE" ] && rm -rf "$STATE"
    return 0
  fi
  log "stopping docker-registry pid $pid (port $PORT)"
  kill "$pid" 2>/dev/null || true
  [ -f "$STATE/token.pid" ] && kill "$(cat "$STATE/token.pid")" 2>/dev/null || true
  local i
  for ((i = 0; i < 50; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    log "still alive after 5s; sending SIGKILL to pid $pid"
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -rf "$STATE"
  log "stopped"
}

status() {
  local pid code
  if pid=$(running_pid); then
    code=$(http_code)
    local mode=plain
    [ -f "$STATE/htpasswd" ] && mode=auth
    echo "running: $URL pid=$pid mode=$mode /v2/=$code state=$STATE"
    case "$code" in 200 | 401) return 0 ;; *) return 1 ;; esac
  fi
  echo "not running on port $PORT"
  return 3
}

case "$cmd" in
  start) start plain ;;
  start-auth) start auth ;;
  start-token) start token ;;
  stop) stop ;;
  status) status ;;
  url) echo "$URL" ;;
esac
exit 0
}
