"""PyTorch reference for the soft-attention caption decoder, for the attention parity tests.

Builds a Show, Attend and Tell decoder at test size with seeded random weights, under the
parameter names of the widely used PyTorch tutorial (`DecoderWithAttention`):

  attention.encoder_att  Linear(F, A)   attention.decoder_att  Linear(H, A)
  attention.full_att     Linear(A, 1)   embedding              Embedding(V, E)
  decode_step            LSTMCell(E + F, H), gates i,f,g,o, two bias vectors
  init_h, init_c         Linear(F, H)   f_beta                 Linear(H, F)
  fc                     Linear(H, V)   (dropout before fc: a no-op in eval)

One step, from the hidden state (h, c) before it and the image's regions encoder_out [R, F]:

  e       = full_att(relu(encoder_att(encoder_out) + decoder_att(h)))        [R]
  alpha   = softmax(e over regions);  context = sum_r alpha[r] * encoder_out[r]
  h, c    = decode_step(cat([embedding(token), sigmoid(f_beta(h)) * context]), (h, c))
  logits  = fc(h)

with h0 = init_h(mean_r encoder_out), c0 = init_c(mean_r encoder_out) (no tanh). Features are
standard normal, encoder_out = torch.randn(N, R, F), R = 4 regions (a 2x2 grid, row-major).

The vocabulary uses the tutorial's word map: the 26 words of WORDS get ids 1..26 in order,
<unk> = 27, <start> = 28, <end> = 29, <pad> = 0; every id in this script and its fixtures is
such a tutorial id. The teacher-forced batch holds one caption w1..wn per image: inputs are
<start> w1 .. wn, targets w1 .. wn <end>, both padded with <pad> to T; all T steps are run
for every row (the batch is not shrunk by decode length as the tutorial does). The loss is

  cross_entropy = mean over positions (n, t) with targets[n, t] != <pad>
                  of -log_softmax(logits[n, t])[targets[n, t]]
  regulariser   = alpha_c * mean over images n of
                  sum over regions r of (1 - sum over t with targets[n, t] != <pad> of alpha[n, t, r])^2
  total         = cross_entropy + regulariser,   alpha_c = 1.0

(the paper's doubly stochastic regulariser: the tutorial takes the mean over regions instead of
the sum). Greedy and beam search follow the semantics of the search crate's reference
(crates/storyteller-search/scripts/beam_reference.py, docs/search.md), the state being (h, c)
together with the image's encoder_out, which a beam reorders and expands with h and c.

Writes

  tests/data/attention_reference.safetensors  the state_dict (the file the Rust test imports)
  tests/data/attention_reference.pth          the same state_dict, torch.save'd (a plain dict)
  tests/data/attention_reference.json         word map, features, the teacher-forced batch, its
                                              logits, alphas and loss, greedy / beam-3 results

Exporting a tutorial checkpoint: the tutorial's BEST_checkpoint.pth.tar pickles whole modules,
so it loads only where the tutorial's models.py is importable. Export its decoder's state_dict
there once, with

  torch.save(torch.load("BEST_checkpoint.pth.tar", weights_only=False)["decoder"].state_dict(), "decoder.pth")

    python attention_reference.py            # rewrite the fixtures
    python attention_reference.py --check    # regenerate in memory, fail if the stored ones drifted
"""
import argparse
import json
import math
import pathlib
import sys

import torch
from fixture_drift import logits_drift, same_loss
from safetensors.torch import load_file, save_file

HERE = pathlib.Path(__file__).resolve().parent
DATA = HERE.parent / "tests" / "data"
GENERATOR = "crates/storyteller-decoder/scripts/attention_reference.py"

