#!/usr/bin/env bash
# Debian's Chromium and ChromeDriver for the console's browser tests (label browser): the test
# drives them over WebDriver (plain HTTP) from tests/console/webdriver.py; nothing is downloaded
# at test time.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
pkgs=(chromium chromium-driver fonts-dejavu-core)
key="${pkgs[*]}"
if stamp_ok browser "$key" && [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then
  exit 0
fi
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  say "apt: installing ${missing[*]} (browser tests)"
  sudo_cmd=""; [ "$(id -u)" = 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
stamp_set browser "$key"
