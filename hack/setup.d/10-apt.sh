#!/usr/bin/env bash
# Debian packages the build and the tests need.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
pkgs=(build-essential cmake ninja-build pkg-config git curl ca-certificates lz4 python3-venv
      libcurl4-openssl-dev libjansson-dev libyaml-dev libwebsockets-dev libssl-dev libopenblas-dev
      clang libclang-rt-14-dev openssl)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  say "apt: installing ${missing[*]}"
  sudo_cmd=""; [ "$(id -u)" = 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
