#!/usr/bin/env bash
# The quickstart's main job on the embedded default (SQLite catalog, media on local disk):
# install packages, build, ingest the sample recordings, list them.
#
#   bash deploy/demo.sh            # data goes to ./reclife-data (removed first)
set -euo pipefail
cd "$(dirname "$0")/.."
bash deploy/install.sh
cargo build --release --locked
export RECLIFE_DATA_DIR="${RECLIFE_DATA_DIR:-./reclife-data}"
export RECLIFE_CONFIG="${RECLIFE_CONFIG:-deploy/reclife.example.toml}"
export RECLIFE_NOW="${RECLIFE_NOW:-2025-06-25T03:00:00Z}"
rm -rf "$RECLIFE_DATA_DIR"
bin=target/release/reclife
echo "== ingest testdata/recordings"
$bin --quiet ingest testdata/recordings
echo "== recordings list"
$bin recordings list
