"""Greedy and beam-3 search: ours (Burn, Flex CPU backend) next to the PyTorch anchor, one run.

The PyTorch side is the decoder, `greedy` and `beam` of ../shared/anchors/torch_anchor.py,
copied verbatim below (that script also benchmarks the encoder and training, and runs decode
only at batch 1 and 32 on the CPU). Shapes: vocabulary 8000, embedding 256, hidden 512,
features 2048, 20 tokens, k = 3. Our side is `search-compare` (benches/search_compare.rs) on
the same shapes; both run every caption for all 20 steps and time the median of RUNS runs
after one warm-up run. Run from the repository root:

    cargo build --release -p storyteller-benches --bin search-compare
    python benches/search_vs_torch.py [--batches 1,32,1024] [--out benches/results/search-cpu.txt]
"""
import argparse
import datetime
import json
import math
import os
import pathlib
import platform
import subprocess
import time

import torch
import torch.nn as nn

dev = torch.device("cpu")
V, E, H, L, F = 8000, 256, 512, 20, 2048


def bench(fn, reps, warm=1):
    for _ in range(warm):
        fn()
    ts = []
    for _ in range(reps):
        t = time.perf_counter(); fn(); ts.append(time.perf_counter() - t)
    ts.sort()
    return ts[len(ts) // 2]


# ---- verbatim from torch_anchor.py (decoder, greedy, beam) ----
class Decoder(nn.Module):
    """Show-and-tell style: image feature -> (h0, c0); tokens -> LSTM -> vocab."""

    def __init__(self):
        super().__init__()
        self.init_h = nn.Linear(F, H)
        self.init_c = nn.Linear(F, H)
        self.embed = nn.Embedding(V, E)
        self.lstm = nn.LSTM(E, H, batch_first=True)
        self.cell = nn.LSTMCell(E, H)
        self.out = nn.Linear(H, V)

    def init_state(self, feats):
        return torch.tanh(self.init_h(feats)), torch.tanh(self.init_c(feats))

    def forward(self, feats, tokens):
        h, c = self.init_state(feats)
        y, _ = self.lstm(self.embed(tokens), (h[None], c[None]))
        return self.out(y)

    def step(self, tok, h, c):
        # share weights with the fused LSTM for decoding
        self.cell.weight_ih, self.cell.weight_hh = self.lstm.weight_ih_l0, self.lstm.weight_hh_l0
        self.cell.bias_ih, self.cell.bias_hh = self.lstm.bias_ih_l0, self.lstm.bias_hh_l0
        h, c = self.cell(self.embed(tok), (h, c))
        return torch.log_softmax(self.out(h), -1), h, c


dec = Decoder().to(dev).eval()


@torch.inference_mode()
def greedy(feats):
    h, c = dec.init_state(feats)
    tok = torch.ones(feats.shape[0], dtype=torch.long, device=dev)  # <start>=1
    out = []
    for _ in range(L):
        lp, h, c = dec.step(tok, h, c)
        tok = lp.argmax(-1); out.append(tok)
    return torch.stack(out, 1)


@torch.inference_mode()
def beam(feats, k=3):
    n = feats.shape[0]
    h, c = dec.init_state(feats)
    h, c = h.repeat_interleave(k, 0), c.repeat_interleave(k, 0)
    tok = torch.ones(n * k, dtype=torch.long, device=dev)
    score = torch.full((n, k), -math.inf, device=dev); score[:, 0] = 0
    hist = []
    for _ in range(L):
        lp, h, c = dec.step(tok, h, c)
        cand = (score[..., None] + lp.view(n, k, V)).view(n, k * V)
        score, idx = cand.topk(k, -1)
        src = idx // V; tok = (idx % V).view(-1)
        base = (torch.arange(n, device=dev) * k)[:, None]
        sel = (base + src).view(-1)
        h, c = h[sel], c[sel]
        hist = [t[sel] for t in hist] + [tok]
    return torch.stack(hist, 1).view(n, k, L)[:, 0]
# ---- end of the verbatim part ----


def runs_for(batch, small, large):
    return large if batch >= 256 else small


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batches", default="1,32,1024")
    p.add_argument("--runs", type=int, default=5, help="timed runs at batch < 256")
    p.add_argument("--runs-large", type=int, default=2, help="timed runs at batch >= 256")
    target = os.environ.get("CARGO_TARGET_DIR", "target")
    p.add_argument("--bin", default=f"{target}/release/search-compare")
    p.add_argument("--out", default="benches/results/search-cpu.txt")
    p.add_argument("--threads", type=int, default=0, help="threads for both sides (0: their defaults)")
    a = p.parse_args()
    env = dict(os.environ)
    if a.threads:
        torch.set_num_threads(a.threads)
        env["RAYON_NUM_THREADS"] = str(a.threads)  # Flex and its gemm run on rayon's pool
    batches = [int(b) for b in a.batches.split(",")]

    rows = {}
    for b in batches:
        torch.manual_seed(0)
        feats = torch.randn(b, F, device=dev)
        runs = runs_for(b, a.runs, a.runs_large)
        for part, fn in (("greedy", greedy), ("beam3", beam)):
            t = bench(lambda: fn(feats), runs)
            rows[(part, b)] = {"torch": b / t}
            print(json.dumps({"impl": "torch", "part": part, "batch": b, "s_per_batch": t, "captions_per_s": b / t}), flush=True)

    for b in batches:
        runs = runs_for(b, a.runs, a.runs_large)
        out = subprocess.run([a.bin, str(b), str(runs)], check=True, capture_output=True, text=True, env=env).stdout
        for line in out.splitlines():
            r = json.loads(line)
            rows[(r["part"], r["batch"])]["ours"] = r["captions_per_s"]
            print(json.dumps({"impl": "ours", **r}), flush=True)

    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.processor())
    lines = [
        f"# Greedy and beam-3 search, captions/s, CPU ({cpu}, {os.cpu_count()} logical cores, shared)",
        f"# {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC, torch {torch.__version__} ({torch.get_num_threads()} threads), Burn 0.22.1 Flex (rayon + simd, {env.get('RAYON_NUM_THREADS', 'all')} threads)",
        "# vocab 8000, embed 256, hidden 512, features 2048, 20 tokens; median after one warm-up",
        f"# runs: {a.runs} at batch < 256, {a.runs_large} at batch >= 256",
        "# command: cargo build --release -p storyteller-benches --bin search-compare && python benches/search_vs_torch.py --batches "
        + a.batches + f" --runs {a.runs} --runs-large {a.runs_large}" + (f" --threads {a.threads}" if a.threads else "") + f" --out {a.out}",
        f"# machine load average at the end (other jobs share these cores): {os.getloadavg()[0]:.1f}",
        "",
        f"{'search':<8} {'batch':>6} {'pytorch /s':>12} {'ours /s':>12} {'ours/pytorch':>13}",
    ]
    for (part, b), r in sorted(rows.items(), key=lambda kv: (kv[0][0] != "greedy", kv[0][1])):
        lines.append(f"{part:<8} {b:>6} {r['torch']:>12.1f} {r.get('ours', float('nan')):>12.1f} {r.get('ours', float('nan')) / r['torch']:>12.2f}x")
    text = "\n".join(lines) + "\n"
    print("\n" + text)
    pathlib.Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    pathlib.Path(a.out).write_text(text)
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
