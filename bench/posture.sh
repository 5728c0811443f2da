#!/usr/bin/env bash
# Posture benchmarks, side by side in one run:
#  1. ../shared/k8s-corpus (486 real objects): `palisade posture` vs Checkov (`checkov -d DIR
#     --framework kubernetes`, when installed: pip install checkov): wall time, peak RSS, and an
#     agreement table on the checks both have (resources flagged per check; both / ours only /
#     Checkov only).
#  2. A generated 50,000-object cluster dump (bench/gen_cluster_dump.py): wall time, peak RSS.
#   RUNS=3 bench/posture.sh
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
RUNS=${RUNS:-3}
cd "$REPO"
cargo build --release -q -p palisade
PAL="$REPO/target/release/palisade"
CORPUS=$(realpath "${PALISADE_SHARED:-$REPO/../shared}/k8s-corpus")
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
measure() { # prints "median_wall max_rss_kb" over RUNS runs of "$@"
  local walls=() rss=0 r
  for i in $(seq "$RUNS"); do
    /usr/bin/time -v -o "$OUT/time" "$@" >/dev/null 2>"$OUT/err" || true
    walls+=("$(awk -F': ' '/Elapsed \(wall clock\)/{n=split($2,a,":"); s=0; for(i=1;i<=n;i++) s=s*60+a[i]; print s}' "$OUT/time")")
    r=$(awk -F': ' '/Maximum resident set size/{print $2}' "$OUT/time"); [ "$r" -gt "$rss" ] && rss=$r
  done
  echo "$(printf '%s\n' "${walls[@]}" | sort -g | awk '{a[NR]=$1} END{print a[int((NR+1)/2)]}') $rss"
}
echo "== k8s-corpus ($CORPUS)"
read -r pw pr < <(measure "$PAL" -q posture -f "$CORPUS" --format json -o "$OUT/pal.json")
echo "palisade posture: ${pw}s, $((pr / 1024)) MB"
"$PAL" posture --list-checks --format json > "$OUT/checks.json"
if command -v checkov >/dev/null; then
  # Run outside any git checkout: inside one, Checkov 3 reports nothing for -d paths elsewhere.
  read -r cw cr < <(measure bash -c "cd '$OUT' && exec checkov -d '$CORPUS' --framework kubernetes -o json --quiet --output-file-path '$OUT/ck'")
  echo "checkov:          ${cw}s, $((cr / 1024)) MB"
  awk -v a="$cw" -v b="$pw" -v c="$cr" -v d="$pr" 'BEGIN{printf "palisade is %.0fx faster, %.2fx the memory\n", a/b, d/c}'
  python3 - "$OUT/pal.json" "$OUT/ck/results_json.json" "$OUT/checks.json" <<'PY'
import json, sys, collections
pal, ck, checks = (json.load(open(p)) for p in sys.argv[1:4])
ck = ck if isinstance(ck, list) else [ck]
def res_ck(r):  # Checkov resource id: "Kind.namespace.name"
    kind, _, rest = r.partition(".")
    ns, _, name = rest.partition(".")
    return (kind, name) if kind else (r, "")
flag_ck = collections.defaultdict(set)
for run in ck:
    for f in run["results"]["failed_checks"]:
        flag_ck[f["check_id"]].add(res_ck(f["resource"]))
flag_pal = collections.defaultdict(set)
for f in pal["findings"]:
    flag_pal[f["check_id"]].add((f["object"]["kind"], f["object"]["name"]))
print(f"\n{'check':<14} {'checkov id':<12} {'checkov':>8} {'ours':>6} {'both':>6} {'ck-only':>8} {'ours-only':>9}  title")
for c in checks:
    for cid in c["references"].get("checkov", []):
        a, b = flag_ck.get(cid, set()), flag_pal.get(c["id"], set())
        if not a and not b:
            continue
        print(f"{c['id']:<14} {cid:<12} {len(a):>8} {len(b):>6} {len(a & b):>6} {len(a - b):>8} {len(b - a):>9}  {c['title']}")
PY
else
  echo "(checkov not installed: pip install checkov)"
fi
echo "== generated 50,000-object dump"
python3 "$HERE/gen_cluster_dump.py" "$OUT/dump.json" 50000
echo "dump: $(stat -c %s "$OUT/dump.json") bytes"
read -r gw gr < <(measure "$PAL" -q posture -f "$OUT/dump.json" --format json -o "$OUT/dump-report.json")
echo "palisade posture (50k objects): ${gw}s, $((gr / 1024)) MB, $(python3 -c "import json;d=json.load(open('$OUT/dump-report.json'));print(d['objects'],'objects,',len(d['findings']),'findings')")"
