#!/usr/bin/env bash
# Server benchmarks, SQLite and PostgreSQL side by side in one run (issue 13):
#  1. ingest: `palisade simulate fleet` uploads IMAGES image SBOMs of PACKAGES packages each,
#     with their findings (~3 % of packages vulnerable), from CONCURRENCY senders in batches
#     of 20: images per second and upload latency (target >= 200 images/s);
#  2. re-assessment: POST /api/v1/admin/db/update, then the time until the db-update job has
#     re-matched every stored SBOM against the database built from ../shared/vulndata
#     (target: 10,000 SBOMs in <= 60 s);
#  3. list and filter latency at that size (QUERIES requests: images, findings by severity and
#     KEV, workloads of a cluster, an image's findings, alerts; target p99 <= 50 ms);
#  4. the server's peak RSS (VmHWM; target <= 300 MB);
#  5. console pages (bench/console_pages.py: signed in like a browser, every page PAGE_REPS
#     times; target p95 <= 100 ms per page, first page <= 300 KB with its CSS and icon).
# The fleet has CLUSTERS clusters x WORKLOADS workloads.
#   IMAGES=10000 CLUSTERS=50 WORKLOADS=1000 VULNERABLE=33 bench/server.sh   # the issue's size (1 M findings)
#   BACKENDS=sqlite bench/server.sh                              # one backend
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
IMAGES=${IMAGES:-2000}
PACKAGES=${PACKAGES:-300}
CLUSTERS=${CLUSTERS:-10}
WORKLOADS=${WORKLOADS:-200}
CONCURRENCY=${CONCURRENCY:-4}
QUERIES=${QUERIES:-600}
PAGE_REPS=${PAGE_REPS:-40}
VULNERABLE=${VULNERABLE:-3}  # percent of packages with a finding; 33 gives 1 M findings at 10,000 images
BACKENDS=${BACKENDS:-sqlite postgres}
PORT=${PORT:-18700}
cd "$REPO"
cargo build --release -q -p palisade
PAL="$REPO/target/release/palisade"
FEEDS=$(realpath "${PALISADE_SHARED:-$REPO/../shared}/vulndata")
OUT=$(mktemp -d)
chmod 755 "$OUT" # PostgreSQL runs as the postgres user and must reach its data directory
PG_DIR="$OUT/pg"
cleanup() {
  [ -n "${SERVER_PID:-}" ] && kill "$SERVER_PID" 2>/dev/null || true
  "$REPO/scripts/postgres.sh" stop $((PORT + 1)) "$PG_DIR" >/dev/null 2>&1 || true
  rm -rf "$OUT"
}
trap cleanup EXIT

# one database for both runs, built once (the server copies it at start)
"$PAL" -q db build --db "$OUT/vuln.db" --from "$FEEDS" --allow-feed-errors --allow-shrink >/dev/null 2>&1

