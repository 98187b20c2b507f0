#!/usr/bin/env bash
# The quickstart's main job on the embedded default (SQLite catalog, media on local disk):
# install packages, build, ingest the sample recordings, then run the lifecycle scheduler once
# with the example rules in rules/: a backup archive in the GIR layout, then a purge of exactly
# what it archived (the nonDelete recording stays), with its audit lines.
#
#   bash deploy/demo.sh            # everything goes to ./demo-run (made anew, untracked)
#
# It touches nothing but its own scratch folder ./demo-run: a real node's RECLIFE_DATA_DIR,
# RECLIFE_CONFIG or RECLIFE_CATALOG in the environment are ignored (never used, never removed),
# and ./demo-run is removed only when an earlier demo made it (it holds the demo's marker file).
#
# It installs only what building and running the demo needs (FFmpeg's development libraries,
# clang/libclang for their bindings, a C compiler, pkg-config, OpenSSL's headers, unzip): the
# test servers, browsers and Python tools stay in deploy/install.sh, which deploy/test.sh runs.
#
# Tests run it with RECLIFE_DEMO_BIN (a reclife binary already built: no install, no build) and
# RECLIFE_DEMO_DIR (another scratch folder, under the same marker rule).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${RECLIFE_DEMO_BIN:-}" ]; then
  pkgs=(libavcodec-dev libavformat-dev libavutil-dev libswresample-dev libswscale-dev pkg-config
        clang libclang-dev gcc libc6-dev libssl-dev unzip)
  missing=()
  for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
    echo "deploy/demo.sh: installing ${missing[*]}"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
  cargo build --release --locked
fi
bin="${RECLIFE_DEMO_BIN:-${CARGO_TARGET_DIR:-target}/release/reclife}"
unset RECLIFE_DATA_DIR RECLIFE_CONFIG RECLIFE_CATALOG
export RECLIFE_NOW="2025-06-25T18:00:00Z"
run="${RECLIFE_DEMO_DIR:-$PWD/demo-run}"
marker="$run/.reclife-demo-scratch"
if [ -e "$run" ]; then
  if [ ! -f "$marker" ]; then
    echo "deploy/demo.sh: $run exists but was not made by this demo (no $marker); move it away first" >&2
    exit 1
  fi
  rm -rf "$run"
fi
mkdir -p -m 700 "$run"
touch "$marker"
# The demo's own rules (deploy/demo-rules: the examples of rules/, enabled) back up into a
# private folder beside the data.
data="$run/data"
backups="$run/backups"
mkdir -p -m 700 "$data" "$backups"
export RECLIFE_DATA_DIR="$data"
export RECLIFE_CONFIG="$run/demo.toml"
cat > "$RECLIFE_CONFIG" <<EOF
contact_center_id = "cc1"
rules_dir = "$PWD/deploy/demo-rules"
default_backup_location = "file://$backups"
EOF
echo "== ingest testdata/recordings"
$bin --quiet ingest testdata/recordings
echo "== rules validate (deploy/demo-rules)"
$bin rules validate
echo "== dry run: what a purge of voice recordings 365 days or older would delete"
$bin purge --type voice --min-age 365 --include-screen --dry-run
echo "== run --once: every enabled rule of this node, now ($RECLIFE_NOW)"
$bin --quiet run --once
echo "== the backup archives: yesterday's calls (Daily backup), and recordings a year old (Backup and purge)"
unzip -l "$backups/Environment-voice-2-1-20250625180000.zip"
unzip -l "$backups/Environment-voice-0-365-20250625180000.zip"
echo "== audit lines ($RECLIFE_DATA_DIR/audit/deletions.jsonl)"
cat "$RECLIFE_DATA_DIR/audit/deletions.jsonl"
echo "== jobs"
$bin jobs list
echo "== recordings left (the nonDelete call of 2024-04-02 was archived but not purged)"
$bin recordings list
echo "== check: every invariant holds after the run"
$bin check
