#!/usr/bin/env bash
# Regenerates the PyTorch beam-search reference (weights, features, expected hypotheses) and
# fails if the checked-in crates/storyteller-search/tests/data/beam_reference.json drifted.
set -euo pipefail
cd "$(dirname "$0")/../.."
"${STORYTELLER_PYTHON:-python3}" crates/storyteller-search/scripts/beam_reference.py --check
