#!/usr/bin/env bash
# Writes the ResNet-50 parity fixture (seeded random torchvision weights as .pth and
# .safetensors, reference outputs, sample photos; ~210 MB, ~25 s) into STORYTELLER_FIXTURES.
# Skipped when the files there already carry the current version stamp.
set -euo pipefail
cd "$(dirname "$0")/../.."
"${STORYTELLER_PYTHON:-python3}" crates/storyteller-encoder/scripts/make_resnet_fixture.py \
    --out "${STORYTELLER_FIXTURES:-$HOME/.cache/storyteller/fixtures}"
