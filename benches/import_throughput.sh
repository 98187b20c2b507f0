#!/usr/bin/env bash
# Import throughput of the Genesys Cloud import source (issue 25's closing note): the release
# binary against the emulator of tests/genesys_support with 50 ms of API latency, 100 and then
# 1,000 conversations of 3 minutes (240 KB of media each) in one run. Prints conversations/s
# (target: at least 20) and the peak RSS of each run, and their ratio (target: at most 1.2).
#
#   bash benches/import_throughput.sh            # RECLIFE_BENCH_SIZES=100,1000 by default
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --bin reclife
RECLIFE_BENCH_BIN="$PWD/target/release/reclife" \
  cargo test --features failpoints --test suite_transfer import_genesys::import_throughput_benchmark -- --ignored --nocapture \
  2>&1 | grep -E '^(import benchmark|peak RSS)|panicked|FAILED|error'
