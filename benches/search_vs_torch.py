"""Greedy and beam-3 search: ours (Burn, Flex CPU backend) next to PyTorch, one run.

The PyTorch side is `CaptionDecoder`, `greedy` and `beam_search` of benches/torch_reference.py
(the repository's PyTorch reference, which also times the encoder and training, and decodes
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
import os
import pathlib
import platform
import subprocess
import sys

import torch

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from torch_reference import (  # noqa: E402
    D_FEATURE, CaptionDecoder, beam_search, greedy, median_time,
)

dev = torch.device("cpu")


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

    decoder = CaptionDecoder().to(dev).eval()
    rows = {}
    for b in batches:
        torch.manual_seed(0)
        feats = torch.randn(b, D_FEATURE, device=dev)
        runs = runs_for(b, a.runs, a.runs_large)
        for part, fn in (("greedy", greedy), ("beam3", beam_search)):
            t = median_time(lambda: fn(decoder, feats), runs, warm=1, device=dev)
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
