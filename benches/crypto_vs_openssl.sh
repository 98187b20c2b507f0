#!/usr/bin/env bash
# reclife decrypt vs `openssl cms -decrypt` on the same envelopes (sealed by openssl):
#   10 files x 50 MB (throughput) and 200 files x 50 KB (per-file overhead).
# reclife runs once on one core (RAYON_NUM_THREADS=1, per-core rate) and once on all cores;
# openssl runs one process per file, as users script it today.
#
#   bash benches/crypto_vs_openssl.sh [BIG_COUNT BIG_MB SMALL_COUNT SMALL_KB]
#   RECLIFE_BIN=target/debug/reclife bash benches/crypto_vs_openssl.sh 2 50 50 50   # quick look
set -euo pipefail
cd "$(dirname "$0")/.."
BIG_N=${1:-10} BIG_MB=${2:-50} SMALL_N=${3:-200} SMALL_KB=${4:-50}
# RECLIFE_BIN=path skips the release build (e.g. a binary built elsewhere).
BIN=${RECLIFE_BIN:-}
if [ -z "$BIN" ]; then
  cargo build --release --quiet --bin reclife
  BIN=${CARGO_TARGET_DIR:-target}/release/reclife
fi
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
mkdir -p "$T/keys" "$T/big" "$T/small"
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$T/keys/bench-key.pem" -out "$T/keys/bench-cert.pem" \
  -days 2 -subj "/CN=bench" 2>/dev/null

make_set() { # dir count bytes
  for i in $(seq 1 "$2"); do
    head -c "$3" /dev/urandom > "$T/plain"
    openssl cms -encrypt -binary -outform DER -aes-256-cbc -in "$T/plain" -out "$1/f$i.bin" "$T/keys/bench-cert.pem"
  done
  rm -f "$T/plain"
}
make_set "$T/big" "$BIG_N" $((BIG_MB * 1024 * 1024))
make_set "$T/small" "$SMALL_N" $((SMALL_KB * 1024))

now() { date +%s.%N; }
report() { # label seconds files bytes
  awk -v l="$1" -v s="$2" -v n="$3" -v b="$4" \
    'BEGIN { printf "%-34s %8.3f s  %9.1f MB/s  %8.2f ms/file\n", l, s, b / 1048576 / s, s * 1000 / n }'
}
run_openssl() { # dir count bytes
  mkdir -p "$T/out"; local t0; t0=$(now)
  for f in "$1"/*.bin; do
    openssl cms -decrypt -inform DER -binary -inkey "$T/keys/bench-key.pem" -in "$f" -out "$T/out/$(basename "$f")"
  done
  report "openssl cms -decrypt ($(basename "$1"))" "$(awk -v a="$t0" -v b="$(now)" 'BEGIN{print b-a}')" "$2" "$3"
  rm -rf "$T/out"
}
run_reclife() { # dir count bytes threads
  mkdir -p "$T/out"; local t0; t0=$(now)
  RAYON_NUM_THREADS=$4 "$BIN" --quiet decrypt --key-dir "$T/keys" "$1"/*.bin --out "$T/out" > /dev/null
  report "reclife decrypt -j$4 ($(basename "$1"))" "$(awk -v a="$t0" -v b="$(now)" 'BEGIN{print b-a}')" "$2" "$3"
  for f in "$1"/f1.bin; do # spot check: same bytes as openssl
    cmp -s "$T/out/f1.bin" <(openssl cms -decrypt -inform DER -binary -inkey "$T/keys/bench-key.pem" -in "$f")
  done
  rm -rf "$T/out"
}
echo "cores: $(nproc); files sealed by openssl $(openssl version | cut -d' ' -f2), aes-256-cbc, RSA 2048"
BIG_BYTES=$((BIG_N * BIG_MB * 1024 * 1024)); SMALL_BYTES=$((SMALL_N * SMALL_KB * 1024))
run_openssl "$T/big" "$BIG_N" "$BIG_BYTES"
run_reclife "$T/big" "$BIG_N" "$BIG_BYTES" 1
run_reclife "$T/big" "$BIG_N" "$BIG_BYTES" "$(nproc)"
run_openssl "$T/small" "$SMALL_N" "$SMALL_BYTES"
run_reclife "$T/small" "$SMALL_N" "$SMALL_BYTES" 1
run_reclife "$T/small" "$SMALL_N" "$SMALL_BYTES" "$(nproc)"
