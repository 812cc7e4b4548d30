#!/usr/bin/env python3
"""End-to-end feature extraction, side by side in one run: `storyteller extract` (decode +
preprocess with rayon while the Flex CPU backend encodes the previous batch) against
PyTorch + torchvision (PIL decode + Resize(256) + CenterCrop(224) + ToTensor + Normalize in a
DataLoader with one worker per core, ResNet-50 fc removed, inference_mode), same files,
same weights, same batch size.

    cargo build --release -p storyteller-cli
    python benches/extract_vs_torch.py --weights W.pth [--images 1000] [--batch-size 32]

The files are the synthetic shapes dataset at 224 px (`storyteller synth`, JPEG). Both
sides are timed from the first file read to the last feature row in memory (ours: the
command's own `seconds`, which also includes writing the cache; its wall time with weight
loading is printed too).
"""

import argparse
import json
import os
import subprocess
import tempfile
import time
from pathlib import Path

import torch
import torch.nn as nn
import torchvision
from PIL import Image
from torchvision import transforms

ROOT = Path(__file__).resolve().parent.parent


class Files(torch.utils.data.Dataset):
    def __init__(self, paths):
        self.paths = paths
        self.t = transforms.Compose([
            transforms.Resize(256), transforms.CenterCrop(224), transforms.ToTensor(),
            transforms.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])])

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, i):
        return self.t(Image.open(self.paths[i]).convert("RGB"))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--weights", required=True)
    p.add_argument("--images", type=int, default=1000)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--binary", default=str(Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target")) / "release" / "storyteller"))
    p.add_argument("--work", default=os.path.join(tempfile.gettempdir(), "storyteller-extract-bench"))
    p.add_argument("--out", default=str(ROOT / "benches" / "results" / "extract-cpu.txt"))
    a = p.parse_args()
    work = Path(a.work)
    data = work / f"shapes-{a.images}"
    if not data.exists():
        subprocess.run([a.binary, "synth", "--out", str(data), "--images", str(a.images), "--size", "224", "--seed", "0"],
                       check=True, capture_output=True)
    files = sorted(str(f) for f in data.rglob("*.jpg"))
    assert len(files) == a.images, (len(files), a.images)
    threads = os.cpu_count() or 1
    torch.set_num_threads(threads)

    # PyTorch + torchvision.
    model = torchvision.models.resnet50(weights=None)
    model.load_state_dict(torch.load(a.weights, map_location="cpu"))
    model.fc = nn.Identity()
    model.eval()
    loader = torch.utils.data.DataLoader(Files(files), batch_size=a.batch_size, num_workers=threads)
    t = time.perf_counter()
    rows = 0
    with torch.inference_mode():
        for x in loader:
            rows += model(x).shape[0]
    t_torch = time.perf_counter() - t

    # Ours.
    out = work / "features.safetensors"
    if out.exists():
        out.unlink()
    t = time.perf_counter()
    res = subprocess.run([a.binary, "extract", "--dataset", str(data), "--weights", a.weights, "--out", str(out),
                          "--batch-size", str(a.batch_size), "--json"], check=True, capture_output=True, text=True)
    wall = time.perf_counter() - t
    ours = json.loads(res.stdout)
    assert ours["rows"] == a.images == rows

    lines = [
        f"End-to-end extraction of {a.images} JPEG files (224 px synthetic shapes), ResNet-50 fp32, batch {a.batch_size}, "
        f"{threads} cores; torch {torch.__version__}; {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; "
        f"load average at the end {os.getloadavg()[0]:.2f} (shared machine)",
        f"pytorch + torchvision DataLoader ({threads} workers): {rows / t_torch:.2f} img/s ({t_torch:.1f} s)",
        f"storyteller extract (Flex, fused):        {ours['images_per_second']:.2f} img/s ({ours['seconds']:.1f} s; "
        f"{wall:.1f} s wall with weight loading)",
        f"ratio ours/pytorch: {ours['images_per_second'] / (rows / t_torch):.2f}x",
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    Path(a.out).write_text(text)


if __name__ == "__main__":
    main()
