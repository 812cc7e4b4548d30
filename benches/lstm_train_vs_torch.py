#!/usr/bin/env python3
"""Show-and-Tell LSTM training step on the CPU: ours (Burn, Flex) next to PyTorch, alternating, one run.

One part, `train`, on the same shapes on both sides (the constants below): the seed's
init-inject decoder (h0 = tanh(init_h(f)), c0 = tanh(init_c(f)) from the 2048-d image feature,
dropout 0.5 on the feature, the embeddings and the LSTM outputs), teacher forcing over all T = 20
steps of every row, cross-entropy ignoring <pad>, backward, Adam (lr 1e-3), no gradient
clipping. Inputs and targets: random tokens in 4..V, no padding; random weights.

The PyTorch side is nn.Embedding + nn.LSTM(batch_first=True) + nn.Linear, the layout the
decoder's PyTorch import reads (crates/storyteller-decoder/scripts/decoder_reference.py).
Our side is `lstm-train-compare` (benches/lstm_train_compare.rs). The harness (alternation,
medians, the table) is benches/side_by_side.py's. Run from the repository root:

    cargo build --release -p storyteller-benches --bin lstm-train-compare
    python benches/lstm_train_vs_torch.py [--batches 32,128] [--runs 3] [--rounds 3] [--threads 1]
        [--out benches/results/lstm-train-cpu.txt]
"""
import pathlib
import sys

import torch
import torch.nn as nn
import torch.nn.functional as Fn

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import side_by_side  # noqa: E402
from side_by_side import median_seconds  # noqa: E402

# Shapes: must equal benches/lstm_train_compare.rs.
D_FEATURE = 2048
D_EMBED = 256
D_HIDDEN = 512
VOCAB = 8000
STEPS = 20
PAD = 0
FIRST_WORD = 4
DROPOUT = 0.5
LEARNING_RATE = 1e-3
BUILD = "cargo build --release -p storyteller-benches --bin lstm-train-compare"


class ShowTell(nn.Module):
    def __init__(self):
        super().__init__()
        self.init_h = nn.Linear(D_FEATURE, D_HIDDEN)
        self.init_c = nn.Linear(D_FEATURE, D_HIDDEN)
        self.embed = nn.Embedding(VOCAB, D_EMBED)
        self.lstm = nn.LSTM(D_EMBED, D_HIDDEN, batch_first=True)
        self.out = nn.Linear(D_HIDDEN, VOCAB)
        self.dropout = nn.Dropout(DROPOUT)

    def forward(self, features, tokens):
        features = self.dropout(features)
        h0 = torch.tanh(self.init_h(features)).unsqueeze(0)
        c0 = torch.tanh(self.init_c(features)).unsqueeze(0)
        outputs, _ = self.lstm(self.dropout(self.embed(tokens)), (h0, c0))
        return self.out(self.dropout(outputs))


def torch_seconds(part, batch, runs):
    torch.manual_seed(0)
    model = ShowTell().train()
    optimizer = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE)
    features = torch.randn(batch, D_FEATURE)
    inputs = torch.randint(FIRST_WORD, VOCAB, (batch, STEPS))
    targets = torch.randint(FIRST_WORD, VOCAB, (batch, STEPS))

    def train_step():
        optimizer.zero_grad(set_to_none=True)
        logits = model(features, inputs)
        loss = Fn.cross_entropy(logits.reshape(-1, VOCAB), targets.reshape(-1), ignore_index=PAD)
        loss.backward()
        optimizer.step()
        return loss.item()  # our side reads its loss too

    return median_seconds(train_step, runs)


def main():
    side_by_side.main(
        description=__doc__.splitlines()[0],
        title="Show-and-Tell LSTM training step",
        shapes=f"F {D_FEATURE}, E {D_EMBED}, H {D_HIDDEN}, V {VOCAB}, T {STEPS}; init-inject; dropout {DROPOUT}; "
        f"Adam lr {LEARNING_RATE}, no clipping; random weights and tokens",
        binary="lstm-train-compare",
        build=BUILD,
        parts=("train",),
        default_batches="32,128",
        torch_seconds=torch_seconds,
        example_out="benches/results/lstm-train-cpu.txt",
    )


if __name__ == "__main__":
    main()
