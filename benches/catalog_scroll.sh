#!/usr/bin/env bash
# Scroll rate, upsert rate and RSS scaling of both catalogs side by side: generate catalogs of
# 10k and N (default 1,000,000) synthetic recordings in SQLite and, when RECLIFE_TEST_PG names
# a server (`eval "$(bash deploy/servers.sh start pg)"`), in PostgreSQL; scroll each in a fresh
# process; compare peak RSS.
#   bash benches/catalog_scroll.sh [N]
#   PROFILE=debug bash benches/catalog_scroll.sh 200000   # without a release build (say so)
# Targets: scroll >= 200,000 recordings/s on SQLite (issue 2), >= 100,000/s on PostgreSQL
# (issue 13); RSS(1M) <= 1.2 x RSS(10k) on both.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-1000000}
PROFILE=${PROFILE:-release}
if [ "$PROFILE" = release ]; then
  cargo build --release --bench catalog_rss >/dev/null 2>&1 || true
else
  cargo build --bench catalog_rss >/dev/null 2>&1 || true
fi
bin=$(ls -t "${CARGO_TARGET_DIR:-target}/$PROFILE"/deps/catalog_rss-* | grep -v '\.d$' | head -1)
dir=$(mktemp -d); trap 'rm -rf "$dir"' EXIT
specs() { # n
  echo "sqlite:$dir/c$1.db"
  [ -n "${RECLIFE_TEST_PG:-}" ] && echo "pg:${RECLIFE_TEST_PG}#bench_c$1_$$"
  true
}
path() { case $1 in sqlite:*) echo "${1#sqlite:}" ;; pg:*) echo "${1#pg:}" ;; esac; }
for n in 10000 "$N"; do
  for s in $(specs "$n"); do "$bin" gen "$n" "$(path "$s")"; done
done
for n in 10000 "$N"; do
  for s in $(specs "$n"); do "$bin" scroll "$(path "$s")" | tee "$dir/s$n.${s%%:*}.txt"; done
done
for b in sqlite pg; do
  [ -f "$dir/s10000.$b.txt" ] || continue
  small=$(grep -o 'peak_rss_kib=[0-9]*' "$dir/s10000.$b.txt" | cut -d= -f2)
  big=$(grep -o 'peak_rss_kib=[0-9]*' "$dir/s$N.$b.txt" | cut -d= -f2)
  awk -v b="$big" -v s="$small" -v n="$N" -v k="$b" \
    'BEGIN { printf "%s: peak RSS %s: %d KiB, 10k: %d KiB, ratio %.3f (target <= 1.2)\n", k, n, b, s, b / s }'
done
if [ -n "${RECLIFE_TEST_PG:-}" ]; then
  for n in 10000 "$N"; do "$bin" drop "${RECLIFE_TEST_PG}#bench_c${n}_$$"; done
fi
