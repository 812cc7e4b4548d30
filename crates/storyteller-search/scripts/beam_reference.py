"""Reference greedy and beam search in PyTorch, for tests/torch_reference.rs.

Builds a small Show-and-Tell style decoder with seeded random weights (feature -> tanh(Linear)
initial h and c, embedding, one LSTM cell, output Linear, log_softmax), decodes a few random
image features with greedy and beam search, and writes weights, features and results to
tests/data/beam_reference.json. The search is written independently of the Rust code, plainly
(one image at a time, a stable sort over all width * vocab candidates), and follows the
algorithm documented in docs/search.md:

  * step 0 expands the single <start> beam; later steps score every (beam, token) pair by
    cumulative log-probability (float32), best first, ties to the lower beam * V + token;
  * walking the first 2 * width candidates: <end> ranked < width -> finished hypothesis,
    other tokens fill the alive beams up to width;
  * an image is done with >= width finished hypotheses, or no alive beam, or after max_len steps;
  * result: finished by score = log_prob / len**alpha (len counts <end>), stable, then alive
    (unfinished) beams by score if fewer than n_best finished; first n_best.

    python beam_reference.py            # rewrite the fixture
    python beam_reference.py --check    # regenerate in memory, fail if the stored one drifted
"""
import argparse
import json
import math
import pathlib
import sys

import torch

HERE = pathlib.Path(__file__).resolve().parent
FIXTURE = HERE.parent / "tests" / "data" / "beam_reference.json"

V, E, H, F, N = 24, 8, 16, 12, 8
START, END = 1, 2
CASES = [
    {"search": "greedy", "max_len": 12},
    {"search": "beam", "width": 1, "max_len": 12, "length_penalty": 0.0, "n_best": 1},
    {"search": "beam", "width": 3, "max_len": 12, "length_penalty": 0.0, "n_best": 3},
    {"search": "beam", "width": 5, "max_len": 12, "length_penalty": 0.7, "n_best": 2},
    {"search": "beam", "width": 4, "max_len": 4, "length_penalty": 1.0, "n_best": 4},
]


def build():
    torch.manual_seed(20261126)
    m = torch.nn.ModuleDict(
        {
            "init_h": torch.nn.Linear(F, H),
            "init_c": torch.nn.Linear(F, H),
            "embed": torch.nn.Embedding(V, E),
            "cell": torch.nn.LSTMCell(E, H),
            "out": torch.nn.Linear(H, V),
        }
    )
    with torch.no_grad():
        # Peakier distributions than the default init: with this seed beams finish at lengths
        # 2..11 and some never do, so both the finished and the unfinished paths are compared.
        m["cell"].weight_ih.mul_(3.0)
        m["cell"].weight_hh.mul_(3.0)
        m["out"].weight.mul_(4.0)
    features = torch.randn(N, F)
    return m.eval(), features


def init_state(m, feats):
    return torch.tanh(m["init_h"](feats)), torch.tanh(m["init_c"](feats))


def step(m, tokens, h, c):
    h, c = m["cell"](m["embed"](tokens), (h, c))
    return torch.log_softmax(m["out"](h), dim=-1), h, c


def greedy(m, feat, max_len):
    h, c = init_state(m, feat[None])
    tok = torch.tensor([START])
    tokens, log_prob, finished = [], torch.zeros((), dtype=torch.float32), False
    for _ in range(max_len):
        lp, h, c = step(m, tok, h, c)
        # argmax with ties to the lowest id: a stable descending sort
        best = int(torch.sort(lp[0], descending=True, stable=True).indices[0])
        log_prob = log_prob + lp[0, best]
        if best == END:
            finished = True
            break
        tokens.append(best)
        tok = torch.tensor([best])
    lp = float(log_prob)
    return [{"tokens": tokens, "log_prob": lp, "score": lp, "finished": finished}]


def penalized(log_prob, length, alpha):
    return log_prob if alpha == 0 else log_prob / length**alpha


