#!/usr/bin/env python3
"""Decode + preprocess throughput: storyteller-data vs PIL + torchvision, same files, one run.

Writes N Flickr-sized JPEGs (500x375 and 375x500 crops of scikit-image's sample
photos, quality 90) to a temporary folder, then times, on the same files:
  - PIL.Image.open(f).convert("RGB") + Resize(256) + CenterCrop(224) + ToTensor
    + Normalize, in one process with one torch thread, and with a torch
    DataLoader over all cores (num_workers = cores);
  - storyteller-data's `preprocess_throughput` example (release build) on one
    thread and on all threads.
Prints a table and writes benches/results/preprocess.json.

Usage: python benches/preprocess_vs_torchvision.py [--images 200] [--runs 3]
"""

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import PIL
import skimage.data
import torch
import torchvision
from PIL import Image
from torchvision import transforms as T

ROOT = Path(__file__).resolve().parent.parent
TRANSFORM = T.Compose(
    [
        T.Resize(256, interpolation=T.InterpolationMode.BILINEAR, antialias=True),
        T.CenterCrop(224),
        T.ToTensor(),
        T.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]),
    ]
)


class Files(torch.utils.data.Dataset):
    def __init__(self, paths):
        self.paths = paths

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, i):
        with Image.open(self.paths[i]) as image:
            return TRANSFORM(image.convert("RGB"))


def write_images(out: Path, n: int) -> list:
    rng = np.random.default_rng(0)
    photos = [skimage.data.astronaut(), skimage.data.coffee(), skimage.data.chelsea(), skimage.data.rocket()]
    paths = []
    for i in range(n):
        photo = Image.fromarray(photos[i % len(photos)])
        size = (500, 375) if i % 3 else (375, 500)
        scale = max(size[0] / photo.width, size[1] / photo.height) * rng.uniform(1.0, 1.3)
        photo = photo.resize((int(photo.width * scale) + 1, int(photo.height * scale) + 1), Image.BILINEAR)
        x = rng.integers(0, photo.width - size[0] + 1)
        y = rng.integers(0, photo.height - size[1] + 1)
        path = out / f"{i:05d}.jpg"
        photo.crop((x, y, x + size[0], y + size[1])).save(path, quality=90)
        paths.append(path)
    return paths


def time_python(paths, runs):
    torch.set_num_threads(1)
    rates = []
    for _ in range(runs):
        start = time.perf_counter()
        for p in paths:
            with Image.open(p) as image:
                TRANSFORM(image.convert("RGB"))
        rates.append(len(paths) / (time.perf_counter() - start))
    return statistics.median(rates)


def time_loader(paths, runs, workers):
    loader = torch.utils.data.DataLoader(Files(paths), batch_size=32, num_workers=workers)
    rates = []
    for _ in range(runs):
        start = time.perf_counter()
        for batch in loader:
            pass
        rates.append(len(paths) / (time.perf_counter() - start))
    return statistics.median(rates)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--out", type=Path, default=ROOT / "benches/results/preprocess.json")
    args = parser.parse_args()

    cores = os.cpu_count() or 1
    subprocess.run(
        ["cargo", "build", "--release", "-q", "-p", "storyteller-data", "--example", "preprocess_throughput"],
        cwd=ROOT, check=True,
    )
    target = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
    binary = target / "release" / "examples" / "preprocess_throughput"
    with tempfile.TemporaryDirectory() as tmp:
        paths = write_images(Path(tmp), args.images)
        python_1 = time_python(paths, args.runs)
        python_all = time_loader(paths, args.runs, cores)
        rust = json.loads(subprocess.run([str(binary), tmp, str(args.runs)], check=True,
                                         capture_output=True, text=True).stdout)
    result = {
        "images": args.images,
        "image_size": "500x375 and 375x500 JPEG q90",
        "transform": "Resize(256, bilinear, antialias) + CenterCrop(224) + ToTensor + Normalize",
        "cores": cores,
        "machine": platform.processor() or platform.machine(),
        "versions": {"python": platform.python_version(), "torch": torch.__version__,
                     "torchvision": torchvision.__version__, "pillow": PIL.__version__},
        "images_per_s": {
            "storyteller_1_thread": round(rust["images_per_s_1_thread"], 1),
            "storyteller_all_threads": round(rust["images_per_s_all_threads"], 1),
            "pil_torchvision_1_process": round(python_1, 1),
            f"pil_torchvision_dataloader_{cores}_workers": round(python_all, 1),
        },
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    for name, rate in result["images_per_s"].items():
        print(f"{name:<40} {rate:>8.1f} images/s")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    sys.exit(main())
