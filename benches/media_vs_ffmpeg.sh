#!/usr/bin/env bash
# Muxing throughput: reclife's in-process pipeline vs. the pipeline GIR's Recording Muxer Script
# runs: `openssl cms -decrypt` of each encrypted voice file, then one ffmpeg CLI run per pair that
# places the segments and muxes (4 workers in parallel).
#
#   benches/media_vs_ffmpeg.sh [PAIRS]          # default 100 pairs
#
# Environment: BENCH_DIR (default $TMPDIR/reclife-media-bench; inputs are reused between runs),
# MIN_SECS/MAX_SECS (call length range, default 120/600), WORKERS (ffmpeg side, default 4),
# THREADS (reclife rayon pool, default: all cores), CARGO_TARGET_DIR (default target),
# GENERATE_ONLY=1 (make the inputs and stop).
#
# Each pair is realistic for GIR: a call of MIN..MAX seconds recorded as 1-3 voice segments
# (8 kHz mono MP3, 32 kbps, speech from espeak-ng), one with a short overlap; a 640x360 H.264
# screen video at 2 fps that starts 0-3 s after the call and ends 0-2 s before it (so the video
# needs padding). Voice files are encrypted as GIR stores them: a CMS enveloped-data (DER) for one
# RSA-2048 recipient, AES-256-CBC. Both sides decrypt every voice file (the baseline with the
# openssl CLI, reclife in-process with its key store, each to a temporary file as GIR's script and
# reclife's muxer do) and produce the same kind of file: the video stream copied, the segments
# placed at their offsets, LAME MP3 audio at 16 kHz / 32 kbps, moov first.
#
# Yardstick for the CPU target: one stream-copy remux + one LAME encode of the call's audio, per
# pair, measured in-process by the bench binary (same encoder settings as the pipeline).
set -euo pipefail
N=${1:-100}
DIR=${BENCH_DIR:-${TMPDIR:-/tmp}/reclife-media-bench}
MIN=${MIN_SECS:-120}
MAX=${MAX_SECS:-600}
WORKERS=${WORKERS:-4}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-target}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$DIR/in" "$DIR/ffmpeg" "$DIR/reclife" "$DIR/keys" "$DIR/plain"
FF=(ffmpeg -hide_banner -loglevel error -y)

# The recording key pair (the keys folder reclife loads; the baseline passes the key to openssl).
if [ ! -f "$DIR/keys/rec.pem" ]; then
  openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=reclife bench recording key" \
    -keyout "$DIR/keys/rec-key.pem" -out "$DIR/keys/rec.pem" 2>/dev/null
  chmod 600 "$DIR/keys/rec-key.pem"
fi

# ---- inputs ------------------------------------------------------------------------------
if [ ! -f "$DIR/in/speech.wav" ]; then
  espeak-ng -s 150 -w "$DIR/in/speech.wav" "Thank you for calling customer support, my name is Alex. \
    How can I help you today? I see, your order has not arrived yet. Let me check the tracking \
    number for you. It looks like the parcel left our warehouse on Monday and it should be \
    delivered by Thursday at the latest. Is there anything else I can help you with? Could you \
    please confirm your address and the phone number on the account? Thank you, one moment \
    please while I update the record. Alright, everything is in order now."
fi
# Eleven minutes of speech at 8 kHz to cut segments from (looping at cut time would break the
# generated files' timestamps).
if [ ! -f "$DIR/in/speech-long.wav" ]; then
  "${FF[@]}" -stream_loop 40 -i "$DIR/in/speech.wav" -t 660 -ar 8000 -ac 1 "$DIR/in/speech-long.wav"
fi

gen_pair() { # id → prints one manifest line; writes the pair's files
  local i=$1 id len nseg seglen k start dur vstart vend files=""
  id=$(printf 'p%03d' "$i")
  len=$((MIN + (i * 7919) % (MAX - MIN + 1)))
  nseg=$((1 + i % 3))
  seglen=$((len / nseg))
  for ((k = 0; k < nseg; k++)); do
    start=$((k * seglen * 1000))
    dur=$((seglen - 1))
    # Every fifth call: the next segment repeats the last 300 ms of this one (an overlap).
    if ((i % 5 == 0 && k > 0)); then start=$((start - 1300)); fi
    local f="$DIR/in/$id-$k.mp3"
    [ -f "$f" ] || "${FF[@]}" -ss $((i % 17)) -t "$dur" -i "$DIR/in/speech-long.wav" \
      -c:a libmp3lame -b:a 32k "$f"
    [ -f "$f.cms" ] || openssl cms -encrypt -binary -outform DER -aes256 -in "$f" -out "$f.cms" \
      -recip "$DIR/keys/rec.pem"
    files+="${files:+,}$f.cms:$start"
  done
  vstart=$((i % 4))
  vend=$((len - i % 3))
  local v="$DIR/in/$id.mp4"
  [ -f "$v" ] || "${FF[@]}" -f lavfi -i "testsrc2=size=640x360:rate=2:duration=$((vend - vstart))" \
    -c:v libx264 -preset ultrafast -g 20 -pix_fmt yuv420p "$v"
  printf '%s\t%s\t%s\t%s\n' "$id" "$v" $((vstart * 1000)) "$files"
}
export -f gen_pair
export DIR MIN MAX
export FF_STR="${FF[*]}"

