#!/usr/bin/env bash
# The Show, Attend and Tell decoder against the LSTM variants on the demo's data: the same
# synthetic images, the same seeded random ResNet-50 (its 2x2 grid at 64 px for attention,
# the pooled feature for the LSTMs), the same seed and training budget. Every model is
# scored on the test split with the grounding metrics beside chance, and each kind beside
# its blind baseline (the same training on features shuffled across images).
#
#   bash benches/attention_grounding.sh OUT [SEED]    # release build of the CLI first
#
# Writes OUT/ (dataset, caches, models) and prints every evaluation; about 25 minutes on
# two cores.
set -euo pipefail
OUT=${1:?usage: $0 OUT [SEED]}
SEED=${2:-7}
BIN=${STORYTELLER:-${CARGO_TARGET_DIR:-$HOME/.cache/storyteller/target}/release/storyteller}
[ -x "$BIN" ] || { echo "no $BIN: cargo build --release -p storyteller-cli" >&2; exit 1; }

echo "== storyteller demo --seed $SEED (show-tell: both-inject, whitened; and its blind baseline)"
"$BIN" demo --out "$OUT" --seed "$SEED"
echo "== the encoder's 2x2 grid of the same images"
"$BIN" extract --dataset "$OUT/dataset" --weights "$OUT/encoder.bpk" \
  --out "$OUT/grid2.safetensors" --image-size 64 --grid 2 --json
# The demo's training settings (crates/storyteller/src/demo.rs).
common=(--dataset "$OUT/dataset" --weights "$OUT/encoder.bpk" --epochs 10 --patience 3
  --batch-size 64 --lr 2e-3 --lr-decay-every 0 --min-count 2 --d-embed 64 --d-hidden 256
  --dropout 0.3 --seed "$SEED" --overwrite --json)
train() { echo "== train $*"; /usr/bin/time -f "%e s wall" "$BIN" train "${common[@]}" "$@"; }
train --features "$OUT/features.safetensors" --out "$OUT/init-inject" --conditioning init --whiten 0
train --features "$OUT/grid2.safetensors" --out "$OUT/attention" --decoder show-attend-tell --d-attention 128
train --features "$OUT/grid2.safetensors" --out "$OUT/attention-blind" --decoder show-attend-tell \
  --d-attention 128 --blind
for model in model blind-model init-inject attention attention-blind; do
  case $model in attention*) features=grid2 ;; *) features=features ;; esac
  echo "== evaluate $model"
  "$BIN" evaluate --model "$OUT/$model" --dataset "$OUT/dataset" --split test \
    --features "$OUT/$features.safetensors"
done
