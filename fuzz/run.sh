#!/usr/bin/env bash
# Runs every fuzz target for a bounded time (default 120 s each) and keeps the corpora under
# fuzz/corpus/<target>. A crash leaves its input in fuzz/artifacts/<target>/; turn each into a
# unit test. Needs the nightly toolchain and cargo-fuzz (installed here when missing).
#
#   bash fuzz/run.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")"
secs="${1:-120}"
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
rustup toolchain list | grep -q nightly || { echo "fuzz/run.sh: needs the nightly toolchain (rustup)"; exit 1; }
status=0
for t in envelope metadata rule config zip_ingest; do
  mkdir -p "corpus/$t"
  echo "== $t for ${secs}s"
  if ! cargo +nightly fuzz run "$t" "corpus/$t" -- -max_total_time="$secs" -rss_limit_mb=2048 -max_len=1048576; then
    echo "fuzz/run.sh: $t found a crash (see fuzz/artifacts/$t/)"
    status=1
  fi
done
exit $status
