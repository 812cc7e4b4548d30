#!/usr/bin/env bash
# Regenerates the decoders' PyTorch references (LSTM, attention, Transformer) in memory and fails if the stored fixtures drifted.
set -euo pipefail
cd "$(dirname "$0")/../.."
"${STORYTELLER_PYTHON:-python3}" crates/storyteller-decoder/scripts/decoder_reference.py --check
"${STORYTELLER_PYTHON:-python3}" crates/storyteller-decoder/scripts/attention_reference.py --check
"${STORYTELLER_PYTHON:-python3}" crates/storyteller-decoder/scripts/transformer_reference.py --check
