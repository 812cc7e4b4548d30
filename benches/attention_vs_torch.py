#!/usr/bin/env python3
"""Show, Attend and Tell decoder on the CPU: ours (Burn, Flex) next to PyTorch, alternating, one run.

Three parts, on the same shapes on both sides (the constants below):

  train   one training step: teacher forcing over all T = 20 steps of every row (the batch is
          not shrunk by decode length), loss = cross-entropy ignoring <pad> + the doubly
          stochastic regulariser (alpha_c 1.0, mean over images of the sum over regions of
          (1 - sum over steps of alpha)^2), backward, Adam (lr 1e-3), no gradient clipping;
          dropout 0.5 active. Inputs and targets: random tokens in 4..V, no padding.
  greedy  batched greedy search of B images, 20 steps (argmax of log_softmax).
  beam3   batched beam search of width 3 for B images, 20 steps.

Searches run in eval mode with the fc bias of <end> at -1e9, so every caption runs all 20
steps. Weights are random (timing only). Features are standard normal [B, 49, 2048].

The PyTorch side is written here, in the layout of the widely used PyTorch tutorial
(`DecoderWithAttention`, as in crates/storyteller-decoder/scripts/attention_reference.py):
attention.encoder_att / decoder_att / full_att, embedding, decode_step = LSTMCell on
[embedding; sigmoid(f_beta(h)) * context], init_h / init_c on the mean region (no tanh),
fc after dropout. Two departures from the tutorial's loop, both the same maths and both what
our side does: encoder_att(encoder_out) is computed once per forward or search instead of
at every step, and in training fc runs once over the stacked hidden states of all steps.

Our side is `attention-compare` (benches/attention_compare.rs):

    attention-compare PART BATCHES RUNS      # one JSON line per batch size

The harness is benches/side_by_side.py (shared with transformer_vs_torch.py): for each part
and batch size the two sides run alternately --rounds times (who goes first
swaps every round), each round timing the median of --runs runs after one warm-up run.
The table gives each side's median over the rounds with its min-max across rounds, and
ours/pytorch in captions/s (> 1: ours faster) with its range over the rounds' ratios. Both
sides use every core (torch.set_num_threads(os.cpu_count()), rayon's default pool) unless
--threads says otherwise. Run from the repository root:

    cargo build --release -p storyteller-benches --bin attention-compare
    python benches/attention_vs_torch.py [--parts train,greedy,beam3] [--batches 8,32]
        [--runs 3] [--rounds 3] [--out benches/results/attention-cpu.txt]
    python benches/attention_vs_torch.py --torch-only --batches 2 --runs 1 --rounds 1
"""
import pathlib
import sys

import torch
import torch.nn as nn

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import side_by_side  # noqa: E402
from side_by_side import median_seconds  # noqa: E402

# Shapes: must equal benches/attention_compare.rs.
D_FEATURE = 2048  # F
GRID = 7
REGIONS = GRID * GRID  # R, a 7x7 grid
D_EMBED = 512  # E
D_ATTENTION = 512  # A
D_HIDDEN = 512  # H
VOCAB = 8000  # V
STEPS = 20  # T: caption length in training, max_len of both searches
BEAM_WIDTH = 3
PAD, START, END = 0, 1, 2
FIRST_WORD = 4  # training tokens are drawn from FIRST_WORD..VOCAB-1
DROPOUT = 0.5
ALPHA_C = 1.0
LEARNING_RATE = 1e-3

PARTS = ("train", "greedy", "beam3")
BUILD = "cargo build --release -p storyteller-benches --bin attention-compare"


class Attention(nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder_att = nn.Linear(D_FEATURE, D_ATTENTION)
        self.decoder_att = nn.Linear(D_HIDDEN, D_ATTENTION)
        self.full_att = nn.Linear(D_ATTENTION, 1)

    def forward(self, regions, projected, h):
        """regions [N, R, F], projected = encoder_att(regions) [N, R, A], h [N, H] -> context [N, F], alpha [N, R]."""
        scores = self.full_att(torch.relu(projected + self.decoder_att(h).unsqueeze(1))).squeeze(2)
        alpha = torch.softmax(scores, dim=1)
        return torch.bmm(alpha.unsqueeze(1), regions).squeeze(1), alpha


class DecoderWithAttention(nn.Module):
    """The tutorial's submodules, under its names and in its order."""

    def __init__(self):
        super().__init__()
        self.attention = Attention()
        self.embedding = nn.Embedding(VOCAB, D_EMBED)
        self.dropout = nn.Dropout(DROPOUT)
        self.decode_step = nn.LSTMCell(D_EMBED + D_FEATURE, D_HIDDEN)
        self.init_h = nn.Linear(D_FEATURE, D_HIDDEN)
        self.init_c = nn.Linear(D_FEATURE, D_HIDDEN)
        self.f_beta = nn.Linear(D_HIDDEN, D_FEATURE)
        self.fc = nn.Linear(D_HIDDEN, VOCAB)

    def start(self, regions):
        """-> the regions' projection for the attention, and h0, c0."""
        mean = regions.mean(dim=1)
        return self.attention.encoder_att(regions), self.init_h(mean), self.init_c(mean)

    def advance(self, regions, projected, embedded, h, c):
        """One LSTM step from the embedded tokens [N, E]: -> h, c, alpha [N, R]."""
        context, alpha = self.attention(regions, projected, h)
        gate = torch.sigmoid(self.f_beta(h))
        h, c = self.decode_step(torch.cat([embedded, gate * context], dim=1), (h, c))
        return h, c, alpha

    def logits(self, h):
        return self.fc(self.dropout(h))

    def forward(self, regions, tokens):
        """Teacher forcing over every step of every row: -> logits [N, T, V], alphas [N, T, R]."""
        projected, h, c = self.start(regions)
        embedded = self.embedding(tokens)
        hidden, alphas = [], []
        for t in range(tokens.shape[1]):
            h, c, alpha = self.advance(regions, projected, embedded[:, t], h, c)
            hidden.append(h)
            alphas.append(alpha)
        return self.logits(torch.stack(hidden, dim=1)), torch.stack(alphas, dim=1)


def features(batch):
    return torch.randn(batch, REGIONS, D_FEATURE)


def loss_fn(logits, alphas, targets):
    cross_entropy = nn.functional.cross_entropy(logits.reshape(-1, VOCAB), targets.reshape(-1), ignore_index=PAD)
    mask = (targets != PAD).unsqueeze(2).to(alphas.dtype)
    attended = (alphas * mask).sum(dim=1)  # [N, R]
    return cross_entropy + ALPHA_C * ((1.0 - attended) ** 2).sum(dim=1).mean()


def time_train(batch, runs):
    torch.manual_seed(0)
    model = DecoderWithAttention().train()
    optimizer = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE)
    regions = features(batch)
    inputs = torch.randint(FIRST_WORD, VOCAB, (batch, STEPS))
    targets = torch.randint(FIRST_WORD, VOCAB, (batch, STEPS))

    def step():
        optimizer.zero_grad(set_to_none=True)
        logits, alphas = model(regions, inputs)
        loss_fn(logits, alphas, targets).backward()  # no gradient clipping: off on our side too
        optimizer.step()

    return median_seconds(step, runs)


