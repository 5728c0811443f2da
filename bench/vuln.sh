#!/usr/bin/env bash
# Benchmarks of vulnerability assessment, side by side in one run:
#  1. building the database from ../shared/vulndata (time and size);
#  2. `palisade scan image` vs `palisade sbom` on the three-layer test image (matching overhead),
#     and, where a Trivy binary is present, `trivy image --format cyclonedx` on the same input;
#  3. matching alone: 10,000 packages on one core (cargo bench -p palisade-vulndb --bench matching).
#   RUNS=5 bench/vuln.sh
set -euo pipefail
. "$(dirname "$0")/lib.sh"
median() { sort -g | awk '{a[NR]=$1} END{print a[int((NR+1)/2)]}'; }
wall() { # wall seconds of one run of "$@"
  /usr/bin/time -f %e -o "$OUT/t" "$@" >/dev/null 2>"$OUT/err" || { cat "$OUT/err" >&2; return 1; }
  cat "$OUT/t"
}
times() { local name=$1; shift; for i in $(seq "$RUNS"); do wall "$@"; done | median; }

echo "== database build from $SHARED/vulndata"
t=$(times build "$PAL" -q db build --db "$OUT/v.db" --from "$SHARED/vulndata")
echo "db build: ${t}s, size $(stat -c %s "$OUT/v.db") bytes"

echo "== scan vs sbom (three-layer test image)"
for input in "docker-archive:$DATA/app.docker.tar" "oci:$DATA/oci:app:1.0"; do
  kind=${input%%:*}
  s=$(times sbom "$PAL" -q sbom "$input" -f cyclonedx -o "$OUT/s.json")
  v=$(times scan "$PAL" -q scan image "$input" --db "$OUT/v.db" -f json -o "$OUT/v.json")
  line="$kind: sbom ${s}s, scan ${v}s, overhead $(awk -v a="$v" -v b="$s" 'BEGIN{printf "%+.0f%%", (a/b-1)*100}')"
  if [ -n "$TRIVY" ] && [ -x "$TRIVY" ]; then
    tin=$DATA/app.docker.tar; [ "$kind" = oci ] && tin=$DATA/oci
    t=$(times trivy bash -c "rm -rf '$OUT/tc'; exec '$TRIVY' image --quiet --cache-dir '$OUT/tc' --offline-scan --skip-files '**/*.jar' --format cyclonedx --input '$tin' -o '$OUT/t.json'")
    line="$line; trivy cyclonedx ${t}s; scan/trivy $(awk -v a="$v" -v b="$t" 'BEGIN{printf "%.2fx", a/b}')"
  fi
  echo "$line"
done
echo "findings: $(python3 -c "import json;d=json.load(open('$OUT/v.json'));print(len(d['findings']), d['summary'])")"

echo "== matching alone (one core)"
taskset -c 0 cargo bench -q -p palisade-vulndb --bench matching 2>/dev/null | grep -E "^(database|open|match)"
