#!/usr/bin/env python3
"""Reference fixtures for storyteller-data: torchvision preprocessing of real photos.

Writes into $STORYTELLER_FIXTURES/data/ (default ~/.cache/storyteller/fixtures/data/):
  - scikit-image sample photos as files: PNG (RGB, grey, RGBA) and JPEG;
  - preprocess_reference.safetensors: for each file and crop size, the output
    of torchvision's Resize(crop*256//224) + CenterCrop(crop) + ToTensor +
    Normalize(ImageNet) on PIL.Image.open(file).convert("RGB"), f32 [3, crop, crop],
    named "<file>@<crop>".

Usage: python make_fixtures.py [OUT_DIR]
"""

import json
import os
import sys
from pathlib import Path

import numpy as np
import skimage.data
import torch
import torchvision
from PIL import Image
from safetensors.torch import save_file
from torchvision import transforms as T

MEAN = [0.485, 0.456, 0.406]
STD = [0.229, 0.224, 0.225]
CROPS = [224, 64]


def main() -> None:
    default = Path(os.environ.get("STORYTELLER_FIXTURES", Path.home() / ".cache/storyteller/fixtures"))
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else default / "data"
    out.mkdir(parents=True, exist_ok=True)

    files = {}
    for name in ["astronaut", "coffee", "chelsea", "rocket", "camera"]:
        array = getattr(skimage.data, name)()
        files[f"{name}.png"] = Image.fromarray(array)
    astronaut = skimage.data.astronaut()
    alpha = np.tile(np.linspace(0, 255, astronaut.shape[1], dtype=np.uint8), (astronaut.shape[0], 1))
    files["astronaut_rgba.png"] = Image.fromarray(np.dstack([astronaut, alpha]), "RGBA")
    # A portrait-shaped, odd-sized crop so the centre crop rounds (Python's round, half to even).
    files["chelsea_portrait.png"] = Image.fromarray(skimage.data.chelsea()[:, 101:340])
    for name, image in files.items():
        image.save(out / name)
    Image.fromarray(skimage.data.coffee()).save(out / "coffee_q90.jpg", quality=90)
    files["coffee_q90.jpg"] = None
    # CMYK JPEG (Adobe, inverted), as print workflows write them.
    Image.fromarray(skimage.data.chelsea()).convert("CMYK").save(out / "chelsea_cmyk.jpg", quality=95)
    files["chelsea_cmyk.jpg"] = None

    tensors = {}
    for name in files:
        with Image.open(out / name) as image:
            rgb = image.convert("RGB")
        for crop in CROPS:
            transform = T.Compose(
                [
                    T.Resize(crop * 256 // 224, interpolation=T.InterpolationMode.BILINEAR, antialias=True),
                    T.CenterCrop(crop),
                    T.ToTensor(),
                    T.Normalize(MEAN, STD),
                ]
            )
            tensors[f"{name}@{crop}"] = transform(rgb).contiguous()
    metadata = {
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "crops": json.dumps(CROPS),
    }
    save_file(tensors, out / "preprocess_reference.safetensors", metadata=metadata)
    print(f"wrote {len(tensors)} reference tensors for {len(files)} images to {out}")


if __name__ == "__main__":
    main()
