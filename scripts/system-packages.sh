#!/usr/bin/env bash
# Installs the Debian packages the tests need, when missing (run as root, or with sudo on PATH):
# Python's venv module (Debian splits it out), a font for training plots, and
# Chromium + ChromeDriver for the browser test of `storyteller serve`.
set -euo pipefail

missing=()
python3 -c 'import ensurepip' >/dev/null 2>&1 || missing+=(python3-venv)
[ -e /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || missing+=(fonts-dejavu-core)
[ -x /usr/bin/chromium ] || missing+=(chromium)
[ -x /usr/bin/chromedriver ] || missing+=(chromium-driver)
[ ${#missing[@]} -eq 0 ] && exit 0

echo "== apt-get install ${missing[*]}"
sudo=()
[ "$(id -u)" -eq 0 ] || sudo=(sudo)
"${sudo[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq "${missing[@]}"
