#!/usr/bin/env bash
# Flat memory of the muxer: peak RSS of one mux of a 2-minute call and of a 3-hour call, each in a
# fresh process, through the re-encode path (two 8 kHz MP3 segments each, so both decode,
# resample, mix and encode; the 3-hour one's frames never fit the fast path's limit either).
#
#   benches/media_rss.sh            # target: peak RSS of the 3-hour call <= 1.2x the 2-minute one
#
# Environment: BENCH_DIR (default $TMPDIR/reclife-media-rss; inputs are reused), PROFILE
# (bench = release, the default; test = debug, quicker to build), CARGO_TARGET_DIR.
set -euo pipefail
DIR=${BENCH_DIR:-${TMPDIR:-/tmp}/reclife-media-rss}
PROFILE=${PROFILE:-bench}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$DIR"
FF=(ffmpeg -hide_banner -loglevel error -y)

gen() { # name seconds: two voice segments of half the call each (the second overlaps by 1 s) + video
  local name=$1 secs=$2 half=$(($2 / 2))
  for k in 0 1; do
    local f="$DIR/$name-$k.mp3"
    [ -f "$f" ] || "${FF[@]}" -f lavfi -i "sine=frequency=$((300 + 200 * k)):sample_rate=8000:duration=$((half + 1))" \
      -f lavfi -i "anoisesrc=color=pink:amplitude=0.05:sample_rate=8000:duration=$((half + 1))" \
      -filter_complex amix=inputs=2 -ac 1 -c:a libmp3lame -b:a 32k "$f"
  done
  local v="$DIR/$name.mp4"
  [ -f "$v" ] || "${FF[@]}" -f lavfi -i "testsrc2=size=320x180:rate=1:duration=$((secs - 2))" \
    -c:v libx264 -preset ultrafast -g 60 -pix_fmt yuv420p "$v"
  printf '%s\t%s\t%s\t%s\n' "$name" "$v" 1000 "$DIR/$name-0.mp3:0,$DIR/$name-1.mp3:$(((half - 1) * 1000))" \
    > "$DIR/$name.tsv"
}
echo "generating inputs in $DIR (the 3-hour call takes a minute once) ..." >&2
gen short 120
gen long 10800

if [ "$PROFILE" = test ]; then
  exe=$(cd "$ROOT" && cargo test --bench media --no-run 2>&1 | sed -n 's/.*Executable .*(\(.*\)).*/\1/p' | tail -1)
else
  exe=$(cd "$ROOT" && cargo bench --bench media --no-run 2>&1 | sed -n 's/.*Executable .*(\(.*\)).*/\1/p' | tail -1)
fi
[ -x "$exe" ] || { echo "bench binary not found" >&2; exit 1; }
run() {
  MEDIA_BENCH_MANIFEST="$DIR/$1.tsv" MEDIA_BENCH_OUT="$DIR/out" MEDIA_BENCH_THREADS=1 MEDIA_BENCH_SKIP_REFERENCE=1 "$exe"
}
s=$(run short); l=$(run long)
get() { echo "$1" | sed -n "s/^$2=//p"; }
python3 - "$(get "$s" peak_rss_kib)" "$(get "$l" peak_rss_kib)" "$(get "$s" wall_s)" "$(get "$l" wall_s)" \
  "$(get "$s" failed)" "$(get "$l" failed)" "$(get "$l" media_seconds)" <<'PY'
import sys
s, l, sw, lw, sf, lf, lm = sys.argv[1:]
s, l = int(s), int(l)
print(f"2-minute call: peak RSS {s/1024:.1f} MiB, {float(sw):.2f} s (failed {sf})")
print(f"3-hour call:   peak RSS {l/1024:.1f} MiB, {float(lw):.2f} s for {float(lm)/3600:.2f} h (failed {lf})")
print(f"ratio: {l/s:.2f}x (target <= 1.2x)")
PY