def beam(m, feat, width, max_len, alpha, n_best):
    h, c = init_state(m, feat[None])
    alive = [([], torch.zeros((), dtype=torch.float32))]  # (tokens, cumulative log-prob)
    finished = []
    inputs = torch.tensor([START])
    for _ in range(max_len):
        lp, h, c = step(m, inputs, h, c)
        scores = torch.stack([s for _, s in alive])
        cand = (scores[:, None] + lp).reshape(-1)  # float32, beam-major
        order = torch.sort(cand, descending=True, stable=True).indices[: 2 * width]
        new, rank = [], 0
        for idx in order.tolist():
            value = cand[idx]
            if value == -math.inf:
                break
            if len(new) == width and rank >= width:
                break
            b, t = divmod(idx, V)
            if t == END:
                if rank < width:
                    finished.append((alive[b][0], value))
            elif len(new) < width:
                new.append((b, t, value))
            rank += 1
        if len(finished) >= width or not new:
            alive = []
            break
        rows = torch.tensor([b for b, _, _ in new])
        h, c = h[rows], c[rows]
        alive = [(alive[b][0] + [t], v) for b, t, v in new]
        inputs = torch.tensor([t for _, t, _ in new])

    def hyp(tokens, value, done):
        lp = float(value)
        return {
            "tokens": tokens,
            "log_prob": lp,
            "score": penalized(lp, len(tokens) + int(done), alpha),
            "finished": done,
        }

    ranked = sorted((hyp(t, v, True) for t, v in finished), key=lambda x: -x["score"])
    if len(ranked) < n_best:
        ranked += sorted((hyp(t, v, False) for t, v in alive), key=lambda x: -x["score"])
    return ranked[:n_best]


def generate():
    m, features = build()
    weights = {
        "init_h.weight": m["init_h"].weight,
        "init_h.bias": m["init_h"].bias,
        "init_c.weight": m["init_c"].weight,
        "init_c.bias": m["init_c"].bias,
        "embed.weight": m["embed"].weight,
        "cell.weight_ih": m["cell"].weight_ih,
        "cell.weight_hh": m["cell"].weight_hh,
        "cell.bias_ih": m["cell"].bias_ih,
        "cell.bias_hh": m["cell"].bias_hh,
        "out.weight": m["out"].weight,
        "out.bias": m["out"].bias,
    }
    cases = []
    with torch.inference_mode():
        for case in CASES:
            results = []
            for feat in features:
                if case["search"] == "greedy":
                    results.append(greedy(m, feat, case["max_len"]))
                else:
                    results.append(
                        beam(m, feat, case["width"], case["max_len"], case["length_penalty"], case["n_best"])
                    )
            cases.append({**case, "results": results})
    return {
        "generator": "crates/storyteller-search/scripts/beam_reference.py",
        "torch": torch.__version__.split("+")[0],
        "sizes": {"vocab_size": V, "d_embed": E, "d_hidden": H, "d_feature": F, "images": N},
        "start_token": START,
        "end_token": END,
        "weights": {k: {"shape": list(w.shape), "data": w.detach().reshape(-1).tolist()} for k, w in weights.items()},
        "features": {"shape": list(features.shape), "data": features.reshape(-1).tolist()},
        "cases": cases,
    }


def drift(stored, fresh):
    """Differences that matter: any weight or token, or a score beyond 1e-5."""
    problems = []
    if stored["weights"] != fresh["weights"] or stored["features"] != fresh["features"]:
        problems.append("weights or features differ (seeded RNG changed?)")
    for a, b in zip(stored["cases"], fresh["cases"]):
        for i, (ra, rb) in enumerate(zip(a["results"], b["results"])):
            if [h["tokens"] for h in ra] != [h["tokens"] for h in rb]:
                problems.append(f"case {a} image {i}: tokens differ")
            for ha, hb in zip(ra, rb):
                for key in ("log_prob", "score"):
                    if abs(ha[key] - hb[key]) > 1e-5:
                        problems.append(f"case {a['search']} image {i}: {key} {ha[key]} vs {hb[key]}")
    if len(stored["cases"]) != len(fresh["cases"]):
        problems.append("number of cases differs")
    return problems


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--check", action="store_true", help="fail if the stored fixture drifted")
    a = p.parse_args()
    fresh = generate()
    if a.check:
        stored = json.loads(FIXTURE.read_text())
        problems = drift(stored, fresh)
        for problem in problems:
            print("drift:", problem, file=sys.stderr)
        if problems:
            sys.exit(f"{FIXTURE} drifted; rerun {__file__} and review the diff")
        print(f"{FIXTURE.name}: up to date")
        return
    FIXTURE.write_text(json.dumps(fresh, separators=(",", ":")) + "\n")
    finished = sum(h["finished"] for c in fresh["cases"] for r in c["results"] for h in r)
    total = sum(len(r) for c in fresh["cases"] for r in c["results"])
    print(f"wrote {FIXTURE} ({finished}/{total} hypotheses finished)")


if __name__ == "__main__":
    main()
