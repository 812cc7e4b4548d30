#!/usr/bin/env bash
# The system packages the tests need, checked and (on Debian, by default) installed:
#   python3-venv        Python's venv module (Debian splits it out)
#   chromium, chromium-driver   the browser test of `storyteller serve`
#   mesa-vulkan-drivers, libvulkan1   Vulkan on the CPU (lavapipe) for the wgpu parity tests
#
#   bash scripts/system-packages.sh            install what is missing (apt-get; sudo when not root)
#   bash scripts/system-packages.sh --check    only report: exit 0 when nothing is missing, 1 otherwise
#   STORYTELLER_SKIP_SYSTEM_PACKAGES=1 ...     report what is missing and go on without installing
#
# Detection needs no root tools: it looks for the files the packages install (and asks
# dpkg-query, which any user may run, where there is one).
set -euo pipefail

mode=install
case "${1:-}" in
    --check) mode=check ;;
    "") ;;
    *) echo "usage: $0 [--check]" >&2; exit 2 ;;
esac
[ "${STORYTELLER_SKIP_SYSTEM_PACKAGES:-0}" = 1 ] && [ "$mode" = install ] && mode=report

installed() { # package name: dpkg's word when it has one
    command -v dpkg-query >/dev/null 2>&1 &&
        dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
}
has_file() { # any of the glob patterns exists
    local pattern
    for pattern in "$@"; do
        compgen -G "$pattern" >/dev/null && return 0
    done
    return 1
}

missing=()
python3 -c 'import ensurepip' >/dev/null 2>&1 || missing+=(python3-venv)
{ [ -x "${STORYTELLER_CHROMIUM:-/usr/bin/chromium}" ] || installed chromium; } || missing+=(chromium)
{ [ -x "${STORYTELLER_CHROMEDRIVER:-/usr/bin/chromedriver}" ] || installed chromium-driver; } || missing+=(chromium-driver)
{ has_file '/usr/share/vulkan/icd.d/lvp_icd.*.json' || installed mesa-vulkan-drivers; } || missing+=(mesa-vulkan-drivers)
{ has_file '/usr/lib/*/libvulkan.so.1' '/usr/lib/libvulkan.so.1' '/usr/lib64/libvulkan.so.1' \
    || installed libvulkan1; } || missing+=(libvulkan1)

if [ ${#missing[@]} -eq 0 ]; then
    [ "$mode" = check ] && echo "system packages: nothing missing"
    exit 0
fi
echo "system packages missing: ${missing[*]}"
case "$mode" in
    check) exit 1 ;;
    report)
        echo "(STORYTELLER_SKIP_SYSTEM_PACKAGES=1: not installing; tests that need them fail" \
             "under scripts/test.sh, or skip with a message under plain cargo test)"
        exit 0 ;;
esac
if ! command -v apt-get >/dev/null 2>&1; then
    echo "no apt-get: install the equivalents of those Debian packages with your system's" \
         "package manager, or set STORYTELLER_SKIP_SYSTEM_PACKAGES=1" >&2
    exit 1
fi
sudo=()
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 || {
        echo "not root and no sudo: install them as root, or set STORYTELLER_SKIP_SYSTEM_PACKAGES=1" >&2
        exit 1
    }
    sudo=(sudo)
fi
echo "== apt-get install ${missing[*]}"
"${sudo[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq "${missing[@]}"