MANIFEST="$DIR/manifest-cms-$N-$MIN-$MAX.tsv"
if [ ! -s "$MANIFEST" ]; then
  echo "generating $N pairs in $DIR (calls of $MIN-$MAX s) ..." >&2
  seq 0 $((N - 1)) | xargs -P 2 -I{} bash -c 'FF=($FF_STR); gen_pair {}' > "$MANIFEST.tmp"
  sort "$MANIFEST.tmp" > "$MANIFEST" && rm "$MANIFEST.tmp"
fi
media_in=$(du -sh "$DIR/in" | cut -f1)
if [ -n "${GENERATE_ONLY:-}" ]; then echo "inputs ready: $MANIFEST" >&2; exit 0; fi

# ---- baseline: one ffmpeg run per pair, WORKERS in parallel ---------------------------------
baseline_pair() { # manifest line → ffmpeg run
  local id v vstart voices out args=() filt="" mix="" n=0 seg path ms
  IFS=$'\t' read -r id v vstart voices <<< "$1"
  out="$DIR/ffmpeg/$id.mp4"
  local plain="$DIR/plain/$id"
  args=(-itsoffset "$(printf '%d.%03d' $((vstart / 1000)) $((vstart % 1000)))" -i "$v")
  IFS=',' read -ra segs <<< "$voices"
  for seg in "${segs[@]}"; do
    path=${seg%:*}; ms=${seg##*:}
    n=$((n + 1))
    openssl cms -decrypt -inform DER -binary -inkey "$DIR/keys/rec-key.pem" -in "$path" -out "$plain-$n.mp3"
    args+=(-i "$plain-$n.mp3")
    filt+="[$n:a]adelay=delays=$ms:all=1[a$n];"
    mix+="[a$n]"
  done
  if ((n > 1)); then
    filt+="${mix}amix=inputs=$n:duration=longest:normalize=0,aresample=16000[out]"
  else
    filt+="[a1]aresample=16000[out]"
  fi
  ffmpeg -hide_banner -loglevel error -y "${args[@]}" -filter_complex "$filt" -map 0:v -map "[out]" \
    -c:v copy -c:a libmp3lame -b:a 32k -movflags +faststart "$out"
  rm -f "$plain"-*.mp3
}
export -f baseline_pair

TIMEFORMAT='%R %U %S'
echo "baseline: openssl cms -decrypt + ffmpeg CLI, $WORKERS workers ..." >&2
rm -f "$DIR"/ffmpeg/*.mp4
base_t=$( { time (tr '\n' '\0' < "$MANIFEST" | xargs -0 -P "$WORKERS" -I{} bash -c 'baseline_pair "$1"' _ {}) ; } 2>&1 )
read -r b_wall b_user b_sys <<< "$base_t"
b_done=$(ls "$DIR"/ffmpeg/*.mp4 2>/dev/null | wc -l)

# ---- reclife ----------------------------------------------------------------------------
echo "reclife: building the bench binary (release, $CARGO_TARGET_DIR) ..." >&2
exe=$(cd "$ROOT" && cargo bench --bench media --no-run 2>&1 | sed -n 's/.*Executable .*(\(.*\)).*/\1/p' | tail -1)
[ -x "$exe" ] || { echo "bench binary not found" >&2; exit 1; }
echo "reclife: mux on a rayon pool ..." >&2
rm -f "$DIR"/reclife/*.mp4
out=$(MEDIA_BENCH_MANIFEST="$MANIFEST" MEDIA_BENCH_KEYS="$DIR/keys" MEDIA_BENCH_OUT="$DIR/reclife" MEDIA_BENCH_THREADS="${THREADS:-0}" "$exe")
echo "$out" | sed 's/^/  reclife /' >&2
get() { echo "$out" | sed -n "s/^$1=//p"; }

python3 - "$N" "$b_wall" "$b_user" "$b_sys" "$b_done" "$(get wall_s)" "$(get cpu_s)" "$(get failed)" \
  "$(get reference_cpu_per_pair_s)" "$(get media_seconds)" "$(get reencoded)" "$media_in" "$WORKERS" "$(get threads)" <<'EOF'
import sys
n, bw, bu, bs, bdone, rw, rc, rfail, ref, media, reenc, size, workers, threads = sys.argv[1:]
n = int(n); bw, bu, bs, rw, rc, ref = map(float, (bw, bu, bs, rw, rc, ref))
b_pps, r_pps = n / bw, n / rw
b_cpu, r_cpu = (bu + bs) / n, rc / n
print(f"pairs: {n} ({float(media)/3600:.1f} h of calls, inputs {size}); reclife re-encoded {reenc}, failed {rfail}; ffmpeg outputs {bdone}")
print(f"{'':28}{'wall s':>9}{'pairs/s':>9}{'CPU s/pair':>12}")
print(f"{'openssl+ffmpeg, ' + workers + ' wkrs':28}{bw:9.1f}{b_pps:9.3f}{b_cpu:12.3f}")
print(f"{'reclife, ' + threads + ' rayon threads':28}{rw:9.1f}{r_pps:9.3f}{r_cpu:12.3f}")
print(f"throughput: {r_pps / b_pps:.2f}x the baseline (target >= 3x)")
print(f"CPU per pair: {r_cpu / ref:.2f}x the yardstick of {ref:.3f} s (remux + LAME encode; target <= 1.1x)")
EOF
