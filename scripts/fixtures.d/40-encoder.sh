#!/usr/bin/env bash
# Writes the ResNet parity fixture (seeded random torchvision ResNet-50 weights as .pth and
# .safetensors, ResNet-101 and -152 as .pth, reference outputs including grid features,
# sample photos; ~650 MB, ~1 min) into STORYTELLER_FIXTURES.
# Skipped when the files there already carry the current version stamp.
set -euo pipefail
cd "$(dirname "$0")/../.."
"${STORYTELLER_PYTHON:-python3}" crates/storyteller-encoder/scripts/make_resnet_fixture.py \
    --out "${STORYTELLER_FIXTURES:-$HOME/.cache/storyteller/fixtures}"
