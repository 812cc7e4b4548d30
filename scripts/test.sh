#!/usr/bin/env bash
# Installs everything the tests need and runs every test of the workspace.
#
#   bash scripts/test.sh
#
# 0. The Debian packages of scripts/system-packages.sh (venv, a font, Chromium, Vulkan on the
#    CPU), when missing.
# 1. A Python venv (default ~/.cache/storyteller/venv, override with STORYTELLER_VENV)
#    with the reference packages of scripts/requirements-test.txt.
# 2. Every scripts/fixtures.d/*.sh in order: each regenerates reference fixtures
#    (checked-in ones are compared for drift, large ones are written under
#    STORYTELLER_FIXTURES, default ~/.cache/storyteller/fixtures).
# 3. `cargo test --workspace` with STORYTELLER_REQUIRE_FIXTURES=1, so a test
#    whose fixture (or, for the wgpu tests, Vulkan adapter) is missing fails instead of
#    skipping.
#
# The benches package's tests turn on Burn's wgpu backend (benches/tests/wgpu_parity.rs runs
# on lavapipe), so in this one build wgpu is what `Device::default()` picks. Every other test
# names `Device::flex()`; the doc tests show `Device::default()`, so they run with
# BURN_DEVICE=flex.
set -euo pipefail
cd "$(dirname "$0")/.."

export STORYTELLER_VENV="${STORYTELLER_VENV:-$HOME/.cache/storyteller/venv}"
export STORYTELLER_FIXTURES="${STORYTELLER_FIXTURES:-$HOME/.cache/storyteller/fixtures}"
export STORYTELLER_PYTHON="$STORYTELLER_VENV/bin/python"
mkdir -p "$STORYTELLER_FIXTURES"

bash scripts/system-packages.sh

if [ ! -x "$STORYTELLER_PYTHON" ]; then
    python3 -m venv "$STORYTELLER_VENV"
fi
"$STORYTELLER_PYTHON" -m pip install --quiet --disable-pip-version-check -r scripts/requirements-test.txt

for fixture in scripts/fixtures.d/*.sh; do
    [ -e "$fixture" ] || continue
    echo "== fixtures: $fixture"
    bash "$fixture"
done

export STORYTELLER_REQUIRE_FIXTURES=1
# Mesa's Vulkan loader complains on every adapter probe without a runtime directory.
[ -n "${XDG_RUNTIME_DIR:-}" ] || export XDG_RUNTIME_DIR="$(mktemp -d)"
cargo test --workspace --all-targets
BURN_DEVICE=flex cargo test --workspace --doc
