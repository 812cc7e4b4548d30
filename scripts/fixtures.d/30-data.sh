#!/usr/bin/env bash
# storyteller-data: torchvision preprocessing references for scikit-image's sample photos.
set -euo pipefail
cd "$(dirname "$0")/../.."
"${STORYTELLER_PYTHON:-python3}" crates/storyteller-data/scripts/make_fixtures.py \
    "${STORYTELLER_FIXTURES:-$HOME/.cache/storyteller/fixtures}/data"
