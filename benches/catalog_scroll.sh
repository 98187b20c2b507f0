#!/usr/bin/env bash
# Scroll rate and RSS scaling of the SQLite catalog: generate catalogs of 10k and N (default
# 1,000,000) synthetic recordings, scroll each in a fresh process, compare peak RSS.
#   bash benches/catalog_scroll.sh [N]
# Targets (issue 2): scroll >= 200,000 recordings/s; RSS(1M) <= 1.2 x RSS(10k).
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-1000000}
cargo build --release --bench catalog_rss >/dev/null 2>&1 || true
bin=$(ls -t "${CARGO_TARGET_DIR:-target}"/release/deps/catalog_rss-* | grep -v '\.d$' | head -1)
dir=$(mktemp -d); trap 'rm -rf "$dir"' EXIT
for n in 10000 "$N"; do
  "$bin" gen "$n" "$dir/c$n.db"
done
for n in 10000 "$N"; do
  "$bin" scroll "$dir/c$n.db" | tee "$dir/s$n.txt"
done
small=$(grep -o 'peak_rss_kib=[0-9]*' "$dir/s10000.txt" | cut -d= -f2)
big=$(grep -o 'peak_rss_kib=[0-9]*' "$dir/s$N.txt" | cut -d= -f2)
awk -v b="$big" -v s="$small" -v n="$N" 'BEGIN { printf "peak RSS %s: %d KiB, 10k: %d KiB, ratio %.3f (target <= 1.2)\n", n, b, s, b / s }'
