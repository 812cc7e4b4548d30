#!/usr/bin/env bash
# Regenerates the decoder's PyTorch reference in memory and fails if the stored fixtures drifted.
set -euo pipefail
cd "$(dirname "$0")/../.."
"${STORYTELLER_PYTHON:-python3}" crates/storyteller-decoder/scripts/decoder_reference.py --check
