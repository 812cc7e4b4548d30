#!/usr/bin/env python3
"""Side by side: PyTorch and storyteller-encoder (Burn, Flex CPU backend) ResNet-50
feature extraction on the CPU, in one run.

    cargo build --release -p storyteller-benches --bin encoder-compare
    python benches/encoder_vs_torch.py [--batches 1,32] [--reps 3] [--out benches/results/encoder-cpu.txt]

The PyTorch side is the encoder part of benches/torch_reference.py --cpu (its
`resnet50_features` and `median_time`), same shapes and method: torchvision resnet50
(random init), fc = Identity, eval, inference_mode, fp32, inputs randn(batch, 3, 224, 224),
1 warm-up then the median of 3 runs. The Burn side runs the same shapes with BatchNorm folded (and unfused, for the
record). Both use every core of this machine; they run one after the other, alternating
per batch size, for --rounds rounds, and each side keeps its best round's median, so a
noisy neighbour on a shared machine hits both and a quiet moment helps both.
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benches"))
from torch_reference import median_time, resnet50_features  # noqa: E402


def torch_encoder(batch, reps, warm):
    enc = resnet50_features()
    x = torch.randn(batch, 3, 224, 224)

    def run():
        with torch.inference_mode():
            return enc(x)

    return median_time(run, reps, warm)


def burn_encoder(binary, batch, reps, warm, unfused=False):
    cmd = [str(binary), "--batches", str(batch), "--reps", str(reps), "--warm", str(warm)]
    if unfused:
        cmd.append("--unfused")
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])["s_per_batch"]


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batches", default="1,32")
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--warm", type=int, default=1)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--binary", default=os.environ.get(
        "ENCODER_COMPARE", str(Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target")) / "release" / "encoder-compare")))
    p.add_argument("--out", default=str(ROOT / "benches" / "results" / "encoder-cpu.txt"))
    a = p.parse_args()
    if not Path(a.binary).exists():
        sys.exit(f"{a.binary} not found: cargo build --release -p storyteller-benches --bin encoder-compare")
    torch.set_num_threads(os.cpu_count() or 1)

    rows = []
    for b in [int(s) for s in a.batches.split(",")]:
        t_torch = t_fused = t_unfused = float("inf")
        for _ in range(a.rounds):
            t_torch = min(t_torch, torch_encoder(b, a.reps, a.warm))
            t_fused = min(t_fused, burn_encoder(a.binary, b, a.reps, a.warm))
            t_unfused = min(t_unfused, burn_encoder(a.binary, b, a.reps, a.warm, unfused=True))
        rows.append((b, t_torch, t_fused, t_unfused))
        print(json.dumps({"batch": b, "torch_s": t_torch, "burn_fused_s": t_fused, "burn_unfused_s": t_unfused}), flush=True)

    lines = [
        f"ResNet-50 feature extraction (fc removed), fp32, 224x224, CPU: {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} cores; torch {torch.__version__} ({torch.get_num_threads()} threads); "
        f"best of {a.rounds} rounds of the median of {a.reps} after {a.warm} warm-up; {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
        f"load average at the end: {os.getloadavg()[0]:.2f} (other processes share these cores)",
        "",
        f"{'batch':>5} {'pytorch img/s':>14} {'burn fused img/s':>17} {'burn unfused img/s':>19} {'ratio fused/torch':>18}",
    ]
    for b, tt, tf, tu in rows:
        lines.append(f"{b:>5} {b / tt:>14.2f} {b / tf:>17.2f} {b / tu:>19.2f} {tt / tf:>17.2f}x")
    text = "\n".join(lines) + "\n"
    print("\n" + text)
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(text)


if __name__ == "__main__":
    main()
