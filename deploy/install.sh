#!/usr/bin/env bash
# Installs what reclife needs to build, test and benchmark, idempotently: FFmpeg development
# libraries and CLI, clang/libclang (bindgen), pkg-config, openssl + libssl-dev, unzip and zip,
# Python 3 (zipfile checks), espeak-ng (speech for the media benchmark). Safe to run again: it
# only installs what is missing.
set -euo pipefail
PKGS=(libavcodec-dev libavformat-dev libavutil-dev libswresample-dev libswscale-dev pkg-config
      clang libclang-dev ffmpeg openssl libssl-dev unzip zip python3 espeak-ng)
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
