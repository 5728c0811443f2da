#!/usr/bin/env bash
# Push Palisade's test images to a local registry (see scripts/registry.sh).
#
#   scripts/push-test-images.sh [PORT]      (default 5000)
#
# Pushes:
#   the cached OCI image built by scripts/build-test-images.sh  -> 127.0.0.1:PORT/test/app:1.0
#   ../shared/images/alpine-310.tar.gz (docker-archive, gzip)   -> 127.0.0.1:PORT/library/alpine:3.10
#   ../shared/images/alpine-311.tar.gz                          -> 127.0.0.1:PORT/library/alpine:3.11
#
# Environment:
#   PALISADE_SHARED          shared data dir (default: ../shared beside the checkout)
#   PALISADE_REGISTRY_CREDS  user:password for a registry with auth (scripts/registry.sh start-auth
#                            uses palisade:s3cret)
#   PALISADE_TESTDATA        passed on to build-test-images.sh
# Prints the pushed references with their manifest digests; the last line of stdout is the
# registry address (127.0.0.1:PORT).
set -Eeuo pipefail
# The whole script is one { ... } block: bash parses it completely before running it, so editing
# (or checking out) this file while it runs cannot make a running instance execute a mix.
{

NAME=$(basename "$0")
log() { printf '[%s] %s\n' "$NAME" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
on_err() {
  local rc=$?
  log "ERROR: failed (exit $rc) at line $1: $2"
  exit "$rc"
}
trap 'on_err $LINENO "$BASH_COMMAND"' ERR

PORT=${1:-5000}
[[ "$PORT" =~ ^[0-9]+$ ]] || die "bad port: $PORT (usage: $0 [PORT])"
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
SHARED=${PALISADE_SHARED:-$REPO/../shared}
REG="127.0.0.1:$PORT"

command -v skopeo >/dev/null || {
  log "installing skopeo"
  apt-get update >&2 || true
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends skopeo >&2 || die "apt-get install skopeo failed"
}
command -v curl >/dev/null || die "curl not found"

CREDS=()
CURL_AUTH=()
if [ -n "${PALISADE_REGISTRY_CREDS:-}" ]; then
  CREDS=(--dest-creds "$PALISADE_REGISTRY_CREDS")
  CURL_AUTH=(-u "$PALISADE_REGISTRY_CREDS")
fi

code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "${CURL_AUTH[@]}" "http://$REG/v2/" || true)
case "$code" in
  200) ;;
  401)
    # A bearer-token registry answers 401 to basic credentials on /v2/: skopeo does the token flow.
    if curl -s -D - -o /dev/null --max-time 5 "http://$REG/v2/" | grep -qi '^www-authenticate: *bearer'; then
      [ -n "${PALISADE_REGISTRY_CREDS:-}" ] || die "registry $REG uses bearer tokens; set PALISADE_REGISTRY_CREDS=user:password"
    elif [ -n "${PALISADE_REGISTRY_CREDS:-}" ]; then
      die "registry $REG rejects the credentials in PALISADE_REGISTRY_CREDS"
    else
      die "registry $REG wants credentials: set PALISADE_REGISTRY_CREDS=user:password"
    fi
    ;;
  *) die "no registry answering on http://$REG/v2/ (HTTP '$code'); start one with scripts/registry.sh start $PORT" ;;
esac

log "building/locating the test image (scripts/build-test-images.sh)"
DIR=$("$HERE/build-test-images.sh" | tail -n 1)
[ -f "$DIR/COMPLETE" ] && [ -d "$DIR/oci" ] || die "build-test-images.sh did not give a complete cache dir (got '$DIR')"

TMP=$(mktemp -d "${TMPDIR:-/tmp}/palisade-push.XXXXXX")
trap 'rm -rf "$TMP"' EXIT

push() { # SRC DEST-REF
  log "skopeo copy $1 -> docker://$REG/$2"
  skopeo --insecure-policy copy --quiet --dest-tls-verify=false "${CREDS[@]}" "$1" "docker://$REG/$2" >&2 \
    || die "skopeo copy $1 -> $REG/$2 failed"
  local digest
  # skopeo inspect speaks every auth scheme (basic and bearer tokens) with the same credentials.
  local creds=()
  [ -n "${PALISADE_REGISTRY_CREDS:-}" ] && creds=(--creds "$PALISADE_REGISTRY_CREDS")
  digest=$(skopeo inspect --tls-verify=false "${creds[@]}" --format '{{.Digest}}' "docker://$REG/$2") \
    || die "pushed $REG/$2 but cannot read its manifest back"
  [ -n "$digest" ] || die "pushed $REG/$2 but the registry gave no Docker-Content-Digest"
  echo "$REG/$2@$digest"
}

push "oci:$DIR/oci:app:1.0" test/app:1.0

for v in 310:3.10 311:3.11; do
  src="$SHARED/images/alpine-${v%%:*}.tar.gz"
  [ -r "$src" ] || die "missing $src (set PALISADE_SHARED)"
  # skopeo's docker-archive transport wants an uncompressed tar.
  gunzip -c "$src" >"$TMP/alpine-${v%%:*}.tar" || die "cannot gunzip $src"
  push "docker-archive:$TMP/alpine-${v%%:*}.tar" "library/alpine:${v#*:}"
done

log "catalog: $(curl -s --max-time 5 "${CURL_AUTH[@]}" "http://$REG/v2/_catalog")"
echo "$REG"
exit 0
}
