#!/usr/bin/env bash
# Lifecycle figures against zip -0 -r, cp -r and rm -rf, plus the criterion benches.
#   bash benches/lifecycle_bench.sh [BACKUP_MIB] [PURGE_N] [PLAN_N...]
# Builds in CARGO_TARGET_DIR (default target/).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target}"
mib="${1:-512}"; purge_n="${2:-100000}"; shift 2 || true
plan_ns=("$@"); [ ${#plan_ns[@]} -gt 0 ] || plan_ns=(10000 1000000)
# A shared target folder may be rebuilt from another branch at any time: keep a private copy
# of this build's binary and check that it is ours.
cargo bench --bench lifecycle_compare --no-run
export RECLIFE_BIN="${BENCH_DIR:-/tmp}/reclife-bench-bin"
cp "$CARGO_TARGET_DIR/release/reclife" "$RECLIFE_BIN"
"$RECLIFE_BIN" purge --help >/dev/null
cargo bench --bench lifecycle_compare -- backup "$mib"
cargo bench --bench lifecycle_compare -- purge "$purge_n"
cargo bench --bench lifecycle_compare -- plan "${plan_ns[@]}"
cargo bench --bench lifecycle
