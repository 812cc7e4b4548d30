#!/usr/bin/env python3
"""Writes the metric test vectors: captions plus the scores pycocoevalcap and NLTK give them.

    python make_vectors.py            # (re)write tests/data/vectors.json
    python make_vectors.py --check    # regenerate in memory, fail if the stored file drifted

The captions are generated from a seeded grammar, so the inputs are reproducible;
the expected values come from the reference implementations installed from PyPI
(versions pinned in scripts/requirements-test.txt). Captions are already
tokenised and joined by single spaces, as pycocoevalcap's scorers expect.
"""

import argparse
import json
import math
import random
import sys
import warnings
from collections import Counter
from pathlib import Path

import nltk
import numpy as np
import pycocoevalcap
from nltk.translate.bleu_score import SmoothingFunction, corpus_bleu, sentence_bleu
from pycocoevalcap.bleu.bleu import Bleu
from pycocoevalcap.cider.cider import Cider
from pycocoevalcap.rouge.rouge import Rouge

OUT = Path(__file__).resolve().parent.parent / "tests" / "data" / "vectors.json"
TOLERANCE = 1e-12

SUBJECTS = ["a man", "a woman", "two dogs", "a little girl", "a group of people", "an old man",
            "a boy", "three children", "a black dog", "a young woman", "the team", "a cyclist"]
VERBS = ["is riding", "are playing", "is standing", "walks", "is jumping", "are sitting",
         "is running", "is holding", "looks", "climbs", "is wearing", "plays"]
OBJECTS = ["a bike", "in the park", "on the grass", "near the water", "with a ball", "a red shirt",
           "on a bench", "in the snow", "down the street", "at the beach", "a blue hat", "the stairs"]
EXTRAS = ["while smiling", "in the sun", "together", "at night", "with friends", "", "", ""]
UNICODE = ["café", "naïve", "straße", "日本", "niño", "über", "façade", "крыша"]
FILLER = "the a of in on with and".split()


def caption(rng):
    words = " ".join([rng.choice(SUBJECTS), rng.choice(VERBS), rng.choice(OBJECTS), rng.choice(EXTRAS)])
    return words.split()


def perturb(rng, tokens):
    """A hypothesis near a reference: some words replaced, dropped, inserted or swapped."""
    out = list(tokens)
    for _ in range(rng.randint(0, 4)):
        op = rng.random()
        i = rng.randrange(len(out)) if out else 0
        if op < 0.3 and out:
            out[i] = rng.choice(FILLER + caption(rng))
        elif op < 0.5 and len(out) > 1:
            del out[i]
        elif op < 0.8:
            out.insert(i, rng.choice(FILLER + caption(rng)))
        elif len(out) > 1:
            j = rng.randrange(len(out))
            out[i], out[j] = out[j], out[i]
    return out


def edge_case(rng, kind, refs):
    longest = max(len(r) for r in refs)
    if kind == "one_word":
        return [rng.choice(refs[0])]
    if kind == "repeated":
        return [rng.choice(refs[0])] * rng.randint(3, 9)
    if kind == "longer_than_all":
        return refs[0] + caption(rng) + caption(rng)[: max(1, longest - len(refs[0]))]
    if kind == "no_overlap":
        return ["zzz", "qqq", "xyzzy", "plugh"][: rng.randint(1, 4)]
    if kind == "identical":
        return list(rng.choice(refs))
    if kind == "unicode":
        hyp = perturb(rng, refs[0])
        hyp.insert(rng.randrange(len(hyp) + 1), rng.choice(UNICODE))
        return hyp
    if kind == "empty":
        return []
    raise ValueError(kind)


EDGE_KINDS = ["one_word", "repeated", "longer_than_all", "no_overlap", "identical", "unicode", "empty"]


