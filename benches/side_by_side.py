"""The harness of the side-by-side CPU benchmarks: ours (a Rust binary) next to PyTorch, alternating.

Used by benches/attention_vs_torch.py and benches/transformer_vs_torch.py; each script defines
its model, its PyTorch timing function and its shapes, and calls `main`.

The Rust side is a binary with the contract of benches/attention_compare.rs:

    BINARY PART BATCHES RUNS      # one JSON line per batch size: part, batch, s_per_batch, ...

For each part and batch size the two sides run alternately --rounds times (who goes first
swaps every round), each round timing the median of --runs runs after one warm-up run.
The table gives each side's median over the rounds with its min-max across rounds, and
ours/pytorch in captions/s (> 1: ours faster) with its range over the rounds' ratios. Both
sides use every core (torch.set_num_threads(os.cpu_count()), rayon's default pool) unless
--threads says otherwise. A part may be PyTorch-only (an extra reference row): its ours
columns read "-".
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


def median(values):
    """The middle value; the upper one of the two for an even count, as benches/median.rs."""
    return sorted(values)[len(values) // 2]


def median_seconds(fn, runs):
    """Runs fn once to warm up, then runs times; the median wall time in seconds."""
    fn()  # warm-up
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return median(times)


def rust_seconds(binary, part, batch, runs, env):
    """Runs `binary part batch runs` and returns its s_per_batch."""
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


def main(*, description, title, shapes, binary, build, parts, torch_seconds, rust_part=None,
         default_parts=None, default_batches="8,32", example_out, notes=()):
    """Parses the command line, times every part and batch size on both sides, prints the table.

    title: the model's name for the table's first line; shapes: the table's shapes line (after
    "# "); binary: the Rust binary's file name under $CARGO_TARGET_DIR/release; build: the cargo
    command that builds it; parts: every part name --parts accepts; torch_seconds(part, batch,
    runs) -> seconds per batch; rust_part(part) -> the binary's PART for this part, or None for
    a PyTorch-only part (default: the part itself); default_parts: --parts' default (default:
    all of parts); notes: extra header lines (each after "# ") below the shapes line.
    """
    rust_part = rust_part or (lambda part: part)
    p = argparse.ArgumentParser(description=description, epilog=build)
    p.add_argument("--parts", default=default_parts or ",".join(parts), help=f"comma-separated: {', '.join(parts)}")
    p.add_argument("--batches", default=default_batches, help="comma-separated batch sizes")
    p.add_argument("--runs", type=int, default=3, help="timed runs per side and round, after one warm-up run")
    p.add_argument("--rounds", type=int, default=3, help="alternating rounds per part and batch size")
    target = os.environ.get("CARGO_TARGET_DIR", os.path.expanduser("~/.cache/storyteller/target"))
    p.add_argument("--rust-bin", default=os.path.join(target, "release", binary))
    p.add_argument("--out", help=f"also write the table here, e.g. {example_out}")
    p.add_argument("--append", action="store_true", help="append the table (with its header) to --out")
    p.add_argument("--threads", type=int, default=0, help="threads for both sides (0: all cores)")
    p.add_argument("--torch-only", action="store_true", help="time the PyTorch side alone (a smoke test)")
    a = p.parse_args()
    chosen = [s.strip() for s in a.parts.split(",") if s.strip()]
    if bad := [s for s in chosen if s not in parts]:
        p.error(f"--parts: unknown {bad}; choose from {', '.join(parts)}")
    batches = [int(b) for b in a.batches.split(",")]
    if a.runs < 1 or a.rounds < 1 or min(batches) < 1:
        p.error("--runs, --rounds and the batch sizes must be at least 1")
    needs_rust = not a.torch_only and any(rust_part(part) for part in chosen)
    if needs_rust and not (os.path.isfile(a.rust_bin) and os.access(a.rust_bin, os.X_OK)):
        sys.exit(f"{a.rust_bin} not found; build it first:\n    {build}\n(or pass --rust-bin PATH, or --torch-only)")

    threads = a.threads or os.cpu_count() or 1
    torch.set_num_threads(threads)
    env = dict(os.environ)
    if a.threads:
        env["RAYON_NUM_THREADS"] = str(a.threads)  # Flex and its gemm run on rayon's pool

    results = {}  # (part, batch) -> {side: [captions/s of each round]}
    for part in chosen:
        sides = ["torch"] if a.torch_only or not rust_part(part) else ["torch", "rust"]
        for batch in batches:
            rates = {side: [] for side in sides}
            for round_ in range(a.rounds):
                for side in sides if round_ % 2 == 0 else sides[::-1]:
                    if side == "torch":
                        s = torch_seconds(part, batch, a.runs)
                    else:
                        s = rust_seconds(a.rust_bin, rust_part(part), batch, a.runs, env)
                    rates[side].append(batch / s)
                    print(json.dumps({"impl": side, "part": part, "batch": batch, "round": round_,
                                      "s_per_batch": s, "captions_per_s": batch / s}), flush=True)
            results[(part, batch)] = rates

    now = datetime.datetime.now(datetime.timezone.utc)
    command = shlex.join(getattr(sys, "orig_argv", [sys.executable, *sys.argv]))
    lines = [
        f"# {title}, captions/s, CPU: {cpu_model()}, nproc {os.cpu_count()} (shared)",
        f"# {now:%Y-%m-%d %H:%M} UTC; torch {torch.__version__} ({torch.get_num_threads()} threads); "
        f"ours: Burn Flex ({env.get('RAYON_NUM_THREADS', 'all')} rayon threads)",
        f"# {shapes}",
        *(f"# {note}" for note in notes),
        f"# {a.rounds} alternating rounds of the median of {a.runs} runs after one warm-up; "
        "each side: median over the rounds [min-max]; ours/pytorch: ratio of the medians [range of the rounds' ratios]",
        f"# command: {command}",
        f"# load average at the end: {os.getloadavg()[0]:.2f} (other processes share these cores)",
        "",
    ]
    width = max([7, *(len(part) for part, _ in results)])
    header = f"{'part':<{width}} {'batch':>5} {'pytorch /s':>10} {'[min-max]':>17}"
    if not a.torch_only:
        header += f" {'ours /s':>10} {'[min-max]':>17} {'ours/pytorch':>12} {'[range]':>13}"
    lines.append(header)
    for (part, batch), rates in results.items():
        t = rates["torch"]
        row = f"{part:<{width}} {batch:>5} {median(t):>10.2f} {f'[{min(t):.2f}-{max(t):.2f}]':>17}"
        if "rust" in rates:
            r = rates["rust"]
            ratios = [x / y for x, y in zip(r, t)]
            row += (f" {median(r):>10.2f} {f'[{min(r):.2f}-{max(r):.2f}]':>17}"
                    f" {median(r) / median(t):>11.2f}x {f'[{min(ratios):.2f}-{max(ratios):.2f}]':>13}")
        elif not a.torch_only:
            row += f" {'-':>10} {'':>17} {'-':>12} {'':>13}".rstrip()
        lines.append(row)
    text = "\n".join(lines) + "\n"
    print("\n" + text, end="")
    if a.out:
        out = pathlib.Path(a.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        if a.append and out.exists():
            with out.open("a") as f:
                f.write("\n" + text)
        else:
            out.write_text(text)
        print(f"wrote {out}")