WORDS = [
    "a", "red", "blue", "green", "circle", "square", "triangle", "left", "right", "top",
    "bottom", "big", "small", "on", "of", "the", "and", "near", "above", "below",
    "dog", "cat", "sits", "runs", "is", "two",
]  # fmt: skip
WORD_MAP = {w: i + 1 for i, w in enumerate(WORDS)}
WORD_MAP.update({"<unk>": len(WORDS) + 1, "<start>": len(WORDS) + 2, "<end>": len(WORDS) + 3, "<pad>": 0})
ID_TO_WORD = {i: w for w, i in WORD_MAP.items()}
PAD, UNK, START, END = 0, WORD_MAP["<unk>"], WORD_MAP["<start>"], WORD_MAP["<end>"]

V, E, A, H, F, R, N, T = len(WORD_MAP), 8, 10, 16, 12, 4, 6, 7
LENGTHS = [7, 5, 3, 7, 2, 6]  # decode lengths: <start> + words, or words + <end>
ALPHA_C = 1.0
GREEDY_MAX_LEN = 10
BEAM = {"width": 3, "max_len": 10, "length_penalty": 0.0, "n_best": 3}


class Attention(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder_att = torch.nn.Linear(F, A)
        self.decoder_att = torch.nn.Linear(H, A)
        self.full_att = torch.nn.Linear(A, 1)

    def forward(self, encoder_out, h):
        """encoder_out [N, R, F], h [N, H] -> context [N, F], alpha [N, R]."""
        e = self.full_att(torch.relu(self.encoder_att(encoder_out) + self.decoder_att(h).unsqueeze(1))).squeeze(2)
        alpha = torch.softmax(e, dim=1)
        return (encoder_out * alpha.unsqueeze(2)).sum(dim=1), alpha


class DecoderWithAttention(torch.nn.Module):
    """Show, Attend and Tell; submodules registered in the tutorial's order, so the state_dict matches."""

    def __init__(self):
        super().__init__()
        self.attention = Attention()
        self.embedding = torch.nn.Embedding(V, E)
        self.dropout = torch.nn.Dropout(0.5)
        self.decode_step = torch.nn.LSTMCell(E + F, H)
        self.init_h = torch.nn.Linear(F, H)
        self.init_c = torch.nn.Linear(F, H)
        self.f_beta = torch.nn.Linear(H, F)
        self.fc = torch.nn.Linear(H, V)

    def init_state(self, encoder_out):
        mean = encoder_out.mean(dim=1)
        return self.init_h(mean), self.init_c(mean)

    def step(self, encoder_out, tokens, h, c):
        """One decode step for a batch of rows: -> logits [N, V], alpha [N, R], new h, c."""
        context, alpha = self.attention(encoder_out, h)
        gate = torch.sigmoid(self.f_beta(h))
        h, c = self.decode_step(torch.cat([self.embedding(tokens), gate * context], dim=1), (h, c))
        return self.fc(self.dropout(h)), alpha, h, c

    def forward(self, encoder_out, tokens):
        """Teacher forcing over all T steps of every row: -> logits [N, T, V], alphas [N, T, R]."""
        h, c = self.init_state(encoder_out)
        logits, alphas = [], []
        for t in range(tokens.shape[1]):
            out, alpha, h, c = self.step(encoder_out, tokens[:, t], h, c)
            logits.append(out)
            alphas.append(alpha)
        return torch.stack(logits, dim=1), torch.stack(alphas, dim=1)


def build():
    torch.manual_seed(24)
    model = DecoderWithAttention().eval()
    with torch.no_grad():
        # Peaky attention, so a wrong mapping of the attention weights shows.
        model.attention.encoder_att.weight.mul_(3.0)
        model.attention.full_att.weight.mul_(4.0)
        # Peakier output distributions: with this seed greedy and beam captions end at lengths
        # 0..7 and some never do (no extra <end> bias needed).
        model.decode_step.weight_ih.mul_(3.0)
        model.decode_step.weight_hh.mul_(3.0)
        model.fc.weight.mul_(5.0)
        # A trained decoder never emits <pad>, <unk> or <start>: keep the searches to words and <end>.
        model.fc.bias[[PAD, UNK, START]] -= 8.0
    encoder_out = torch.randn(N, R, F)
    inputs = torch.full((N, T), PAD, dtype=torch.long)
    targets = torch.full((N, T), PAD, dtype=torch.long)
    for i, length in enumerate(LENGTHS):
        words = torch.randint(1, len(WORDS) + 1, (length - 1,))
        inputs[i, 0] = START
        inputs[i, 1:length] = words
        targets[i, : length - 1] = words
        targets[i, length - 1] = END
    return model, encoder_out, inputs, targets


def loss(logits, alphas, targets):
    mask = targets != PAD
    nll = -torch.log_softmax(logits, dim=-1).gather(2, targets.unsqueeze(2)).squeeze(2)
    cross_entropy = nll[mask].mean()
    attended = (alphas * mask.unsqueeze(2).to(alphas.dtype)).sum(dim=1)  # [N, R]
    regulariser = ALPHA_C * ((1.0 - attended) ** 2).sum(dim=1).mean()
    return {
        "alpha_c": ALPHA_C,
        "cross_entropy": float(cross_entropy),
        "regulariser": float(regulariser),
        "total": float(cross_entropy + regulariser),
    }


def hypothesis(tokens, log_prob, score, finished):
    return {
        "words": [ID_TO_WORD[t] for t in tokens],
        "tokens": tokens,
        "log_prob": log_prob,
        "score": score,
        "finished": finished,
    }


def greedy(model, regions, max_len):
    """regions [R, F]; argmax with ties to the lowest id (a stable descending sort)."""
    encoder_out = regions[None]
    h, c = model.init_state(encoder_out)
    tok = torch.tensor([START])
    tokens, log_prob, finished = [], torch.zeros((), dtype=torch.float32), False
    for _ in range(max_len):
        logits, _, h, c = model.step(encoder_out, tok, h, c)
        lp = torch.log_softmax(logits, dim=-1)
        best = int(torch.sort(lp[0], descending=True, stable=True).indices[0])
        log_prob = log_prob + lp[0, best]
        if best == END:
            finished = True
            break
        tokens.append(best)
        tok = torch.tensor([best])
    value = float(log_prob)
    return [hypothesis(tokens, value, value, finished)]


def penalized(log_prob, length, alpha):
    return log_prob if alpha == 0 else log_prob / length**alpha


def beam(model, regions, width, max_len, alpha, n_best):
    """regions [R, F]; the rows of encoder_out follow the beams like h and c."""
    encoder_out = regions[None]
    h, c = model.init_state(encoder_out)
    alive = [([], torch.zeros((), dtype=torch.float32))]  # (tokens, cumulative log-prob)
    finished = []
    inputs = torch.tensor([START])
    for _ in range(max_len):
        logits, _, h, c = model.step(encoder_out, inputs, h, c)
        lp = torch.log_softmax(logits, dim=-1)
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
        h, c, encoder_out = h[rows], c[rows], encoder_out[rows]
        alive = [(alive[b][0] + [t], v) for b, t, v in new]
        inputs = torch.tensor([t for _, t, _ in new])

    def hyp(tokens, value, done):
        lp = float(value)
        return hypothesis(tokens, lp, penalized(lp, len(tokens) + int(done), alpha), done)

    ranked = sorted((hyp(t, v, True) for t, v in finished), key=lambda x: -x["score"])
    if len(ranked) < n_best:
        ranked += sorted((hyp(t, v, False) for t, v in alive), key=lambda x: -x["score"])
    return ranked[:n_best]


def flat(x):
    return {"shape": list(x.shape), "data": x.reshape(-1).tolist()}


def generate():
    model, encoder_out, inputs, targets = build()
    with torch.inference_mode():
        logits, alphas = model(encoder_out, inputs)
        losses = loss(logits, alphas, targets)
        greedy_results = [greedy(model, x, GREEDY_MAX_LEN) for x in encoder_out]
        beam_results = [
            beam(model, x, BEAM["width"], BEAM["max_len"], BEAM["length_penalty"], BEAM["n_best"])
            for x in encoder_out
        ]
    state = {k: v.detach().clone().contiguous().to(torch.float32) for k, v in model.state_dict().items()}
    return state, {
        "generator": GENERATOR,
        "sizes": {"vocab_size": V, "d_embed": E, "d_attention": A, "d_hidden": H, "d_feature": F, "regions": R},
        "word_map": WORD_MAP,
        "features": flat(encoder_out),
        "inputs": [[ID_TO_WORD[t] for t in row] for row in inputs.tolist()],
        "targets": [[ID_TO_WORD[t] for t in row] for row in targets.tolist()],
        "logits": flat(logits),
        "alphas": flat(alphas),
        "loss": losses,
        "greedy": greedy_results,
        "beam3": beam_results,
    }


def drift(state, reference, stored_state, stored_pth, stored):
    problems = []
    for name, other in (("safetensors", stored_state), ("pth", stored_pth)):
        if set(other) != set(state):
            problems.append(f"{name} keys")
        problems += [f"{name} {k}" for k in state if k in other and not torch.equal(other[k], state[k])]
    for key in ("sizes", "word_map", "features", "inputs", "targets"):
        if stored.get(key) != reference[key]:
            problems.append(key)
    for key in ("logits", "alphas"):
        if stored[key]["shape"] != reference[key]["shape"]:
            problems.append(f"{key} shape")
            continue
        worst, drifted = logits_drift(stored[key]["data"], reference[key]["data"])
        if drifted:
            problems.append(f"{key} drift {worst}")
    for key in ("cross_entropy", "regulariser", "total"):
        if not same_loss(stored["loss"][key], reference["loss"][key]):
            problems.append(f"loss {key}: {stored['loss'][key]} vs {reference['loss'][key]}")
    for key in ("greedy", "beam3"):
        if [[h["tokens"] for h in r] for r in stored[key]] != [[h["tokens"] for h in r] for r in reference[key]]:
            problems.append(f"{key} tokens")
            continue
        for i, (ra, rb) in enumerate(zip(stored[key], reference[key])):
            for ha, hb in zip(ra, rb):
                if ha["finished"] != hb["finished"] or abs(ha["score"] - hb["score"]) > 1e-5:
                    problems.append(f"{key} image {i}: {ha['score']} vs {hb['score']}")
    return problems


def summary(reference):
    for key in ("greedy", "beam3"):
        hyps = [h for r in reference[key] for h in r]
        done = sum(h["finished"] for h in hyps)
        print(f"{key}: {done}/{len(hyps)} finished")
        for i, r in enumerate(reference[key]):
            for h in r:
                mark = "end" if h["finished"] else "max"
                print(f"  image {i} len {len(h['tokens']):2d} {mark} {h['log_prob']:9.4f}  {' '.join(h['words'])}")
    alphas = reference["alphas"]["data"]
    print(f"alphas: min {min(alphas):.4f} max {max(alphas):.4f}")
    print(f"loss: {reference['loss']}")


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--check", action="store_true", help="fail if the stored fixtures drifted")
    args = p.parse_args()
    state, reference = generate()
    weights_path = DATA / "attention_reference.safetensors"
    pth_path = DATA / "attention_reference.pth"
    json_path = DATA / "attention_reference.json"
    if args.check:
        problems = drift(
            state,
            reference,
            load_file(str(weights_path)),
            torch.load(pth_path, weights_only=True),
            json.loads(json_path.read_text()),
        )
        for problem in problems:
            print("drift:", problem, file=sys.stderr)
        if problems:
            sys.exit(f"attention reference drifted; rerun {__file__} and review the diff")
        print(f"{json_path.name}: matches PyTorch {torch.__version__}")
        return
    DATA.mkdir(parents=True, exist_ok=True)
    save_file(state, str(weights_path))
    torch.save(state, pth_path)
    json_path.write_text(json.dumps(reference, separators=(",", ":")) + "\n")
    print(f"wrote {weights_path}, {pth_path} and {json_path}")
    summary(reference)


if __name__ == "__main__":
    main()