def make_main(rng, images):
    refs, hyps, kinds = [], [], []
    for i in range(images):
        image_refs = [caption(rng) for _ in range(5)]
        if rng.random() < 0.15:
            image_refs[rng.randrange(5)].insert(0, rng.choice(UNICODE))
        kind = EDGE_KINDS[i % len(EDGE_KINDS)] if i % 6 == 0 else "perturbed"
        hyp = perturb(rng, rng.choice(image_refs)) if kind == "perturbed" else edge_case(rng, kind, image_refs)
        refs.append([" ".join(r) for r in image_refs])
        hyps.append(" ".join(hyp))
        kinds.append(kind)
    return {"refs": refs, "hyps": hyps, "kinds": kinds}


def coco_scores(refs, hyps):
    gts = {i: r for i, r in enumerate(refs)}
    res = {i: [h] for i, h in enumerate(hyps)}
    bleu, bleu_per_image = Bleu(4).compute_score(gts, res, verbose=0)
    rouge, rouge_per_image = Rouge().compute_score(gts, res)
    cider, cider_per_image = Cider().compute_score(gts, res)
    return {
        "bleu": [float(b) for b in bleu],
        "bleu_per_image": [[float(bleu_per_image[k][i]) for k in range(4)] for i in range(len(hyps))],
        "rouge_l": float(rouge),
        "rouge_l_per_image": [float(s) for s in rouge_per_image],
        "cider_d": float(cider),
        "cider_d_per_image": [float(s) for s in cider_per_image],
    }


CUMULATIVE = [(1.0,), (0.5, 0.5), (1 / 3, 1 / 3, 1 / 3), (0.25, 0.25, 0.25, 0.25)]


def nltk_scores(refs, hyps, auto_reweigh=False, sentence_images=0):
    list_of_refs = [[r.split() for r in image_refs] for image_refs in refs]
    hyp_tokens = [h.split() for h in hyps]
    smoother = SmoothingFunction()
    corpus, sentence = {}, []
    for method in range(8):
        fn = getattr(smoother, f"method{method}")
        try:
            corpus[f"method{method}"] = [float(x) for x in corpus_bleu(
                list_of_refs, hyp_tokens, weights=CUMULATIVE, smoothing_function=fn, auto_reweigh=auto_reweigh)]
        except (AssertionError, ZeroDivisionError) as err:
            corpus[f"method{method}"] = {"error": type(err).__name__}
    for i in range(sentence_images):
        row = {}
        for method in range(8):
            fn = getattr(smoother, f"method{method}")
            try:
                row[f"method{method}"] = [float(x) for x in sentence_bleu(
                    list_of_refs[i], hyp_tokens[i], weights=CUMULATIVE, smoothing_function=fn)]
            except (AssertionError, ZeroDivisionError) as err:
                row[f"method{method}"] = {"error": type(err).__name__}
        sentence.append(row)
    return {"auto_reweigh": auto_reweigh, "corpus": corpus, "sentence": sentence}


def overlap_scores(refs, hyps):
    """docs/evaluation.md's precision/recall/F1, written independently of the Rust code."""
    per_image, pooled = [], [0, 0, 0]
    for image_refs, hyp in zip(refs, hyps):
        h = hyp.split()
        best = None
        for index, ref in enumerate(image_refs):
            r = ref.split()
            overlap = sum((Counter(h) & Counter(r)).values())
            p = overlap / len(h) if h else 0.0
            rc = overlap / len(r) if r else 0.0
            f1 = 2 * p * rc / (p + rc) if p + rc else 0.0
            if best is None or f1 > best[2]:
                best = (p, rc, f1, index, overlap, len(r))
        per_image.append(list(best[:4]))
        pooled[0] += best[4]
        pooled[1] += len(h)
        pooled[2] += best[5]
    n = len(per_image)
    macro = [sum(x[k] for x in per_image) / n for k in range(3)]
    mp = pooled[0] / pooled[1] if pooled[1] else 0.0
    mr = pooled[0] / pooled[2] if pooled[2] else 0.0
    mf = 2 * mp * mr / (mp + mr) if mp + mr else 0.0
    return {"macro": macro, "micro": [mp, mr, mf], "per_image": per_image}


