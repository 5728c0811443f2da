#!/usr/bin/env bash
# Time-boxed fuzzing of every cargo-fuzz target (libFuzzer, nightly, AddressSanitizer).
#
#   scripts/fuzz.sh                 # every target, FUZZ_SECONDS each (default 30)
#   FUZZ_SECONDS=600 scripts/fuzz.sh  # a nightly-style run
#   scripts/fuzz.sh yaml_manifest   # only the named targets
#
# Each target starts from its checked-in seeds (fuzz/corpus/<target>/: real samples and the
# hostile regression inputs of the hardening issue) plus a scratch corpus kept under
# $FUZZ_WORK (default: target/fuzz-work, ignored by git), so new inputs never touch the tree.
# A crash, a leak, a timeout over FUZZ_TIMEOUT s or an RSS over FUZZ_RSS_MB fails the run, and
# the reproducer is left in fuzz/artifacts/<target>/.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
cd "$REPO/fuzz"

SECONDS_EACH=${FUZZ_SECONDS:-30}
TIMEOUT=${FUZZ_TIMEOUT:-10}
RSS_MB=${FUZZ_RSS_MB:-2048}
WORK=${FUZZ_WORK:-$REPO/target/fuzz-work}
TOOLCHAIN=${FUZZ_TOOLCHAIN:-nightly}

if ! command -v cargo-fuzz >/dev/null 2>&1; then
  echo "installing cargo-fuzz"
  cargo install cargo-fuzz --locked --version 0.13.2
fi
if ! rustup run "$TOOLCHAIN" rustc --version >/dev/null 2>&1; then
  echo "fuzz: the $TOOLCHAIN toolchain is missing (rustup toolchain list)" >&2
  exit 2
fi

if [ $# -gt 0 ]; then
  TARGETS=("$@")
else
  mapfile -t TARGETS < <(cargo +"$TOOLCHAIN" fuzz list)
fi
echo "fuzz: building ${#TARGETS[@]} targets"
# One build of every target (cargo fuzz build takes one target or all), then a run of each.
cargo +"$TOOLCHAIN" fuzz build -O --debug-assertions

failed=()
for t in "${TARGETS[@]}"; do
  mkdir -p "$WORK/$t" "corpus/$t" "artifacts/$t"
  echo "fuzz: $t for ${SECONDS_EACH}s ($(find "corpus/$t" -type f | wc -l) seeds)"
  if ! cargo +"$TOOLCHAIN" fuzz run -O --debug-assertions "$t" "$WORK/$t" "corpus/$t" -- \
      -max_total_time="$SECONDS_EACH" -timeout="$TIMEOUT" -rss_limit_mb="$RSS_MB" \
      -malloc_limit_mb="$RSS_MB" -max_len=1048576 -print_final_stats=1 \
      >"$WORK/$t.log" 2>&1; then
    echo "fuzz: $t FAILED; last lines of $WORK/$t.log:" >&2
    tail -n 40 "$WORK/$t.log" >&2
    failed+=("$t")
  else
    grep -E "stat::number_of_executed_units|stat::peak_rss_mb" "$WORK/$t.log" | tr '\n' ' ' || true
    echo
  fi
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: failing targets: ${failed[*]}" >&2
  exit 1
fi
echo "fuzz: all ${#TARGETS[@]} targets ran ${SECONDS_EACH}s without a failure"
