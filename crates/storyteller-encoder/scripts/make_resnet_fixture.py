"""Reference fixture for the ResNet-50 port: a seeded random-init torchvision
ResNet-50 and its outputs, computed by PyTorch in float32 on the CPU.

    python make_resnet_fixture.py --out DIR          # large fixture (~650 MB), skipped when current
    python make_resnet_fixture.py --crafted DIR      # tiny malformed checkpoints for error tests

Writes into --out:
  resnet50-random.pth          torch.save(state_dict) in the zip format torchvision releases use
  resnet50-random.safetensors  the same state dict (fc.* and num_batches_tracked included)
  resnet50-reference.safetensors
      input_<case> / output_<case> [N, 2048] / features_<case> [N, 2048, h, w] (64 px case only)
      for fixed random tensors (preprocessing bypassed) and for scikit-image sample
      photos run through torchvision's full preprocessing (Resize(256), CenterCrop(224),
      ToTensor, Normalize(ImageNet)); metadata: version, torch, torchvision, cases,
      weights_sha256 (ResNet::weights_hash recomputed in Python).
      grid<g>_<case> [N, g*g, 2048]: AdaptiveAvgPool2d((g, g)) of the last map, regions
      row-major (2 and 3 on the 64 px case, 7 and 3 on the 224 px case)
  resnet101-random.pth, resnet152-random.pth   the deeper networks, built the same way
  resnet101-reference.safetensors, resnet152-reference.safetensors
      input_b2_64 / output_b2_64 / grid2_b2_64 for each
  photo_<name>.png             the sample photos, as files for the full-pipeline test
  VERSION-encoder              the version stamp; a current stamp skips regeneration

The weights are random (a port's correctness does not need trained weights), but every
BatchNorm has randomised running statistics and affine parameters, so a wrong key mapping
or a wrong epsilon shows up in the outputs.
"""
import argparse
import hashlib
import json
import os
import struct
import sys
import tempfile

import numpy as np
import torch
import torch.nn as nn
import torchvision
from safetensors.torch import save_file

VERSION = "encoder-fixture-v3"
SEED = 20160610  # He et al., CVPR 2016
PHOTOS = ["astronaut", "coffee", "chelsea", "rocket"]


# Spatial features: torch's AdaptiveAvgPool2d((g, g)) of the last map, as [N, g*g, 2048]
# (regions row-major), for (case, grid) pairs: exact division, uneven bins, more bins
# than cells.
GRIDS = [("b2_64", 2), ("b2_64", 3), ("b1_224", 7), ("b1_224", 3)]
# The deeper networks, same blocks in deeper stages; checked on the 64 px case.
DEEPER = ["resnet101", "resnet152"]


def make_model(arch="resnet50"):
    torch.manual_seed(SEED)
    model = getattr(torchvision.models, arch)(weights=None)
    # Calibrate the BatchNorm statistics on a random batch (so activations stay in a sane
    # range through 16 blocks), then randomise statistics and affine parameters.
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.momentum = 1.0
    model.train()
    with torch.no_grad():
        model(torch.randn(8, 3, 96, 96))
    g = torch.Generator().manual_seed(SEED + 1)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                n = m.num_features
                std = m.running_var.sqrt()
                m.running_mean += 0.2 * std * torch.randn(n, generator=g)
                m.running_var *= 0.5 + 1.5 * torch.rand(n, generator=g)
                m.weight.copy_(0.5 + torch.rand(n, generator=g))
                m.bias.copy_(0.2 * torch.randn(n, generator=g))
                m.num_batches_tracked.fill_(1000)
                m.momentum = 0.1
    return model.eval()


def weights_hash(sd):
    """storyteller_encoder::ResNet::weights_hash, recomputed from the state dict."""
    h = hashlib.sha256()
    for k in sorted(k for k in sd if not k.startswith("fc.") and "num_batches_tracked" not in k):
        t = sd[k].float().contiguous()
        h.update(k.encode() + b"\0" + struct.pack("<Q", t.dim()))
        h.update(struct.pack(f"<{t.dim()}Q", *t.shape) + t.numpy().tobytes())
    return "sha256:" + h.hexdigest()


def atomic(path, write):
    d = os.path.dirname(path)
    fd, tmp = tempfile.mkstemp(dir=d, prefix="tmp_", suffix=os.path.splitext(path)[1])
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def photo_inputs(out):
    from PIL import Image
    import skimage.data
    from torchvision import transforms

    preprocess = transforms.Compose([
        transforms.Resize(256),
        transforms.CenterCrop(224),
        transforms.ToTensor(),
        transforms.Normalize(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225]),
    ])
    cases = {}
    for name in PHOTOS:
        arr = getattr(skimage.data, name)()
        img = Image.fromarray(arr).convert("RGB")
        path = os.path.join(out, f"photo_{name}.png")
        atomic(path, lambda p: img.save(p, format="PNG"))
        # Decode the written file, as the Rust pipeline will.
        cases[f"photo_{name}"] = preprocess(Image.open(path).convert("RGB"))[None]
    return cases


