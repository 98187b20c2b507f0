#!/usr/bin/env bash
# Runs every fuzz target (or those named) for a bounded time (default 120 s each), starting from
# the kept corpus fuzz/corpus/<target> and writing what it finds to fuzz/work/<target>. A crash
# leaves its input in fuzz/artifacts/<target>/; turn each into a unit test. To refresh the kept
# corpus: `cargo +nightly fuzz cmin <target> work/<target>`, then copy a size-spread sample of at
# most 150 inputs of 64 KiB or less into corpus/<target> (tests/hostile_corpus.rs runs each one
# through the binary in every test run). Needs the nightly toolchain and cargo-fuzz (installed
# here when missing).
#
#   bash fuzz/run.sh [SECONDS [TARGET...]]
set -euo pipefail
cd "$(dirname "$0")"
secs="${1:-120}"
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
rustup toolchain list | grep -q nightly || { echo "fuzz/run.sh: needs the nightly toolchain (rustup)"; exit 1; }
targets=("${@:2}")
[ ${#targets[@]} -gt 0 ] || targets=(envelope metadata rule config zip_ingest media_bytes api_query)
# Build first, so a build failure is reported as one, not as a crash.
for t in "${targets[@]}"; do
  cargo +nightly fuzz build "$t" || { echo "fuzz/run.sh: building $t failed"; exit 2; }
done
status=0
for t in "${targets[@]}"; do
  mkdir -p "corpus/$t" "work/$t"
  echo "== $t for ${secs}s"
  # New inputs go to work/<target> (not in git); corpus/<target> is the kept corpus it starts from.
  if ! cargo +nightly fuzz run "$t" "work/$t" "corpus/$t" -- -max_total_time="$secs" -rss_limit_mb=2048 -max_len=1048576; then
    echo "fuzz/run.sh: $t found a crash (see fuzz/artifacts/$t/)"
    status=1
  fi
done
exit $status
