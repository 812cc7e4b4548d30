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

For each part and batch size the two sides run alternately --rounds times (who goes first
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
import argparse
import datetime
import json
import os
import pathlib
import platform
import shlex
import subprocess
import sys
import time

import torch
import torch.nn as nn

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


def median(values):
    """The middle value; the upper one of the two for an even count, as attention_compare.rs."""
    return sorted(values)[len(values) // 2]


def median_seconds(fn, runs):
    fn()  # warm-up
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return median(times)


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


def rust_seconds(binary, part, batch, runs, env):
    cmd = [binary, part, str(batch), str(runs)]
    res = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if res.returncode != 0:
        sys.exit(f"{shlex.join(cmd)} failed (exit {res.returncode}):\n{res.stderr}")
    lines = [json.loads(l) for l in res.stdout.splitlines() if l.startswith("{")]
    found = [r for r in lines if r.get("part") == part and r.get("batch") == batch]
    if len(found) != 1:
        sys.exit(f"{shlex.join(cmd)}: expected one JSON line for {part} at batch {batch}, got:\n{res.stdout}")
    return found[0]["s_per_batch"]


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            return next((l.split(":", 1)[1].strip() for l in f if l.startswith("model name")), None) or platform.processor()
    except OSError:
        return platform.processor() or platform.machine()


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0], epilog=BUILD)
    p.add_argument("--parts", default=",".join(PARTS), help="comma-separated: train, greedy, beam3")
    p.add_argument("--batches", default="8,32", help="comma-separated batch sizes")
    p.add_argument("--runs", type=int, default=3, help="timed runs per side and round, after one warm-up run")
    p.add_argument("--rounds", type=int, default=3, help="alternating rounds per part and batch size")
    target = os.environ.get("CARGO_TARGET_DIR", os.path.expanduser("~/.cache/storyteller/target"))
    p.add_argument("--rust-bin", default=os.path.join(target, "release", "attention-compare"))
    p.add_argument("--out", help="also write the table here, e.g. benches/results/attention-cpu.txt")
    p.add_argument("--threads", type=int, default=0, help="threads for both sides (0: all cores)")
    p.add_argument("--torch-only", action="store_true", help="time the PyTorch side alone (a smoke test)")
    a = p.parse_args()
    parts = [s.strip() for s in a.parts.split(",") if s.strip()]
    if bad := [s for s in parts if s not in PARTS]:
        p.error(f"--parts: unknown {bad}; choose from {', '.join(PARTS)}")
    batches = [int(b) for b in a.batches.split(",")]
    if a.runs < 1 or a.rounds < 1 or min(batches) < 1:
        p.error("--runs, --rounds and the batch sizes must be at least 1")
    if not a.torch_only and not (os.path.isfile(a.rust_bin) and os.access(a.rust_bin, os.X_OK)):
        sys.exit(f"{a.rust_bin} not found; build it first:\n    {BUILD}\n(or pass --rust-bin PATH, or --torch-only)")

    threads = a.threads or os.cpu_count() or 1
    torch.set_num_threads(threads)
    env = dict(os.environ)
    if a.threads:
        env["RAYON_NUM_THREADS"] = str(a.threads)  # Flex and its gemm run on rayon's pool

    sides = ["torch"] if a.torch_only else ["torch", "rust"]
    results = {}  # (part, batch) -> {side: [captions/s of each round]}
    for part in parts:
        for batch in batches:
            rates = {side: [] for side in sides}
            for round_ in range(a.rounds):
                for side in sides if round_ % 2 == 0 else sides[::-1]:
                    if side == "torch":
                        s = torch_seconds(part, batch, a.runs)
                    else:
                        s = rust_seconds(a.rust_bin, part, batch, a.runs, env)
                    rates[side].append(batch / s)
                    print(json.dumps({"impl": side, "part": part, "batch": batch, "round": round_,
                                      "s_per_batch": s, "captions_per_s": batch / s}), flush=True)
            results[(part, batch)] = rates

    now = datetime.datetime.now(datetime.timezone.utc)
    command = shlex.join(getattr(sys, "orig_argv", [sys.executable, *sys.argv]))
    lines = [
        f"# Show, Attend and Tell decoder, captions/s, CPU: {cpu_model()}, nproc {os.cpu_count()} (shared)",
        f"# {now:%Y-%m-%d %H:%M} UTC; torch {torch.__version__} ({torch.get_num_threads()} threads); "
        f"ours: Burn Flex ({env.get('RAYON_NUM_THREADS', 'all')} rayon threads)",
        f"# F {D_FEATURE}, R {REGIONS} ({GRID}x{GRID}), E {D_EMBED}, A {D_ATTENTION}, H {D_HIDDEN}, V {VOCAB}, "
        f"T {STEPS}; beam width {BEAM_WIDTH}; random weights",
        f"# {a.rounds} alternating rounds of the median of {a.runs} runs after one warm-up; "
        "each side: median over the rounds [min-max]; ours/pytorch: ratio of the medians [range of the rounds' ratios]",
        f"# command: {command}",
        f"# load average at the end: {os.getloadavg()[0]:.2f} (other processes share these cores)",
        "",
    ]
    header = f"{'part':<7} {'batch':>5} {'pytorch /s':>10} {'[min-max]':>17}"
    if not a.torch_only:
        header += f" {'ours /s':>10} {'[min-max]':>17} {'ours/pytorch':>12} {'[range]':>13}"
    lines.append(header)
    for (part, batch), rates in results.items():
        t = rates["torch"]
        row = f"{part:<7} {batch:>5} {median(t):>10.2f} {f'[{min(t):.2f}-{max(t):.2f}]':>17}"
        if not a.torch_only:
            r = rates["rust"]
            ratios = [x / y for x, y in zip(r, t)]
            row += (f" {median(r):>10.2f} {f'[{min(r):.2f}-{max(r):.2f}]':>17}"
                    f" {median(r) / median(t):>11.2f}x {f'[{min(ratios):.2f}-{max(ratios):.2f}]':>13}")
        lines.append(row)
    text = "\n".join(lines) + "\n"
    print("\n" + text, end="")
    if a.out:
        out = pathlib.Path(a.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text)
        print(f"wrote {out}")


if __name__ == "__main__":
    main()