def greedy(model, regions):
    """-> tokens [N, STEPS], summed log-probs [N]."""
    batch = regions.shape[0]
    projected, h, c = model.start(regions)
    tokens = torch.full((batch,), START, dtype=torch.long)
    score = torch.zeros(batch)
    chosen = []
    for _ in range(STEPS):
        h, c, _ = model.advance(regions, projected, model.embedding(tokens), h, c)
        log_probs = torch.log_softmax(model.logits(h), dim=-1)
        best, tokens = log_probs.max(dim=-1)
        score = score + best
        chosen.append(tokens)
    return torch.stack(chosen, dim=1), score


def beam3(model, regions):
    """-> tokens [N * k, STEPS] (k beams per image, best first), scores [N, k].

    No bookkeeping of finished hypotheses: the fc bias of <end> is -1e9, so <end> never makes
    the top k and every beam runs all STEPS steps.
    """
    batch, k = regions.shape[0], BEAM_WIDTH
    projected, h, c = model.start(regions)
    # First step: one row per image.
    h, c, _ = model.advance(regions, projected, model.embedding(torch.full((batch,), START, dtype=torch.long)), h, c)
    scores, words = torch.log_softmax(model.logits(h), dim=-1).topk(k, dim=1)  # [N, k]
    rows = torch.arange(batch).repeat_interleave(k)
    h, c, regions, projected = h[rows], c[rows], regions[rows], projected[rows]
    sequences = words.reshape(-1, 1)
    base = (torch.arange(batch) * k).unsqueeze(1)
    for _ in range(STEPS - 1):
        tokens = sequences[:, -1]
        h, c, _ = model.advance(regions, projected, model.embedding(tokens), h, c)
        log_probs = torch.log_softmax(model.logits(h), dim=-1)  # [N * k, V]
        candidates = (scores.reshape(-1, 1) + log_probs).reshape(batch, k * VOCAB)
        scores, index = candidates.topk(k, dim=1)  # [N, k]
        rows = (base + torch.div(index, VOCAB, rounding_mode="floor")).reshape(-1)
        words = (index % VOCAB).reshape(-1, 1)
        h, c, regions, projected = h[rows], c[rows], regions[rows], projected[rows]
        sequences = torch.cat([sequences[rows], words], dim=1)
    return sequences, scores


def time_search(part, batch, runs):
    torch.manual_seed(0)
    model = DecoderWithAttention().eval()
    with torch.no_grad():
        model.fc.bias[END] = -1e9
    regions = features(batch)
    search = greedy if part == "greedy" else beam3
    rows = batch * (BEAM_WIDTH if part == "beam3" else 1)

    def run():
        with torch.inference_mode():
            tokens, _ = search(model, regions)
        assert tokens.shape == (rows, STEPS) and not (tokens == END).any()

    return median_seconds(run, runs)


def torch_seconds(part, batch, runs):
    return time_train(batch, runs) if part == "train" else time_search(part, batch, runs)


def main():
    side_by_side.main(
        description=__doc__.splitlines()[0],
        title="Show, Attend and Tell decoder",
        shapes=f"F {D_FEATURE}, R {REGIONS} ({GRID}x{GRID}), E {D_EMBED}, A {D_ATTENTION}, H {D_HIDDEN}, "
        f"V {VOCAB}, T {STEPS}; beam width {BEAM_WIDTH}; random weights",
        binary="attention-compare",
        build=BUILD,
        parts=PARTS,
        torch_seconds=torch_seconds,
        example_out="benches/results/attention-cpu.txt",
    )


if __name__ == "__main__":
    main()
