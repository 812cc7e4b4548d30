#!/usr/bin/env bash
# Installs the Debian packages the tests need, when missing (run as root, or with sudo on PATH):
# Python's venv module (Debian splits it out), a font for training plots, and
# Chromium + ChromeDriver for the browser test of `storyteller serve`, and Vulkan on the CPU
# (Mesa's lavapipe plus the Vulkan loader) for the wgpu parity tests.
set -euo pipefail

missing=()
python3 -c 'import ensurepip' >/dev/null 2>&1 || missing+=(python3-venv)
[ -e /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || missing+=(fonts-dejavu-core)
[ -x /usr/bin/chromium ] || missing+=(chromium)
[ -x /usr/bin/chromedriver ] || missing+=(chromium-driver)
compgen -G '/usr/share/vulkan/icd.d/lvp_icd.*.json' >/dev/null || missing+=(mesa-vulkan-drivers)
ldconfig -p | grep -q 'libvulkan\.so\.1 ' || missing+=(libvulkan1)
[ ${#missing[@]} -eq 0 ] && exit 0

echo "== apt-get install ${missing[*]}"
sudo=()
[ "$(id -u)" -eq 0 ] || sudo=(sudo)
"${sudo[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq "${missing[@]}"
