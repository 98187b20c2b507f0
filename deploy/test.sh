#!/usr/bin/env bash
# The whole test suite, from a fresh machine: install packages, check formatting and lints,
# start the test servers on loopback, run every test.
#
#   bash deploy/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."
bash deploy/install.sh
cargo fmt --check
cargo clippy --all-targets --all-features --locked -- -D warnings
# Licences, bans and sources (deny.toml). The advisory check needs the RustSec database from
# github.com, which this environment cannot reach; run `cargo deny check advisories` where it can.
command -v cargo-deny >/dev/null || cargo install --locked --quiet cargo-deny
cargo deny check licenses bans sources
# Test servers (SeaweedFS S3, Apache WebDAV) for the backends that use them. The storage tests
# fail rather than skip when their servers are missing, so this run cannot pass without them.
if [ -x deploy/servers.sh ]; then
  eval "$(bash deploy/servers.sh start)"
  trap 'bash deploy/servers.sh stop' EXIT
  export RECLIFE_REQUIRE_SERVERS=1
fi
# Benches are compiled (and linted) by clippy above; they run with `cargo bench`.
# The crash and concurrency tests need the test-only failpoints; the library's own tests also
# run without them, proving that a build without the feature ignores RECLIFE_FAILPOINT.
cargo test --locked --features failpoints
cargo test --locked --lib
