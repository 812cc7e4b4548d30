#!/usr/bin/env bash
# Regenerates the metric test vectors with pycocoevalcap and NLTK and fails if the stored ones drifted.
set -euo pipefail
cd "$(dirname "$0")/../.."
"${STORYTELLER_PYTHON:-python3}" crates/storyteller-metrics/scripts/make_vectors.py --check