def write_fixture(out):
    os.makedirs(out, exist_ok=True)
    stamp = os.path.join(out, "VERSION-encoder")
    if os.path.exists(stamp) and open(stamp).read().strip() == VERSION:
        names = ["resnet50-random.pth", "resnet50-random.safetensors", "resnet50-reference.safetensors"]
        names += [f"{arch}-{kind}" for arch in DEEPER for kind in ["random.pth", "reference.safetensors"]]
        if all(os.path.exists(os.path.join(out, n)) for n in names):
            print(f"encoder fixture {VERSION} is current in {out}")
            return
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    model = make_model()
    sd = {k: v.contiguous() for k, v in model.state_dict().items()}
    atomic(os.path.join(out, "resnet50-random.pth"), lambda p: torch.save(sd, p))
    atomic(os.path.join(out, "resnet50-random.safetensors"), lambda p: save_file(sd, p))

    g = torch.Generator().manual_seed(SEED + 2)
    cases = {
        "b2_64": torch.randn(2, 3, 64, 64, generator=g),
        "b1_224": torch.randn(1, 3, 224, 224, generator=g),
        "b1_45x61": torch.randn(1, 3, 45, 61, generator=g),
        "b1_32": torch.randn(1, 3, 32, 32, generator=g),
    }
    cases.update(photo_inputs(out))

    body = nn.Sequential(*list(model.children())[:-2])  # everything before avgpool, fc
    tensors = {}
    with torch.inference_mode():
        for name, x in cases.items():
            x = x.contiguous().float()
            fmap = body(x)
            pooled = torch.flatten(model.avgpool(fmap), 1)
            tensors[f"input_{name}"] = x
            tensors[f"output_{name}"] = pooled.contiguous()
            if name == "b2_64":
                tensors[f"features_{name}"] = fmap.contiguous()
            for case, grid in GRIDS:
                if case == name:
                    tensors[f"grid{grid}_{name}"] = grid_features(fmap, grid)
    meta = {
        "version": VERSION,
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "cases": json.dumps(sorted(cases)),
        "weights_sha256": weights_hash(sd),
    }
    atomic(os.path.join(out, "resnet50-reference.safetensors"),
           lambda p: save_file(tensors, p, metadata=meta))
    for arch in DEEPER:
        deeper = make_model(arch)
        dsd = {k: v.contiguous() for k, v in deeper.state_dict().items()}
        atomic(os.path.join(out, f"{arch}-random.pth"), lambda p: torch.save(dsd, p))
        dbody = nn.Sequential(*list(deeper.children())[:-2])
        with torch.inference_mode():
            x = cases["b2_64"].contiguous().float()
            fmap = dbody(x)
            dtensors = {
                "input_b2_64": x,
                "output_b2_64": torch.flatten(deeper.avgpool(fmap), 1).contiguous(),
                "grid2_b2_64": grid_features(fmap, 2),
            }
        dmeta = dict(meta, weights_sha256=weights_hash(dsd), cases=json.dumps(["b2_64"]))
        atomic(os.path.join(out, f"{arch}-reference.safetensors"),
               lambda p: save_file(dtensors, p, metadata=dmeta))
        del deeper, dsd
    atomic(stamp, lambda p: open(p, "w").write(VERSION + "\n"))
    print(f"wrote encoder fixture {VERSION} to {out}")


def grid_features(fmap, grid):
    pooled = nn.AdaptiveAvgPool2d((grid, grid))(fmap)
    return pooled.flatten(2).transpose(1, 2).contiguous()


def write_crafted(out):
    """Tiny malformed checkpoints (a few KB) for the weight-loading error tests."""
    os.makedirs(out, exist_ok=True)
    g = torch.Generator().manual_seed(SEED + 3)
    # conv1 has the wrong kernel size; everything else is absent.
    torch.save({"conv1.weight": torch.randn(64, 3, 2, 2, generator=g)},
               os.path.join(out, "wrong_shape.pth"))
    # conv1 is right; bn1 and everything after it are missing.
    torch.save({"conv1.weight": torch.randn(64, 3, 7, 7, generator=g)},
               os.path.join(out, "missing_keys.pth"))
    save_file({"conv1.weight": torch.randn(64, 3, 2, 2, generator=g)},
              os.path.join(out, "wrong_shape.safetensors"))
    print(f"wrote crafted checkpoints to {out}")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", help="directory for the large fixture")
    p.add_argument("--crafted", help="directory for the tiny malformed checkpoints")
    a = p.parse_args()
    if not a.out and not a.crafted:
        p.error("give --out and/or --crafted")
    if a.crafted:
        write_crafted(a.crafted)
    if a.out:
        write_fixture(a.out)


if __name__ == "__main__":
    sys.exit(main())