def corpus_entry(name, data, auto_reweigh=False, sentence_images=0):
    refs, hyps = data["refs"], data["hyps"]
    return {
        "name": name,
        "refs": refs,
        "hyps": hyps,
        "kinds": data.get("kinds", []),
        "coco": coco_scores(refs, hyps),
        "nltk": nltk_scores(refs, hyps, auto_reweigh, sentence_images),
        "overlap": overlap_scores(refs, hyps),
    }


def build():
    rng = random.Random(20261126)
    main = make_main(rng, 600)
    short = {"refs": [["a dog runs", "the dog"], ["cat"], ["a b c d e"]], "hyps": ["a dog", "cat", "a"]}
    single = {"refs": [["a man rides a horse on the beach", "a person riding a horse"]],
              "hyps": ["a man riding a horse"]}
    repeats = {"refs": [["the cat sat on the mat", "there is a cat on the mat"], ["a b a b a b"]],
               "hyps": ["the the the the the the the", "a b a b a b a b a b"]}
    corpora = [
        corpus_entry("main", main, sentence_images=120),
        corpus_entry("short_auto_reweigh", short, auto_reweigh=True, sentence_images=3),
        corpus_entry("single_image", single, sentence_images=1),
        corpus_entry("repeats", repeats, sentence_images=2),
    ]
    return {
        "generator": "crates/storyteller-metrics/scripts/make_vectors.py",
        "versions": {"pycocoevalcap": getattr(pycocoevalcap, "__version__", "1.2"),
                     "nltk": nltk.__version__, "numpy": np.__version__,
                     "python": sys.version.split()[0]},
        "cumulative_weights": [list(w) for w in CUMULATIVE],
        "corpora": corpora,
    }


def drift(stored, fresh, path="$"):
    """Where two JSON values differ: inputs exactly, floats beyond TOLERANCE."""
    if isinstance(stored, float) or isinstance(fresh, float):
        if not (isinstance(stored, (int, float)) and isinstance(fresh, (int, float))):
            return [f"{path}: {stored!r} != {fresh!r}"]
        same = (math.isnan(stored) and math.isnan(fresh)) or abs(stored - fresh) <= TOLERANCE
        return [] if same else [f"{path}: stored {stored!r}, now {fresh!r}"]
    if isinstance(stored, dict) and isinstance(fresh, dict):
        if stored.keys() != fresh.keys():
            return [f"{path}: keys {sorted(stored)} != {sorted(fresh)}"]
        return [d for k in stored for d in drift(stored[k], fresh[k], f"{path}.{k}")]
    if isinstance(stored, list) and isinstance(fresh, list):
        if len(stored) != len(fresh):
            return [f"{path}: length {len(stored)} != {len(fresh)}"]
        return [d for i, (a, b) in enumerate(zip(stored, fresh)) for d in drift(a, b, f"{path}[{i}]")]
    return [] if stored == fresh else [f"{path}: {stored!r} != {fresh!r}"]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="fail if the stored vectors drifted")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    fresh = build()
    if args.check:
        stored = json.loads(OUT.read_text(encoding="utf-8"))
        stored.pop("versions", None)
        versions = fresh.pop("versions")
        problems = drift(stored, json.loads(json.dumps(fresh)))
        if problems:
            print(f"{OUT}: {len(problems)} values drifted from the references ({versions}):", file=sys.stderr)
            for p in problems[:20]:
                print("  " + p, file=sys.stderr)
            sys.exit(1)
        print(f"{OUT}: matches pycocoevalcap and NLTK ({versions}), tolerance {TOLERANCE}")
        return
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(fresh, ensure_ascii=False, separators=(",", ":")) + "\n", encoding="utf-8")
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
