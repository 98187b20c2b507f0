#!/usr/bin/env bash
# HTTP API figures on loopback (issue 11): reclife serve over the sample recordings plus N
# (default 100,000) synthetic ones, release build.
#   bash benches/api_wrk.sh [N] [SECONDS]
# Prints: requests/s for a page of 100 recordings (wrk, 16 connections); recordings/s when
# paging through all N with limit=1000 following nextUri (one client); p99 of GET one
# recording with 64 connections; latency of a 16 KiB media Range request.
# Needs wrk (Debian: apt-get install wrk) and python3.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-100000}
SECS=${2:-10}
T=${CARGO_TARGET_DIR:-target}
cargo build --release --locked --bin reclife --bench catalog_rss >/dev/null
bin="$T/release/reclife"
gen=$(ls -t "$T"/release/deps/catalog_rss-* | grep -v '\.d$' | head -1)
dir=$(mktemp -d)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$dir"; }
trap cleanup EXIT
"$bin" --data-dir "$dir/data" ingest testdata/recordings >/dev/null
"$gen" gen "$N" "$dir/data/catalog.db"
printf 'bench:{SHA}%s\n' "$(printf 'bench-pw' | openssl sha1 -binary | base64)" >"$dir/users"
printf '[api]\nusers_file = "%s"\nops_users = ["bench"]\n' "$dir/users" >"$dir/c.toml"
"$bin" --data-dir "$dir/data" --config "$dir/c.toml" serve --listen 127.0.0.1:0 >"$dir/out" 2>"$dir/err" &
pid=$!
for _ in $(seq 50); do grep -q listening "$dir/out" 2>/dev/null && break; sleep 0.1; done
url=$(sed -n 's/^listening on //p' "$dir/out")
auth="Authorization: Basic $(printf 'bench:bench-pw' | base64)"

echo "== page of 100 recordings: wrk -t2 -c16 -d${SECS}s"
wrk -t2 -c16 -d"${SECS}s" --latency -H "$auth" "$url/api/v2/recordings?limit=100" | grep -E 'Requests/sec|Latency|99%'

echo "== paging through every recording with limit=1000 (one client, following nextUri)"
python3 - "$url" <<'PY'
import base64, json, sys, time, urllib.request
url = sys.argv[1]
auth = "Basic " + base64.b64encode(b"bench:bench-pw").decode()
nxt, n, pages, t = url + "/api/v2/recordings?limit=1000", 0, 0, time.time()
while nxt:
    with urllib.request.urlopen(urllib.request.Request(nxt, headers={"Authorization": auth})) as r:
        d = json.load(r)
    n += len(d["recordings"]); pages += 1; nxt = d.get("nextUri")
s = time.time() - t
print(f"recordings={n} pages={pages} secs={s:.2f} recordings_per_s={n / s:.0f}")
PY

id=$(curl -s -u bench:bench-pw "$url/api/v2/recordings?limit=1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["recordings"][0]["id"])')
echo "== GET /api/v2/recordings/{id}: wrk -t2 -c64 -d${SECS}s"
wrk -t2 -c64 -d"${SECS}s" --latency -H "$auth" "$url/api/v2/recordings/$id" | grep -E 'Requests/sec|Latency|99%'

media=$(curl -s -u bench:bench-pw "$url/api/v2/screen-recordings?limit=1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["recordings"][0]["mediaFiles"][0]["mediaUri"])')
echo "== media Range bytes=1024-17407 (16 KiB of a screen recording): wrk -t1 -c1 -d${SECS}s (one client: latency)"
wrk -t1 -c1 -d"${SECS}s" --latency -H "$auth" -H "Range: bytes=1024-17407" "$media" | grep -E 'Requests/sec|Latency|50%|99%'
echo "== same, 16 connections"
wrk -t2 -c16 -d"${SECS}s" --latency -H "$auth" -H "Range: bytes=1024-17407" "$media" | grep -E 'Requests/sec|Latency|99%'
