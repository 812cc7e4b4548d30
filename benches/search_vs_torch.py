#!/usr/bin/env python3
"""Greedy and beam-3 search on the CPU: ours (Burn, Flex) next to PyTorch, alternating, one run.

The PyTorch side is `CaptionDecoder`, `greedy` and `beam_search` of benches/torch_reference.py
(the repository's PyTorch reference). Shapes: vocabulary 8000, embedding 256, hidden 512,
features 2048, 20 tokens, width 3; every caption runs all 20 steps on both sides. Our side is
`search-compare` (benches/search_compare.rs): the library's Show-and-Tell decoder prepared
for search (`SearchDecoder`, the embedding folded into the input gates) with greedy search
taking the best token from the logits. The harness (alternation, medians, the table) is
benches/side_by_side.py's. Run from the repository root:

    cargo build --release -p storyteller-benches --bin search-compare
    python benches/search_vs_torch.py [--batches 1,32,1024] [--runs 3] [--rounds 3] [--threads 1]
        [--out benches/results/search-cpu.txt]
"""
import pathlib
import sys

import torch

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import side_by_side  # noqa: E402
from side_by_side import median_seconds  # noqa: E402
from torch_reference import D_FEATURE, CaptionDecoder, beam_search, greedy  # noqa: E402

BUILD = "cargo build --release -p storyteller-benches --bin search-compare"
SEARCHES = {"greedy": greedy, "beam3": beam_search}


def torch_seconds(part, batch, runs):
    torch.manual_seed(0)
    decoder = CaptionDecoder().eval()
    features = torch.randn(batch, D_FEATURE)
    search = SEARCHES[part]  # both run under torch.inference_mode
    return median_seconds(lambda: search(decoder, features), runs)


def main():
    side_by_side.main(
        description=__doc__.splitlines()[0],
        title="Greedy and beam-3 search, Show-and-Tell LSTM",
        shapes="vocab 8000, embed 256, hidden 512, features 2048, 20 tokens (no early stop), beam width 3; random weights",
        binary="search-compare",
        build=BUILD,
        parts=tuple(SEARCHES),
        default_batches="1,32,1024",
        torch_seconds=torch_seconds,
        example_out="benches/results/search-cpu.txt",
    )


if __name__ == "__main__":
    main()