api() { curl -fsS -H "Authorization: Bearer $TOKEN" "$@"; }
results=()
pages=()
for backend in $BACKENDS; do
  data="$OUT/data-$backend"
  mkdir -p "$data"
  cp "$OUT/vuln.db" "$data/vuln.db"
  args=(server --data-dir "$data" --listen "127.0.0.1:$PORT" --db-from "$FEEDS" --db-allow-feed-errors --db-allow-shrink)
  if [ "$backend" = postgres ]; then
    url=$("$REPO/scripts/postgres.sh" start $((PORT + 1)) "$PG_DIR" | tail -1)
    args+=(--database-url "$url")
  fi
  PALISADE_LOG=warn "$PAL" "${args[@]}" >"$OUT/server-$backend.log" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 300); do curl -fsS "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
  TOKEN=$(cat "$data/admin.token")
  echo "== $backend: ingest $IMAGES images x $PACKAGES packages, $CLUSTERS clusters x $WORKLOADS workloads"
  "$PAL" simulate fleet --server "http://127.0.0.1:$PORT" --token "$TOKEN" --images "$IMAGES" \
    --packages "$PACKAGES" --clusters "$CLUSTERS" --workloads "$WORKLOADS" --concurrency "$CONCURRENCY" \
    --alerts 100 --queries "$QUERIES" --vulnerable-percent "$VULNERABLE" > "$OUT/fleet-$backend.json"
  # console pages at the full size (before the re-assessment, which resolves the simulated findings)
  python3 "$HERE/console_pages.py" "http://127.0.0.1:$PORT" "$TOKEN" "$PAGE_REPS" > "$OUT/pages-$backend.json"
  pages+=("$(python3 - "$OUT/pages-$backend.json" "$backend" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
worst = max(r["pages"].items(), key=lambda kv: kv[1]["p95_ms"])
print(f"{sys.argv[2]:9} {r['p95_ms']:8.1f} {worst[1]['p95_ms']:9.1f}  {worst[0][:34]:34} {r['overview_cold_ms']:10.1f} {r['first_page_bytes'] // 1024:8}")
PY
)")
  gen_before=$(api "http://127.0.0.1:$PORT/api/v1/admin/jobs" | python3 -c 'import json,sys; print([j for j in json.load(sys.stdin)["items"] if j["name"]=="db-update"][0]["generation"])')
  t0=$(date +%s.%N)
  api -X POST "http://127.0.0.1:$PORT/api/v1/admin/db/update" >/dev/null
  while :; do
    done_now=$(api "http://127.0.0.1:$PORT/api/v1/admin/jobs" | python3 -c "
import json,sys
j=[j for j in json.load(sys.stdin)['items'] if j['name']=='db-update'][0]
print(1 if j['generation']>$gen_before and j['state']!='running' else 0)")
    [ "$done_now" = 1 ] && break
    sleep 0.2
  done
  t1=$(date +%s.%N)
  metrics=$(curl -fsS "http://127.0.0.1:$PORT/metrics")
  reassessed=$(awk '/^palisade_server_images_reassessed_total/{print $2}' <<<"$metrics")
  build_s=$(awk '/^palisade_server_last_db_build_seconds/{print $2}' <<<"$metrics")
  match_s=$(awk '/^palisade_server_last_reassessment_seconds/{print $2}' <<<"$metrics")
  rss=$(awk '/VmHWM/{print $2}' "/proc/$SERVER_PID/status")
  kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true; SERVER_PID=
  [ "$backend" = postgres ] && "$REPO/scripts/postgres.sh" stop $((PORT + 1)) "$PG_DIR" >/dev/null 2>&1
  results+=("$(python3 - "$OUT/fleet-$backend.json" "$backend" "$t0" "$t1" "$reassessed" "$rss" "$build_s" "$match_s" <<'PY'
import json, sys
r = json.load(open(sys.argv[1])); b = sys.argv[2]
secs = float(sys.argv[4]) - float(sys.argv[3])
print(f"{b:9} {r['findings']:9} {r['images_per_second']:9.0f} {r['upload']['p99_ms']:10.0f} {sys.argv[5]:>10} {float(sys.argv[7]):8.1f} {float(sys.argv[8]):9.1f} {secs:8.1f} {r['queries']['p50_ms']:8.1f} {r['queries']['p99_ms']:8.1f} {int(sys.argv[6])//1024:7}")
PY
)")
done
echo
echo "backend    findings  images/s upload-p99ms reassessed  build-s  rematch-s  total-s  q-p50ms  q-p99ms  RSS-MB"
printf '%s\n' "${results[@]}"
echo "(targets: >= 200 images/s; 10,000 SBOMs re-assessed in <= 60 s; list p99 <= 50 ms; RSS <= 300 MB)"
echo
echo "console   p95-ms  worst-p95  worst page                         first-/-ms  first-KB"
printf '%s\n' "${pages[@]}"
echo "(targets: every page p95 <= 100 ms; first page <= 300 KB; per-page figures in the JSON: PAGES_JSON=1)"
if [ -n "${PAGES_JSON:-}" ]; then cat "$OUT"/pages-*.json; fi
