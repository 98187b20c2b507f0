#!/usr/bin/env bash
# Installs what reclife needs to build and test, idempotently: FFmpeg development libraries
# and CLI, clang/libclang (bindgen), pkg-config, mold, openssl, unzip, zip, Python 3 (zipfile),
# Apache with mod_dav (WebDAV tests), and PostgreSQL (catalog tests). Safe to run again: it only
# installs what is missing.
set -euo pipefail
PKGS=(libavcodec-dev libavformat-dev libavutil-dev libswresample-dev libswscale-dev pkg-config
      clang libclang-dev ffmpeg mold openssl libssl-dev unzip zip python3 espeak-ng sox
      apache2 apache2-utils postgresql)
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
command -v cargo >/dev/null || { echo "deploy/install.sh: cargo is not installed (rustup)"; exit 1; }
echo "deploy/install.sh: system packages ready"
