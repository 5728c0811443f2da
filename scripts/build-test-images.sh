#!/usr/bin/env bash
# Build Palisade's test container image from real packages, and cache it.
#
# Produces, in ${PALISADE_TESTDATA:-/var/cache/palisade-testdata}/<sha256 of this script>/:
#   oci/              OCI image layout, tag "app:1.0", three layers (see below)
#   app.docker.tar    the same image as a docker-archive, tagged test/app:1.0
#   expected.json     facts about the image, read off the real tools (for tests to assert)
#   expected.txt      the same facts, human-readable
#   facts/            raw fact files (dpkg lists, lockfiles, `go version -m`, tar listings, ...)
#   logs/             logs of the build steps
#   COMPLETE          marker: the directory is complete
#
# Layers:
#   1. debootstrap --variant=minbase bookworm
#   2. Debian packages (libjackson2-databind-java ruby-rack python3-yaml python3), old pip packages
#      in /usr/local/lib/python3.11/dist-packages, old npm packages in /app, and deletions of
#      layer-1 files (whiteouts)
#   3. a Rust binary built with cargo-auditable (+ /usr/src/rustapp/Cargo.lock), a Go binary with
#      module build info (built offline from Debian's golang-golang-x-text-dev), and removal of
#      Django (installed in layer 2) -> whiteouts
#
# Progress goes to stderr; the last line of stdout is the cache directory:
#   dir=$(scripts/build-test-images.sh | tail -1)
#
# Environment:
#   PALISADE_TESTDATA       cache root (default /var/cache/palisade-testdata)
#   PALISADE_DEBIAN_MIRROR  Debian mirror (default: the machine's apt source, else deb.debian.org)
#   PALISADE_KEEP_WORK=1    keep the work directory (bundle, build trees) for debugging
#   PALISADE_FORCE=1        rebuild even if the cache directory is complete
#   PALISADE_TESTDATA_KEEP  how many complete builds (script versions) to keep (default 3)
set -Eeuo pipefail
# The whole script is one { ... } block: bash parses it completely before running it, so editing
# (or checking out) this file while it runs cannot make a running instance execute a mix.
{

SCRIPT_PATH=$(readlink -f "${BASH_SOURCE[0]}")
SCRIPT_NAME=$(basename "$SCRIPT_PATH")
START_TS=$(date +%s)

SUITE=bookworm
PY_VER=3.11
IMAGE_TAG=app:1.0
DOCKER_REF=test/app:1.0
APT_PACKAGES=(libjackson2-databind-java ruby-rack python3-yaml python3)
PIP_WHEELS=(requests==2.19.1 urllib3==1.24.1 Jinja2==2.10 Django==3.2.0 cryptography==3.3.2)
PIP_SDIST=(PyYAML==5.3)
NPM_PACKAGES=(lodash@4.17.15 minimist@1.2.0 express@4.16.0 axios@0.21.0 jsonwebtoken@8.5.0)
# Layer-2 deletions: the files (not the directories) of these packages' docs, and one whole directory.
DOC_FILES_OF=(bash sed grep)
WHOLE_DIR_REMOVED=usr/share/doc/gzip
PYSITE=usr/local/lib/python${PY_VER}/dist-packages

CURRENT_STEP="startup"
log() { printf '[%s +%ss] %s\n' "$SCRIPT_NAME" "$(($(date +%s) - START_TS))" "$*" >&2; }
step() { CURRENT_STEP="$*"; log "==> $*"; }
die() { log "ERROR: $*"; exit 1; }
on_err() {
  local rc=$? line=$1 cmd=$2
  log "ERROR: step '$CURRENT_STEP' failed (exit $rc) at line $line: $cmd"
  exit "$rc"
}
trap 'on_err $LINENO "$BASH_COMMAND"' ERR

# run LOGNAME CMD...: run a command with its output in logs/LOGNAME.log; on failure show the tail.
run() {
  local name=$1; shift
  local logf="$LOGDIR/$name.log"
  printf '+ %s\n' "$*" >>"$logf"
  local shown="$*"
  shown=${shown//"$WORK"/\$WORK}
  shown=${shown//"$STAGE"/\$OUT}
  log "  \$ $shown  [logs/$name.log]"
  local rc=0
  "$@" >>"$logf" 2>&1 || rc=$?
  if [ "$rc" -ne 0 ]; then
    log "ERROR: step '$CURRENT_STEP': command failed (exit $rc): $*"
    log "---- last 40 lines of $logf ----"
    tail -n 40 "$logf" >&2 || true
    log "---- end of $logf ----"
    return "$rc"
  fi
}

[ "$(id -u)" -eq 0 ] || die "must run as root (debootstrap, chroot and umoci unpack/repack need it)"

SCRIPT_HASH=$(sha256sum "$SCRIPT_PATH" | cut -d' ' -f1)
CACHE_ROOT=${PALISADE_TESTDATA:-/var/cache/palisade-testdata}
OUT="$CACHE_ROOT/$SCRIPT_HASH"
MARKER=COMPLETE
case "$CACHE_ROOT" in *:*) die "PALISADE_TESTDATA must not contain ':' (umoci/skopeo image references): $CACHE_ROOT" ;; esac

if [ -f "$OUT/$MARKER" ] && [ "${PALISADE_FORCE:-0}" != 1 ]; then
  log "cache hit: $OUT is complete (script hash $SCRIPT_HASH); nothing to do"
  echo "$OUT"
  exit 0
fi

mkdir -p "$CACHE_ROOT"
exec 9>"$CACHE_ROOT/.lock"
if ! flock -n 9; then
  log "another build holds $CACHE_ROOT/.lock; waiting for it"
  flock 9
fi
if [ -f "$OUT/$MARKER" ] && [ "${PALISADE_FORCE:-0}" != 1 ]; then
  log "cache hit after waiting: $OUT is complete"
  echo "$OUT"
  exit 0
fi

BUILD_START_TS=$(date +%s) # after the lock: build_seconds excludes waiting for another build
log "building test image into $OUT (script hash $SCRIPT_HASH)"
# Leftovers of interrupted builds (never delete through a mount: a killed debootstrap or chroot
# step can leave /proc or /dev mounted in there).
for old in "$CACHE_ROOT"/*.partial.* "$CACHE_ROOT"/.work-*; do
  [ -e "$old" ] || continue
  { grep -F " $old/" /proc/mounts || true; } | awk '{print $2}' | sort -r |
    while read -r m; do umount "$m" || umount -l "$m" || true; done
  if grep -qF " $old/" /proc/mounts; then
    log "WARNING: $old still has mounts; leaving it"
  else
    log "removing leftover $old"
    rm -rf "$old"
  fi
done
STAGE="$OUT.partial.$$"
WORK="$CACHE_ROOT/.work-$SCRIPT_HASH-$$"
TOOLS="$CACHE_ROOT/tools"
mkdir -p "$STAGE" "$WORK" "$TOOLS"
LOGDIR="$STAGE/logs"
FACTS="$STAGE/facts"
mkdir -p "$LOGDIR" "$FACTS"
log "staging output in \$OUT=$STAGE (renamed to $OUT when complete)"
log "work dir \$WORK=$WORK; cached tools in $TOOLS"
BUNDLE="$WORK/bundle"
ROOTFS="$BUNDLE/rootfs"
LAYOUT="$STAGE/oci"
IMAGE="$LAYOUT:$IMAGE_TAG"

MOUNTS=()
unmount_all() {
  local i
  for ((i = ${#MOUNTS[@]} - 1; i >= 0; i--)); do
    if mountpoint -q "${MOUNTS[$i]}"; then
      umount "${MOUNTS[$i]}" || umount -l "${MOUNTS[$i]}" || log "WARNING: could not unmount ${MOUNTS[$i]}"
    fi
  done
  MOUNTS=()
}
cleanup() {
  local rc=$?
  unmount_all
  if grep -qF " $WORK/" /proc/mounts; then
    log "WARNING: something is still mounted under $WORK; not deleting it"
  elif [ "${PALISADE_KEEP_WORK:-0}" = 1 ]; then
    log "keeping work directory $WORK"
  else
    rm -rf "$WORK"
  fi
  if [ "$rc" -ne 0 ]; then
    log "FAILED (step '$CURRENT_STEP'); partial output left in $STAGE (logs in $LOGDIR)"
  fi
}
trap cleanup EXIT

# ---------------------------------------------------------------------------------------------
step "checking host tools"
APT_UPDATED=0
apt_install() {
  if [ "$APT_UPDATED" = 0 ]; then
    run apt apt-get update || log "WARNING: apt-get update reported errors; trying the install anyway"
    APT_UPDATED=1
  fi
  run apt env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@" \
    || die "apt-get install $* failed"
}
need=()
command -v debootstrap >/dev/null || need+=(debootstrap)
command -v umoci >/dev/null || need+=(umoci)
command -v skopeo >/dev/null || need+=(skopeo)
command -v jq >/dev/null || need+=(jq)
command -v go >/dev/null || need+=(golang-go)
[ -d /usr/share/gocode/src/golang.org/x/text ] || need+=(golang-golang-x-text-dev)
command -v objcopy >/dev/null || need+=(binutils)
command -v flock >/dev/null || need+=(util-linux)
command -v npm >/dev/null || need+=(nodejs npm)
command -v cc >/dev/null || need+=(gcc libc6-dev)
[ -r /usr/share/keyrings/debian-archive-keyring.gpg ] || need+=(debian-archive-keyring)
if [ ${#need[@]} -gt 0 ]; then
  log "installing missing host packages: ${need[*]}"
  apt_install "${need[@]}"
fi
command -v cargo >/dev/null || die "cargo not found (the Rust toolchain must be installed with rustup)"

# A CPython 3.11 with pip (the image's /usr/local/lib/python3.11 is for Debian 12's python3.11).
pick_python() {
  local c p
  for c in python3.11 python3 /usr/bin/python3.11; do
    p=$(command -v "$c" 2>/dev/null) || continue
    "$p" -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else 1)' 2>/dev/null || continue
    "$p" -m pip --version >/dev/null 2>&1 || continue
    echo "$p"
    return 0
  done
  return 1
}
PY=$(pick_python) || { apt_install python3-pip python3-setuptools python3-wheel; PY=$(pick_python) || die "no python3.11 with pip found"; }
log "python for pip: $PY ($("$PY" --version 2>&1)); $("$PY" -m pip --version)"

# Debian mirror: the one this machine's apt uses, else deb.debian.org.
detect_mirror() {
  local u
  u=$(grep -hsE '^[[:space:]]*URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null |
    awk '{for (i = 2; i <= NF; i++) print $i}' | grep -E '/debian/?$' | head -n1 || true)
  if [ -z "$u" ]; then
    u=$(grep -hsE "^[[:space:]]*deb[[:space:]]" /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
      grep -vE '\[' | awk '{print $2}' | grep -E '/debian/?$' | head -n1 || true)
  fi
  echo "${u:-http://deb.debian.org/debian}"
}
MIRROR=${PALISADE_DEBIAN_MIRROR:-$(detect_mirror)}
MIRROR=${MIRROR%/}
log "Debian mirror: $MIRROR"

# ---------------------------------------------------------------------------------------------
# chroot helpers: /proc, a small /dev (tmpfs + bind-mounted host device nodes), no daemons started.
chroot_setup() { # [--no-daemons]: also install a policy-rc.d that stops services from starting
  mkdir -p "$ROOTFS/proc" "$ROOTFS/dev"
  mount -t proc proc "$ROOTFS/proc"
  MOUNTS+=("$ROOTFS/proc")
  mount -t tmpfs -o mode=0755,size=16m devtmp "$ROOTFS/dev"
  MOUNTS+=("$ROOTFS/dev")
  local n
  for n in null zero full random urandom tty; do
    touch "$ROOTFS/dev/$n"
    mount --bind "/dev/$n" "$ROOTFS/dev/$n"
    MOUNTS+=("$ROOTFS/dev/$n")
  done
  ln -s /proc/self/fd "$ROOTFS/dev/fd"
  mkdir -p "$ROOTFS/dev/pts" "$ROOTFS/dev/shm"
  if [ "${1:-}" = --no-daemons ]; then
    printf '#!/bin/sh\nexit 101\n' >"$ROOTFS/usr/sbin/policy-rc.d"
    chmod 755 "$ROOTFS/usr/sbin/policy-rc.d"
  fi
}
chroot_teardown() {
  unmount_all
  if [ -e "$ROOTFS/usr/sbin/policy-rc.d" ]; then rm -f "$ROOTFS/usr/sbin/policy-rc.d"; fi
}
in_chroot() {
  chroot "$ROOTFS" /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    HOME=/root LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive "$@"
}
dpkg_list() { dpkg-query --admindir="$ROOTFS/var/lib/dpkg" -W -f '${Package} ${Version} ${Architecture}\n' | LC_ALL=C sort; }

layer_blobs() { # digests of the layers of $IMAGE_TAG, in order
  local mdigest
  mdigest=$(jq -r --arg t "$IMAGE_TAG" '.manifests[] | select(.annotations["org.opencontainers.image.ref.name"] == $t) | .digest' "$LAYOUT/index.json")
  [ -n "$mdigest" ] || die "tag $IMAGE_TAG not found in $LAYOUT/index.json"
  jq -r '.layers[].digest' "$LAYOUT/blobs/sha256/${mdigest#sha256:}"
}

# ---------------------------------------------------------------------------------------------
step "layer 1: umoci init/new/unpack + debootstrap --variant=minbase $SUITE"
run umoci umoci init --layout "$LAYOUT"
run umoci umoci new --image "$IMAGE"
run umoci umoci config --image "$IMAGE" --architecture=amd64 --os=linux --author="palisade build-test-images.sh" \
  --history.comment "image config"
run umoci umoci unpack --image "$IMAGE" "$BUNDLE"
run debootstrap debootstrap --variant=minbase --arch=amd64 \
  --keyring=/usr/share/keyrings/debian-archive-keyring.gpg "$SUITE" "$ROOTFS" "$MIRROR" \
  || die "debootstrap failed"
# Container images have an empty /dev; keep what debootstrap made out of the layer.
! grep -qF " $ROOTFS/" /proc/mounts || die "debootstrap left mounts under $ROOTFS: $(grep -F " $ROOTFS/" /proc/mounts)"
find "$ROOTFS/dev" -mindepth 1 -delete
# The mirror the image's apt uses (debootstrap wrote it from \$MIRROR); make it explicit.
echo "deb $MIRROR $SUITE main" >"$ROOTFS/etc/apt/sources.list"
# No host-specific files in the image.
rm -f "$ROOTFS/etc/hostname"
: >"$ROOTFS/etc/resolv.conf"
rm -rf "$ROOTFS/var/lib/apt/lists/"* "$ROOTFS/var/cache/apt/"*.bin "$ROOTFS/var/cache/apt/archives/"*.deb
dpkg_list >"$FACTS/dpkg-layer1.txt"
log "layer 1 has $(wc -l <"$FACTS/dpkg-layer1.txt") dpkg packages"
[ -d "$ROOTFS/$WHOLE_DIR_REMOVED" ] || die "$WHOLE_DIR_REMOVED missing from the debootstrap rootfs"
for p in "${DOC_FILES_OF[@]}"; do
  [ -n "$(find "$ROOTFS/usr/share/doc/$p" -mindepth 1 -maxdepth 1 2>/dev/null)" ] || die "usr/share/doc/$p empty or missing in layer 1"
done
run umoci umoci repack --refresh-bundle --image "$IMAGE" \
  --history.created_by "debootstrap --variant=minbase $SUITE $MIRROR" --history.comment "layer 1: Debian $SUITE minbase" "$BUNDLE"

# ---------------------------------------------------------------------------------------------
step "layer 2: apt-get install ${APT_PACKAGES[*]} (chroot)"
cp /etc/resolv.conf "$ROOTFS/etc/resolv.conf"
chroot_setup --no-daemons
run apt-chroot in_chroot apt-get -o Acquire::Retries=3 update || die "apt-get update in the chroot failed"
run apt-chroot in_chroot apt-get -o Acquire::Retries=3 install -y --no-install-recommends "${APT_PACKAGES[@]}" \
  || die "apt-get install in the chroot failed"
run apt-chroot in_chroot apt-get clean
chroot_teardown
rm -rf "$ROOTFS/var/lib/apt/lists/"* "$ROOTFS/var/cache/apt/"*.bin
: >"$ROOTFS/etc/resolv.conf"
PY_IN_IMAGE=$(chroot "$ROOTFS" /usr/bin/python3 -B -c 'import sys; print("%d.%d" % sys.version_info[:2])') \
  || die "python3 does not run in the image"
[ "$PY_IN_IMAGE" = "$PY_VER" ] || die "image python is $PY_IN_IMAGE, expected $PY_VER"

step "layer 2: pip install --no-deps --target /$PYSITE"
mkdir -p "$ROOTFS/$PYSITE"
export PIP_ROOT_USER_ACTION=ignore
PIPARGS=(--disable-pip-version-check --no-input --no-deps --no-compile --target "$ROOTFS/$PYSITE")
run pip "$PY" -m pip install "${PIPARGS[@]}" --only-binary=:all: "${PIP_WHEELS[@]}" \
  || die "pip install of the wheels failed"
PYYAML_BUILD=""
if run pip "$PY" -m pip install "${PIPARGS[@]}" --no-binary=:all: "${PIP_SDIST[@]}"; then
  PYYAML_BUILD="sdist, isolated build"
else
  log "building ${PIP_SDIST[*]} with build isolation failed; retrying with --no-build-isolation"
  run pip "$PY" -m pip install --disable-pip-version-check setuptools wheel || true
  run pip "$PY" -m pip install "${PIPARGS[@]}" --no-binary=:all: --no-build-isolation "${PIP_SDIST[@]}" \
    || die "pip install of ${PIP_SDIST[*]} failed (isolated and --no-build-isolation)"
  PYYAML_BUILD="sdist, --no-build-isolation"
fi
log "PyYAML: $PYYAML_BUILD"
# pip --target puts console scripts in <target>/bin; they would not be on PATH (and their shebang
# is the host's python): drop them.
rm -rf "${ROOTFS:?}/$PYSITE/bin"
find "$ROOTFS/$PYSITE" -name '__pycache__' -type d -prune -exec rm -rf {} +

step "layer 2: npm install into /app"
mkdir -p "$ROOTFS/app"
{
  printf '{\n  "name": "palisade-test-app",\n  "version": "1.0.0",\n  "private": true,\n  "description": "Palisade test image: old npm packages",\n  "dependencies": {\n'
  n=${#NPM_PACKAGES[@]}
  for ((i = 0; i < n; i++)); do
    spec=${NPM_PACKAGES[$i]}
    sep=","
    [ $((i + 1)) -eq "$n" ] && sep=""
    printf '    "%s": "%s"%s\n' "${spec%@*}" "${spec##*@}" "$sep"
  done
  printf '  }\n}\n'
} >"$ROOTFS/app/package.json"
jq . "$ROOTFS/app/package.json" >/dev/null || die "generated package.json is not valid JSON"
run npm npm install --prefix "$ROOTFS/app" --no-audit --no-fund --ignore-scripts --no-update-notifier \
  || die "npm install failed"
{ [ -f "$ROOTFS/app/package-lock.json" ] && [ -d "$ROOTFS/app/node_modules" ]; } || die "npm left no package-lock.json/node_modules"

step "layer 2: deleting layer-1 files (whiteouts)"
DELETED_L2=()
for p in "${DOC_FILES_OF[@]}"; do
  while IFS= read -r f; do DELETED_L2+=("/${f#"$ROOTFS"/}"); done < <(find "$ROOTFS/usr/share/doc/$p" -mindepth 1 -maxdepth 1 | LC_ALL=C sort)
  find "$ROOTFS/usr/share/doc/$p" -mindepth 1 -delete
done
DELETED_L2+=("/$WHOLE_DIR_REMOVED")
rm -rf "${ROOTFS:?}/$WHOLE_DIR_REMOVED"
printf '%s\n' "${DELETED_L2[@]}" >"$FACTS/deleted-layer2.txt"
log "deleted ${#DELETED_L2[@]} paths of layer 1"

dpkg_list >"$FACTS/dpkg-layer2.txt"
(cd "$ROOTFS/$PYSITE" && ls -d -- *.dist-info | LC_ALL=C sort) >"$FACTS/pip-dist-info-layer2.txt"
run umoci umoci repack --refresh-bundle --image "$IMAGE" \
  --history.created_by "apt-get install ${APT_PACKAGES[*]}; pip install ${PIP_WHEELS[*]} ${PIP_SDIST[*]}; npm install ${NPM_PACKAGES[*]}; rm docs" \
  --history.comment "layer 2: packages" "$BUNDLE"

# ---------------------------------------------------------------------------------------------
step "layer 3: Rust binary with cargo-auditable"
export PATH="$TOOLS/bin:$PATH"
if ! command -v cargo-auditable >/dev/null; then
  log "installing cargo-auditable into $TOOLS (cached across builds)"
  run cargo-install cargo install cargo-auditable --locked --root "$TOOLS" || die "cargo install cargo-auditable failed"
fi
RUSTSRC="$WORK/rustapp"
mkdir -p "$RUSTSRC/src"
cat >"$RUSTSRC/Cargo.toml" <<'EOF'
[package]
name = "rustapp"
version = "0.1.0"
edition = "2021"
publish = false
description = "Palisade test image: a binary with old dependencies that have RustSec advisories"

[dependencies]
# RUSTSEC-2021-0003 (smallvec < 1.6.1), RUSTSEC-2020-0071 (time < 0.2.23)
smallvec = "=1.6.0"
time = "=0.1.43"

[profile.release]
strip = false
EOF
cat >"$RUSTSRC/src/main.rs" <<'EOF'
use smallvec::SmallVec;

fn main() {
    let mut v: SmallVec<[u32; 4]> = SmallVec::new();
    v.extend([1, 2, 3]);
    let t = time::now_utc();
    println!("rustapp: {} items, year {}", v.len(), t.tm_year + 1900);
}
EOF
(
  cd "$RUSTSRC"
  export CARGO_TARGET_DIR="$WORK/rust-target"
  run cargo cargo generate-lockfile && run cargo cargo auditable build --release --locked
) || die "cargo auditable build failed"
RUSTBIN="$WORK/rust-target/release/rustapp"
[ -x "$RUSTBIN" ] || die "no rustapp binary"
objcopy --dump-section .dep-v0="$WORK/rustapp.dep-v0" "$RUSTBIN" 2>>"$LOGDIR/cargo.log" \
  || die "rustapp has no .dep-v0 section (cargo-auditable did not embed its data)"
"$PY" -c 'import sys, zlib, json; d = json.loads(zlib.decompress(open(sys.argv[1], "rb").read())); json.dump(d, sys.stdout, indent=1, sort_keys=True)' \
  "$WORK/rustapp.dep-v0" >"$FACTS/rustapp-auditable.json"
mkdir -p "$ROOTFS/usr/local/bin" "$ROOTFS/usr/src/rustapp/src"
install -m 0755 "$RUSTBIN" "$ROOTFS/usr/local/bin/rustapp"
cp "$RUSTSRC/Cargo.toml" "$RUSTSRC/Cargo.lock" "$ROOTFS/usr/src/rustapp/"
cp "$RUSTSRC/src/main.rs" "$ROOTFS/usr/src/rustapp/src/"
cp "$RUSTSRC/Cargo.lock" "$FACTS/rustapp-Cargo.lock"

step "layer 3: Go binary with module build info (offline, vendored Debian golang.org/x/text)"
XTEXT_SRC=/usr/share/gocode/src/golang.org/x/text
XTEXT_DEB=$(dpkg-query -W -f '${Version}' golang-golang-x-text-dev) || die "golang-golang-x-text-dev not installed"
XTEXT_VER=v$(echo "$XTEXT_DEB" | sed -E 's/^[0-9]+://; s/-[^-]*$//; s/[+~].*$//')
echo "$XTEXT_VER" | grep -qE '^v[0-9]+\.[0-9]+\.[0-9]+$' || die "cannot derive a module version from Debian version $XTEXT_DEB"
XTEXT_GO=$(awk '$1 == "go" {print $2; exit}' "$XTEXT_SRC/go.mod" 2>/dev/null || true)
GOSRC="$WORK/goapp"
mkdir -p "$GOSRC/vendor/golang.org/x"
cp -rL "$XTEXT_SRC" "$GOSRC/vendor/golang.org/x/text"
cat >"$GOSRC/go.mod" <<EOF
module example.com/palisade/goapp

go 1.19

require golang.org/x/text $XTEXT_VER
EOF
cat >"$GOSRC/main.go" <<'EOF'
package main

import (
	"fmt"

	"golang.org/x/text/cases"
	"golang.org/x/text/language"
)

func main() {
	tag := language.Make("en-US")
	fmt.Println("goapp:", cases.Title(language.English).String("hello world"), tag.String())
}
EOF
{
  echo "# golang.org/x/text $XTEXT_VER"
  if [ -n "$XTEXT_GO" ]; then echo "## explicit; go $XTEXT_GO"; else echo "## explicit"; fi
  (cd "$GOSRC/vendor" && find golang.org/x/text \( -name testdata -o -name '_*' -o -name '.*' \) -prune -o \
    -type f -name '*.go' ! -name '*_test.go' -printf '%h\n' | LC_ALL=C sort -u)
} >"$GOSRC/vendor/modules.txt"
(
  cd "$GOSRC"
  export GOFLAGS=-mod=vendor GOPROXY=off GOSUMDB=off GONOSUMDB='*' GO111MODULE=on CGO_ENABLED=0 \
    GOPATH="$WORK/gopath" GOCACHE="$WORK/gocache" GOOS=linux GOARCH=amd64
  run go go version && run go go build -trimpath -buildvcs=false -o "$WORK/goapp.bin" .
) || die "go build failed"
go version -m "$WORK/goapp.bin" | sed "1s|^$WORK/goapp.bin:|/usr/local/bin/goapp:|" >"$FACTS/goapp-version-m.txt" \
  || die "go version -m failed"
grep -qE "^[[:space:]]*dep[[:space:]]+golang.org/x/text[[:space:]]+$XTEXT_VER" "$FACTS/goapp-version-m.txt" \
  || die "go version -m does not show golang.org/x/text $XTEXT_VER: $(cat "$FACTS/goapp-version-m.txt")"
install -m 0755 "$WORK/goapp.bin" "$ROOTFS/usr/local/bin/goapp"

step "layer 3: removing Django (installed in layer 2)"
DJANGO_DI=$(cd "$ROOTFS/$PYSITE" && ls -d Django-*.dist-info) || die "no Django dist-info in layer 2"
DELETED_L3=("/$PYSITE/django" "/$PYSITE/$DJANGO_DI")
rm -rf "${ROOTFS:?}/$PYSITE/django" "${ROOTFS:?}/$PYSITE/$DJANGO_DI"
printf '%s\n' "${DELETED_L3[@]}" >"$FACTS/deleted-layer3.txt"

step "smoke-testing the final rootfs (chroot)"
chroot_setup
SMOKE_RUST=$(in_chroot /usr/local/bin/rustapp) || die "rustapp does not run in the image"
SMOKE_GO=$(in_chroot /usr/local/bin/goapp) || die "goapp does not run in the image"
SMOKE_PY=$(in_chroot python3 -B -c 'import yaml, urllib3; print("yaml", yaml.__version__, yaml.__file__); print("urllib3", urllib3.__version__)') \
  || die "python3 cannot import the pip-installed yaml/urllib3"
SMOKE_RUBY=$(in_chroot ruby -e 'require "rack"; puts "rack #{Rack.release}"') || die "ruby cannot load rack"
chroot_teardown
printf '%s\n' "$SMOKE_RUST" "$SMOKE_GO" "$SMOKE_PY" "$SMOKE_RUBY" | tee "$FACTS/smoke.txt" >&2

dpkg_list >"$FACTS/dpkg-final.txt"
(cd "$ROOTFS/$PYSITE" && ls -d -- *.dist-info | LC_ALL=C sort) >"$FACTS/pip-dist-info-final.txt"
cp "$ROOTFS/app/package-lock.json" "$FACTS/package-lock.json"
cp "$ROOTFS/app/package.json" "$FACTS/package.json"
run umoci umoci repack --refresh-bundle --image "$IMAGE" \
  --history.created_by "cargo auditable build (rustapp); go build -mod=vendor (goapp); rm -rf django" \
  --history.comment "layer 3: binaries" "$BUNDLE"

step "image config, gc"
run umoci umoci config --image "$IMAGE" --no-history \
  --config.cmd=/usr/local/bin/rustapp --config.workingdir=/app \
  --config.env=PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  --config.label=org.opencontainers.image.title=palisade-test-app
run umoci umoci gc --layout "$LAYOUT"
run umoci umoci stat --image "$IMAGE"

step "docker-archive via skopeo"
rm -f "$STAGE/app.docker.tar"
run skopeo skopeo --insecure-policy copy "oci:$LAYOUT:$IMAGE_TAG" "docker-archive:$STAGE/app.docker.tar:$DOCKER_REF" \
  || die "skopeo copy to docker-archive failed"
skopeo --insecure-policy inspect --raw "oci:$LAYOUT:$IMAGE_TAG" >"$FACTS/manifest.json"
skopeo --insecure-policy inspect --config "oci:$LAYOUT:$IMAGE_TAG" >"$FACTS/config.json"
tar -xOf "$STAGE/app.docker.tar" manifest.json >"$FACTS/docker-archive-manifest.json" \
  || die "app.docker.tar has no manifest.json"

step "collecting facts (expected.json, expected.txt)"
mapfile -t LAYERS < <(layer_blobs)
[ "${#LAYERS[@]}" -eq 3 ] || die "expected 3 layers, found ${#LAYERS[@]}: ${LAYERS[*]}"
for i in 0 1 2; do
  blob="$LAYOUT/blobs/sha256/${LAYERS[$i]#sha256:}"
  tar -tzf "$blob" >"$FACTS/layer$((i + 1))-files.txt" || die "cannot list layer blob $blob"
  grep -E '(^|/)\.wh\.' "$FACTS/layer$((i + 1))-files.txt" >"$FACTS/layer$((i + 1))-whiteouts.txt" || true
done
[ -s "$FACTS/layer2-whiteouts.txt" ] || die "layer 2 has no whiteout entries"
[ -s "$FACTS/layer3-whiteouts.txt" ] || die "layer 3 has no whiteout entries"

END_TS=$(date +%s)
export ROOTFS FACTS LAYOUT PYSITE MIRROR SUITE IMAGE_TAG DOCKER_REF SCRIPT_HASH PYYAML_BUILD XTEXT_DEB XTEXT_VER
export BUILD_SECONDS=$((END_TS - BUILD_START_TS)) OUT_DIR="$OUT"
export LAYER_DIGESTS="${LAYERS[*]}" APT_REQ="${APT_PACKAGES[*]}"
"$PY" - "$STAGE/expected.json" "$STAGE/expected.txt" <<'PYEOF' || die "collecting facts failed"
import json, os, re, sys, zipfile

E = os.environ
rootfs, facts, layout, pysite = E["ROOTFS"], E["FACTS"], E["LAYOUT"], E["PYSITE"]

def read(name):
    with open(os.path.join(facts, name)) as f:
        return f.read()

def lines(name):
    return [l for l in read(name).splitlines() if l.strip()]

def dpkg(name):
    out = []
    for l in lines(name):
        pkg, ver, arch = l.split(" ")
        out.append({"package": pkg, "version": ver, "architecture": arch})
    return out

def metadata(path):
    """Name/Version of a dist-info/egg-info directory (or egg-info file)."""
    for cand in ("METADATA", "PKG-INFO", ""):
        p = os.path.join(path, cand) if cand else path
        if os.path.isfile(p):
            meta = {}
            with open(p, encoding="utf-8", errors="replace") as f:
                for line in f:
                    if not line.strip():
                        break
                    k, _, v = line.partition(":")
                    if k in ("Name", "Version") and k.lower() not in meta:
                        meta[k.lower()] = v.strip()
            return meta
    return {}

def python_dists(dirpath):
    res = []
    full = os.path.join(rootfs, dirpath)
    if not os.path.isdir(full):
        return res
    for e in sorted(os.listdir(full)):
        if e.endswith(".dist-info") or e.endswith(".egg-info"):
            m = metadata(os.path.join(full, e))
            res.append({"name": m.get("name"), "version": m.get("version"), "path": "/" + dirpath + "/" + e})
    return res

layer_digests = E["LAYER_DIGESTS"].split()
manifest = json.loads(read("manifest.json"))
config = json.loads(read("config.json"))
layers = []
for i, d in enumerate(layer_digests, 1):
    m = manifest["layers"][i - 1]
    assert m["digest"] == d
    layers.append({
        "index": i,
        "digest": d,
        "size": m["size"],
        "media_type": m["mediaType"],
        "diff_id": config["rootfs"]["diff_ids"][i - 1],
        "entries": len(lines("layer%d-files.txt" % i)),
        "whiteouts": lines("layer%d-whiteouts.txt" % i),
    })

lock = json.loads(read("package-lock.json"))
npm = []
for k, v in sorted(lock.get("packages", {}).items()):
    if not k:
        continue
    name = v.get("name") or k.rsplit("node_modules/", 1)[-1]
    npm.append({"name": name, "version": v.get("version"), "path": "/app/" + k})
npm_direct = {k: v for k, v in json.loads(read("package.json"))["dependencies"].items()}

l1 = {p["package"]: p for p in dpkg("dpkg-layer1.txt")}
l2 = dpkg("dpkg-layer2.txt")
final = dpkg("dpkg-final.txt")

java = []
for base, _, files in os.walk(os.path.join(rootfs, "usr/share/java")):
    for fn in sorted(files):
        p = os.path.join(base, fn)
        if not fn.endswith(".jar") or os.path.islink(p):
            continue
        with zipfile.ZipFile(p) as z:
            for n in z.namelist():
                if n.endswith("/pom.properties"):
                    props = dict(
                        l.split("=", 1) for l in z.read(n).decode("utf-8", "replace").splitlines()
                        if "=" in l and not l.startswith("#"))
                    java.append({"jar": "/" + os.path.relpath(p, rootfs), "group_id": props.get("groupId"),
                                 "artifact_id": props.get("artifactId"), "version": props.get("version")})
gemspecs = []
for d in ("usr/share/rubygems-integration/all/specifications", "usr/lib/ruby/gems"):
    for base, _, files in os.walk(os.path.join(rootfs, d)):
        for fn in sorted(files):
            if fn.endswith(".gemspec"):
                gemspecs.append("/" + os.path.relpath(os.path.join(base, fn), rootfs))

gov = read("goapp-version-m.txt")
go_deps = []
for l in gov.splitlines():
    parts = l.split()
    if parts and parts[0] in ("dep", "=>"):
        go_deps.append({"path": parts[1], "version": parts[2] if len(parts) > 2 else None})
go_main = next((l.split()[1] for l in gov.splitlines() if l.split()[:1] == ["path"]), None)
go_version = gov.splitlines()[0].split(":", 1)[1].strip()

aud = json.loads(read("rustapp-auditable.json"))
cargo_lock = []
cur = {}
for l in read("rustapp-Cargo.lock").splitlines():
    m = re.match(r'^(name|version|source) = "(.*)"$', l)
    if l.strip() == "[[package]]":
        if cur:
            cargo_lock.append(cur)
        cur = {}
    elif m:
        cur[m.group(1)] = m.group(2)
if cur:
    cargo_lock.append(cur)

out = {
    "schema": 1,
    "script_sha256": E["SCRIPT_HASH"],
    "dir": E["OUT_DIR"],
    "build_seconds": int(E["BUILD_SECONDS"]),
    "debian_suite": E["SUITE"],
    "debian_mirror": E["MIRROR"],
    "oci_layout": "oci",
    "oci_tag": E["IMAGE_TAG"],
    "docker_archive": "app.docker.tar",
    "docker_archive_repo_tags": json.loads(read("docker-archive-manifest.json"))[0].get("RepoTags"),
    "manifest_media_type": manifest.get("mediaType"),
    "config_digest": manifest["config"]["digest"],
    "architecture": config.get("architecture"),
    "os": config.get("os"),
    "layers": layers,
    "deleted": {"layer2": lines("deleted-layer2.txt"), "layer3": lines("deleted-layer3.txt")},
    "dpkg": {
        "layer1": list(l1.values()),
        "added_in_layer2": [p for p in l2 if p["package"] not in l1],
        "final": final,
        "requested_in_layer2": os.environ.get("APT_REQ", "").split(),
    },
    "python": {
        "site_packages": "/" + pysite,
        "pyyaml_build": E["PYYAML_BUILD"],
        "dist_info_layer2": ["/" + pysite + "/" + d for d in lines("pip-dist-info-layer2.txt")],
        "final_local": python_dists(pysite),
        "final_debian": python_dists("usr/lib/python3/dist-packages"),
    },
    "npm": {
        "project": "/app",
        "lockfile": "/app/package-lock.json",
        "lockfile_version": lock.get("lockfileVersion"),
        "direct": npm_direct,
        "packages": npm,
    },
    "java": java,
    "ruby_gemspecs": gemspecs,
    "go": {
        "binary": "/usr/local/bin/goapp",
        "go_version": go_version,
        "main": go_main,
        "deps": go_deps,
        "debian_x_text_version": E["XTEXT_DEB"],
        "version_m": gov,
    },
    "rust": {
        "binary": "/usr/local/bin/rustapp",
        "cargo_lock": "/usr/src/rustapp/Cargo.lock",
        "lock_packages": cargo_lock,
        "auditable": aud,
    },
    "smoke": lines("smoke.txt"),
}
with open(sys.argv[1], "w") as f:
    json.dump(out, f, indent=2, sort_keys=False)
    f.write("\n")

t = []
t.append("# Palisade test image facts (generated by scripts/build-test-images.sh; do not edit)")
t.append("dir %s" % out["dir"])
t.append("build_seconds %d" % out["build_seconds"])
t.append("oci %s:%s  docker-archive %s %s" % (out["oci_layout"], out["oci_tag"], out["docker_archive"], out["docker_archive_repo_tags"]))
t.append("config %s %s/%s" % (out["config_digest"], out["os"], out["architecture"]))
for l in layers:
    t.append("layer %d %s size=%d entries=%d whiteouts=%d" % (l["index"], l["digest"], l["size"], l["entries"], len(l["whiteouts"])))
    for w in l["whiteouts"]:
        t.append("  whiteout %s" % w)
t.append("\n## dpkg (final rootfs)")
t += ["%s %s" % (p["package"], p["version"]) for p in final]
t.append("\n## dpkg added in layer 2")
t += ["%s %s" % (p["package"], p["version"]) for p in out["dpkg"]["added_in_layer2"]]
t.append("\n## python (final)")
t += ["%s %s %s" % (p["name"], p["version"], p["path"]) for p in out["python"]["final_local"] + out["python"]["final_debian"]]
t.append("\n## python dist-info in layer 2")
t += out["python"]["dist_info_layer2"]
t.append("\n## npm (/app/package-lock.json)")
t += ["%s %s %s" % (p["name"], p["version"], p["path"]) for p in npm]
t.append("\n## java")
t += ["%s:%s %s %s" % (j["group_id"], j["artifact_id"], j["version"], j["jar"]) for j in java]
t.append("\n## ruby gemspecs")
t += gemspecs
t.append("\n## go version -m /usr/local/bin/goapp")
t.append(gov.rstrip())
t.append("\n## rust (cargo-auditable data of /usr/local/bin/rustapp)")
t += ["%s %s %s" % (p.get("name"), p.get("version"), p.get("source", "")) for p in aud.get("packages", [])]
t.append("\n## deleted")
t += ["layer2 %s" % p for p in out["deleted"]["layer2"]] + ["layer3 %s" % p for p in out["deleted"]["layer3"]]
with open(sys.argv[2], "w") as f:
    f.write("\n".join(t) + "\n")
PYEOF

step "finishing"
date -u +%Y-%m-%dT%H:%M:%SZ >"$STAGE/$MARKER"
rm -rf "$OUT"
mv "$STAGE" "$OUT"
# Keep only the newest few complete builds (older script versions).
KEEP=${PALISADE_TESTDATA_KEEP:-3}
find "$CACHE_ROOT" -mindepth 2 -maxdepth 2 -name "$MARKER" -printf '%T@ %h\n' | sort -rn | tail -n +$((KEEP + 1)) |
  while read -r _ old; do
    case "$(basename "$old")" in
      "$SCRIPT_HASH") ;;
      [0-9a-f]*) log "pruning old build $old (keeping the newest $KEEP)"; rm -rf "$old" ;;
    esac
  done
log "done: built in $(($(date +%s) - BUILD_START_TS))s: $OUT"
for i in 0 1 2; do
  log "  layer $((i + 1)): ${LAYERS[$i]} $(stat -c %s "$OUT/oci/blobs/sha256/${LAYERS[$i]#sha256:}") bytes, $(wc -l <"$OUT/facts/layer$((i + 1))-whiteouts.txt") whiteouts"
done
echo "$OUT"
exit 0
}
