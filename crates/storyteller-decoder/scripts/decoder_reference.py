"""PyTorch reference for the caption decoder, for tests/pytorch_parity.rs.

Builds the decoder of benches/torch_reference.py (tanh(Linear) initial h and c from the
image feature, nn.Embedding, nn.LSTM with gates i,f,g,o and two bias vectors, output Linear)
at test size with seeded random weights, and writes

  tests/data/decoder_reference.safetensors   its state_dict (the file the Rust test imports)
  tests/data/decoder_reference.json          features, a padded teacher-forced batch, its
                                             logits, and greedy / beam-3 decoding results

Greedy and beam search use the plain reference implementations of the search crate
(crates/storyteller-search/scripts/beam_reference.py), which follow docs/search.md.

    python decoder_reference.py            # rewrite the fixtures
    python decoder_reference.py --check    # regenerate in memory, fail if the stored ones drifted
"""
import argparse
import json
import pathlib
import sys

import torch
from fixture_drift import logits_drift
from safetensors.torch import load_file, save_file

HERE = pathlib.Path(__file__).resolve().parent
DATA = HERE.parent / "tests" / "data"
sys.path.insert(0, str(HERE.parents[1] / "storyteller-search" / "scripts"))
import beam_reference as search  # noqa: E402

V, E, H, F, N, T = 30, 8, 16, 12, 6, 7
PAD = 0


class Decoder(torch.nn.Module):
    """The anchor's decoder: image feature -> (h0, c0); tokens -> LSTM -> vocabulary."""

    def __init__(self):
        super().__init__()
        self.init_h = torch.nn.Linear(F, H)
        self.init_c = torch.nn.Linear(F, H)
        self.embed = torch.nn.Embedding(V, E)
        self.lstm = torch.nn.LSTM(E, H, batch_first=True)
        self.out = torch.nn.Linear(H, V)

    def forward(self, feats, tokens):
        h = torch.tanh(self.init_h(feats))
        c = torch.tanh(self.init_c(feats))
        y, _ = self.lstm(self.embed(tokens), (h[None], c[None]))
        return self.out(y)


def build():
    torch.manual_seed(1126)
    model = Decoder().eval()
    with torch.no_grad():
        # Peakier distributions, so searches finish at varied lengths.
        model.lstm.weight_ih_l0.mul_(3.0)
        model.lstm.weight_hh_l0.mul_(3.0)
        model.out.weight.mul_(4.0)
        model.out.bias[search.END] += 0.8  # some captions end early, some never do
    features = torch.randn(N, F)
    tokens = torch.randint(4, V, (N, T))
    tokens[:, 0] = search.START
    for i, length in enumerate([7, 5, 3, 7, 2, 6]):  # pad the tails, as a real batch
        tokens[i, length:] = PAD
    return model, features, tokens


def searcher_view(model):
    """The search reference's ModuleDict, sharing the decoder's weights (nn.LSTMCell = one LSTM step)."""
    cell = torch.nn.LSTMCell(E, H)
    cell.weight_ih, cell.weight_hh = model.lstm.weight_ih_l0, model.lstm.weight_hh_l0
    cell.bias_ih, cell.bias_hh = model.lstm.bias_ih_l0, model.lstm.bias_hh_l0
    return torch.nn.ModuleDict(
        {"init_h": model.init_h, "init_c": model.init_c, "embed": model.embed, "cell": cell, "out": model.out}
    ).eval()


def generate():
    model, features, tokens = build()
    assert search.V == 24  # the search module's own constants are not used below
    search.V = V
    with torch.inference_mode():
        logits = model(features, tokens)
        view = searcher_view(model)
        greedy = [search.greedy(view, f, 10) for f in features]
        beam = [search.beam(view, f, 3, 10, 0.0, 3) for f in features]
    state = {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}
    return state, {
        "generator": "crates/storyteller-decoder/scripts/decoder_reference.py",
        "sizes": {"vocab_size": V, "d_embed": E, "d_hidden": H, "d_feature": F},
        "features": {"shape": list(features.shape), "data": features.reshape(-1).tolist()},
        "tokens": tokens.tolist(),
        "logits": {"shape": list(logits.shape), "data": logits.reshape(-1).tolist()},
        "greedy": greedy,
        "beam3": beam,
    }


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--check", action="store_true")
    args = p.parse_args()
    state, reference = generate()
    weights_path, json_path = DATA / "decoder_reference.safetensors", DATA / "decoder_reference.json"
    if args.check:
        stored_state = load_file(str(weights_path))
        stored = json.loads(json_path.read_text())
        problems = [k for k in state if k not in stored_state or not torch.equal(stored_state[k], state[k])]
        if stored["tokens"] != reference["tokens"] or stored["features"] != reference["features"]:
            problems.append("inputs")
        worst, drifted = logits_drift(stored["logits"]["data"], reference["logits"]["data"])
        if drifted:
            problems.append(f"logits drift {worst}")
        for key in ("greedy", "beam3"):
            if [[h["tokens"] for h in r] for r in stored[key]] != [[h["tokens"] for h in r] for r in reference[key]]:
                problems.append(f"{key} tokens")
        if problems:
            sys.exit(f"decoder reference drifted: {problems}")
        print(f"{json_path.name}: matches PyTorch {torch.__version__}")
        return
    DATA.mkdir(parents=True, exist_ok=True)
    save_file(state, str(weights_path))
    json_path.write_text(json.dumps(reference) + "\n")
    print(f"wrote {weights_path} and {json_path}")


if __name__ == "__main__":
    main()
