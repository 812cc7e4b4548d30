#!/usr/bin/env python3
"""Side by side: pycocoevalcap and storyteller-metrics on the same 5,000 x 5 captions, in one run.

    cargo build --release -p storyteller-benches --bin metrics-compare
    python benches/metrics_vs_pycocoevalcap.py [--images 5000] [--runs 5] [--out benches/results/metrics-cpu.txt]

Both sides score BLEU-1..4 + ROUGE-L + CIDEr-D from already tokenised strings;
both time only the scoring (corpus construction included, file parsing not).
The scores must agree to 1e-9; the ratio of median times is printed.
"""

import argparse
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "crates" / "storyteller-metrics" / "scripts"))

from make_vectors import make_main  # noqa: E402  (the test vectors' caption generator)
from pycocoevalcap.bleu.bleu import Bleu  # noqa: E402
from pycocoevalcap.cider.cider import Cider  # noqa: E402
from pycocoevalcap.rouge.rouge import Rouge  # noqa: E402


def pycoco(gts, res):
    bleu, _ = Bleu(4).compute_score(gts, res, verbose=0)
    rouge, _ = Rouge().compute_score(gts, res)
    cider, _ = Cider().compute_score(gts, res)
    return [float(b) for b in bleu] + [float(rouge), float(cider)]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=5000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--out", type=Path, help="also write the report here")
    parser.add_argument("--binary", type=Path,
                        default=Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target")) / "release" / "metrics-compare")
    args = parser.parse_args()

    data = make_main(random.Random(5000), args.images)
    gts = {str(i): refs for i, refs in enumerate(data["refs"])}
    res = {str(i): [hyp] for i, hyp in enumerate(data["hyps"])}

    times = []
    for _ in range(args.runs):
        start = time.perf_counter()
        expected = pycoco(gts, res)
        times.append(time.perf_counter() - start)
    python_seconds = statistics.median(times)

    with tempfile.TemporaryDirectory() as tmp:
        refs_path, hyps_path = Path(tmp, "refs.json"), Path(tmp, "hyps.json")
        refs_path.write_text(json.dumps(gts))
        hyps_path.write_text(json.dumps({k: v[0] for k, v in res.items()}))
        out = subprocess.run([str(args.binary), str(refs_path), str(hyps_path), str(args.runs)],
                             check=True, capture_output=True, text=True).stdout
    ours = json.loads(out)
    got = ours["bleu"] + [ours["rouge_l"], ours["cider_d"]]
    worst = max(abs(a - b) for a, b in zip(expected, got))
    if worst > 1e-9:
        sys.exit(f"scores disagree: pycocoevalcap {expected}, ours {got}")

    single, multi = ours["seconds_single_thread"], ours["seconds_all_threads"]
    lines = [
        f"BLEU-1..4 + ROUGE-L + CIDEr-D, {args.images} images x 5 references, median of {args.runs} runs",
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"load average {os.getloadavg()[0]:.1f} (shared machine)",
        "command: cargo build --release -p storyteller-benches --bin metrics-compare && "
        "python benches/metrics_vs_pycocoevalcap.py " + " ".join(sys.argv[1:]),
        f"pycocoevalcap                 {python_seconds * 1e3:10.1f} ms",
        f"storyteller, 1 thread         {single * 1e3:10.1f} ms   {python_seconds / single:6.1f}x faster",
        f"storyteller, {ours['threads']} threads        {multi * 1e3:10.1f} ms   {python_seconds / multi:6.1f}x faster",
        f"storyteller stages, 1 thread: "
        + ", ".join(f"{k} {v * 1e3:.1f} ms" for k, v in ours["single_thread_breakdown_seconds"].items()),
        f"scores agree to {worst:.1e} (BLEU-4 {got[3]:.6f}, ROUGE-L {got[4]:.6f}, CIDEr-D {got[5]:.6f})",
    ]
    report = "\n".join(lines)
    print(report)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(report + "\n")


if __name__ == "__main__":
    main()
