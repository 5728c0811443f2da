#!/usr/bin/env bash
# The whole test suite, on a fresh Debian 12 machine: installs what the tests need,
# builds (or reuses) the cached test images, starts two local registries (plain and
# basic-auth) on 127.0.0.1, pushes the images, runs `cargo test`, and stops the registries.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
cd "$REPO"

"$HERE/install-deps.sh"

export PALISADE_TESTDATA_DIR
PALISADE_TESTDATA_DIR=$("$HERE/build-test-images.sh" | tail -1)
echo "test images: $PALISADE_TESTDATA_DIR"

PLAIN=${PALISADE_TEST_PORT:-15000}
AUTH=$((PLAIN + 1))
TOKEN=$((PLAIN + 2))
cleanup() {
  "$HERE/registry.sh" stop "$PLAIN" >/dev/null 2>&1 || true
  "$HERE/registry.sh" stop "$AUTH" >/dev/null 2>&1 || true
  "$HERE/registry.sh" stop "$TOKEN" >/dev/null 2>&1 || true
}
trap cleanup EXIT
cleanup
# A throwaway PostgreSQL on 127.0.0.1 (scripts/postgres.sh): the store and server tests run on
# it as well as on SQLite.
PG_PORT=$((PLAIN + 3))
PG_DIR=$(mktemp -d /tmp/palisade-pg.XXXXXX)
cleanup_pg() { "$HERE/postgres.sh" stop "$PG_PORT" "$PG_DIR" >/dev/null 2>&1 || true; cleanup; }
trap cleanup_pg EXIT
export PALISADE_TEST_DATABASE_URL
PALISADE_TEST_DATABASE_URL=$("$HERE/postgres.sh" start "$PG_PORT" "$PG_DIR" | tail -1)
echo "test database: $PALISADE_TEST_DATABASE_URL"
"$HERE/registry.sh" start "$PLAIN"
"$HERE/registry.sh" start-auth "$AUTH"
"$HERE/registry.sh" start-token "$TOKEN"
"$HERE/push-test-images.sh" "$PLAIN" >/dev/null
PALISADE_REGISTRY_CREDS=palisade:s3cret "$HERE/push-test-images.sh" "$AUTH" >/dev/null
PALISADE_REGISTRY_CREDS=palisade:s3cret "$HERE/push-test-images.sh" "$TOKEN" >/dev/null
export PALISADE_TEST_REGISTRY=127.0.0.1:$PLAIN PALISADE_TEST_REGISTRY_AUTH=127.0.0.1:$AUTH PALISADE_TEST_REGISTRY_TOKEN=127.0.0.1:$TOKEN

# Formatting and lints are part of the suite (rustfmt.toml, [workspace.lints], clippy.toml):
# a diff or any clippy warning fails the run.
cargo fmt --all --check
cargo clippy --workspace --all-targets --locked --features palisade/sensor -- -D warnings

cargo test --workspace --locked --no-fail-fast --features palisade/sensor "$@"

# Time-boxed fuzzing of every cargo-fuzz target from its checked-in seeds (scripts/fuzz.sh;
# PALISADE_FUZZ_SECONDS=0 skips it, a longer value makes a nightly-style run).
if [ "${PALISADE_FUZZ_SECONDS:-20}" != 0 ]; then
  FUZZ_SECONDS=${PALISADE_FUZZ_SECONDS:-20} "$HERE/fuzz.sh"
fi
