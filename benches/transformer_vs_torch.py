#!/usr/bin/env python3
"""Transformer caption decoder on the CPU: ours (Burn, Flex) next to PyTorch, alternating, one run.

Three parts, on the same shapes on both sides (the constants below):

  train   one training step: teacher forcing over all T = 20 positions of every row under the
          causal mask, cross-entropy ignoring <pad>, backward, Adam (lr 1e-3), no gradient
          clipping; dropout 0.1 active. Inputs and targets: random tokens in 4..V, no padding.
  greedy  batched greedy search of B images, 20 steps (argmax of log_softmax).
  beam3   batched beam search of width 3 for B images, 20 steps.

Searches run in eval mode with out.bias[<end>] at -1e9, so every caption runs all 20 steps.
Weights are random (timing only; each side its own default initialisation). Features are
standard normal [B, 49, 2048].

The model is the pre-norm nn.TransformerDecoder captioner of
crates/storyteller-decoder/scripts/transformer_reference.py, at benchmark size (that script's
CaptionTransformer reads its test sizes from module globals, so it is rebuilt here with the
sizes as arguments, under the same module names; at start-up this script loads the
reference's own state dict into it and asserts equal logits):

  memory = feature_proj(regions) + region_embedding.weight          [N, R, D]
  x      = dropout(embedding(tokens) * sqrt(D) + sinusoid(T, D))     [N, T, D]
  h      = decoder(x, memory, tgt_mask=causal)   nn.TransformerDecoder(nn.TransformerDecoderLayer(
           D, heads, FF, dropout, "relu", batch_first, norm_first), L, norm=nn.LayerNorm(D))
  logits = out(h)                                                   [N, T, V], untied

Decoding. An nn.TransformerDecoder has no incremental mode: run as is, every search step
reruns the whole prefix (sum over t of t = 210 token positions per caption instead of 20,
O(T^2)) and recomputes every layer's cross-attention keys and values of the 49 regions. Our
side decodes incrementally (TransformerDecoder::step_logits), so the PyTorch greedy and beam3
rows time an incremental decoder too, written here over the same modules' weights
(`start` / `step` / `reorder`): per layer the self-attention keys and values of the tokens so
far (extended by torch.cat each step), the regions' cross-attention keys and values computed
once per search, attention by F.scaled_dot_product_attention (what nn.MultiheadAttention
calls). As ours, beam search reorders every row's caches, the memory keys and values
included, after every step. At start-up the script asserts on a tiny model that these
cached steps give the full causal forward's logits within 1e-5, also after a reorder. The
extra parts greedy_uncached and beam3_uncached (PyTorch only, not in the default --parts)
time the plain nn.TransformerDecoder over the prefix at every step.

Our side is `transformer-compare` (benches/transformer_compare.rs):

    transformer-compare PART BATCHES RUNS      # one JSON line per batch size

The harness (alternating rounds, medians, the table) is benches/side_by_side.py, as for
attention_vs_torch.py. Run from the repository root:

    cargo build --release -p storyteller-benches --bin transformer-compare
    python benches/transformer_vs_torch.py [--parts train,greedy,beam3] [--batches 1,32]
        [--runs 3] [--rounds 3] [--out benches/results/transformer-cpu.txt] [--append]
    python benches/transformer_vs_torch.py --torch-only --batches 2 --runs 1 --rounds 1
"""
import math
import pathlib
import sys

import torch
import torch.nn as nn
import torch.nn.functional as Fn

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "crates" / "storyteller-decoder" / "scripts"))
import side_by_side  # noqa: E402
import transformer_reference as reference  # noqa: E402
from side_by_side import median_seconds  # noqa: E402
from transformer_reference import sinusoid  # noqa: E402

# Shapes: must equal benches/transformer_compare.rs.
D_FEATURE = 2048  # F
GRID = 7
REGIONS = GRID * GRID  # R, a 7x7 grid
D_MODEL = 512  # D
HEADS = 8
LAYERS = 3  # L
D_FF = 2048  # FF
VOCAB = 8000  # V
STEPS = 20  # T: caption length in training, max_len of both searches
BEAM_WIDTH = 3
PAD, START, END = 0, 1, 2
FIRST_WORD = 4  # training tokens are drawn from FIRST_WORD..VOCAB-1
DROPOUT = 0.1
LEARNING_RATE = 1e-3

PARTS = ("train", "greedy", "beam3", "greedy_uncached", "beam3_uncached")
BUILD = "cargo build --release -p storyteller-benches --bin transformer-compare"


class CaptionTransformer(nn.Module):
    """transformer_reference.CaptionTransformer with its sizes as arguments (and the same
    state dict), plus dropout on the embedded tokens as ours (no parameters)."""

    def __init__(self, d_feature, regions, d_model, heads, layers, d_ff, vocab, dropout, max_len):
        super().__init__()
        self.d_model, self.heads = d_model, heads
        self.feature_proj = nn.Linear(d_feature, d_model)
        self.region_embedding = nn.Embedding(regions, d_model)
        self.embedding = nn.Embedding(vocab, d_model)
        layer = nn.TransformerDecoderLayer(
            d_model, heads, d_ff, dropout=dropout, activation="relu", batch_first=True, norm_first=True
        )
        self.decoder = nn.TransformerDecoder(layer, layers, norm=nn.LayerNorm(d_model))
        self.out = nn.Linear(d_model, vocab)
        self.dropout = nn.Dropout(dropout)
        self.register_buffer("positions", sinusoid(max_len, d_model), persistent=False)

    def memory(self, regions):
        """regions [N, R, F] -> [N, R, D]."""
        return self.feature_proj(regions) + self.region_embedding.weight[None]

    def embed(self, tokens, start=0):
        """tokens [N, T] -> [N, T, D], positions start..start+T-1."""
        positions = self.positions[start : start + tokens.shape[1]]
        return self.dropout(self.embedding(tokens) * math.sqrt(self.d_model) + positions[None])

    def forward(self, regions, tokens):
        """regions [N, R, F], tokens [N, T] -> logits [N, T, V] (teacher forcing, causal)."""
        length = tokens.shape[1]
        mask = nn.Transformer.generate_square_subsequent_mask(length)
        h = self.decoder(self.embed(tokens), self.memory(regions), tgt_mask=mask, tgt_is_causal=True)
        return self.out(h)


def new_model():
    return CaptionTransformer(D_FEATURE, REGIONS, D_MODEL, HEADS, LAYERS, D_FF, VOCAB, DROPOUT, STEPS)


# Incremental decoding over the modules' weights. A state is (memory, cache, position):
# memory and cache hold per layer (keys, values) [rows, heads, positions, D / heads].


def split_heads(model, x):
    n, t, d = x.shape
    return x.reshape(n, t, model.heads, d // model.heads).transpose(1, 2)


def merge_heads(x):
    n, h, t, dh = x.shape
    return x.transpose(1, 2).reshape(n, t, h * dh)


def start(model, regions):
    """The state before the first token: every layer's cross-attention keys and values."""
    memory = model.memory(regions)
    d = model.d_model
    kvs = []
    for layer in model.decoder.layers:
        w, b = layer.multihead_attn.in_proj_weight, layer.multihead_attn.in_proj_bias
        key = Fn.linear(memory, w[d : 2 * d], b[d : 2 * d])
        value = Fn.linear(memory, w[2 * d :], b[2 * d :])
        kvs.append((split_heads(model, key), split_heads(model, value)))
    return kvs, [None] * len(kvs), 0


def step(model, tokens, state):
    """tokens [N] -> logits [N, V] of the next token, and the state with this token's keys and values."""
    memory, cache, position = state
    d = model.d_model
    x = model.embed(tokens[:, None], position)  # [N, 1, D]
    next_cache = []
    for layer, (mem_key, mem_value), kv in zip(model.decoder.layers, memory, cache):
        attn = layer.self_attn
        q, k, v = Fn.linear(layer.norm1(x), attn.in_proj_weight, attn.in_proj_bias).split(d, dim=2)
        q, k, v = (split_heads(model, y) for y in (q, k, v))
        if kv is not None:
            k, v = torch.cat([kv[0], k], dim=2), torch.cat([kv[1], v], dim=2)
        next_cache.append((k, v))
        # The new position is the last one: it may see every cached position, no mask.
        x = x + attn.out_proj(merge_heads(Fn.scaled_dot_product_attention(q, k, v)))
        cross = layer.multihead_attn
        q = split_heads(model, Fn.linear(layer.norm2(x), cross.in_proj_weight[:d], cross.in_proj_bias[:d]))
        x = x + cross.out_proj(merge_heads(Fn.scaled_dot_product_attention(q, mem_key, mem_value)))
        x = x + layer.linear2(torch.relu(layer.linear1(layer.norm3(x))))
    return model.out(model.decoder.norm(x))[:, 0], (memory, next_cache, position + 1)


def reorder(state, rows):
    """Row i of the new state is row rows[i] of this one (memory keys and values too, as ours)."""
    memory, cache, position = state
    pick = lambda kvs: [None if kv is None else (kv[0][rows], kv[1][rows]) for kv in kvs]
    return pick(memory), pick(cache), position


# Uncached decoding: the plain nn.TransformerDecoder over the whole prefix at every step.
# A state is (memory [N, R, D], prefix [N, t]).


def start_uncached(model, regions):
    return model.memory(regions), torch.zeros((regions.shape[0], 0), dtype=torch.long)


def step_uncached(model, tokens, state):
    memory, prefix = state
    prefix = torch.cat([prefix, tokens[:, None]], dim=1)
    length = prefix.shape[1]
    mask = nn.Transformer.generate_square_subsequent_mask(length)
    h = model.decoder(model.embed(prefix), memory, tgt_mask=mask, tgt_is_causal=True)
    return model.out(h[:, -1]), (memory, prefix)


def reorder_uncached(state, rows):
    return tuple(s[rows] for s in state)


DECODERS = {
    "cached": (start, step, reorder),
    "uncached": (start_uncached, step_uncached, reorder_uncached),
}


def greedy(model, regions, decoder):
    """-> tokens [N, STEPS], summed log-probs [N]."""
    start_fn, step_fn, _ = decoder
    batch = regions.shape[0]
    state = start_fn(model, regions)
    tokens = torch.full((batch,), START, dtype=torch.long)
    score = torch.zeros(batch)
    chosen = []
    for _ in range(STEPS):
        logits, state = step_fn(model, tokens, state)
        best, tokens = torch.log_softmax(logits, dim=-1).max(dim=-1)
        score = score + best
        chosen.append(tokens)
    return torch.stack(chosen, dim=1), score


def beam3(model, regions, decoder):
    """-> tokens [N * k, STEPS] (k beams per image, best first), scores [N, k].

    No bookkeeping of finished hypotheses: out.bias[<end>] is -1e9, so <end> never makes the
    top k and every beam runs all STEPS steps. As ours, the first step runs one row per image
    and the state is then reordered into k rows per image after every step but the last.
    """
    start_fn, step_fn, reorder_fn = decoder
    batch, k = regions.shape[0], BEAM_WIDTH
    state = start_fn(model, regions)
    logits, state = step_fn(model, torch.full((batch,), START, dtype=torch.long), state)
    scores, words = torch.log_softmax(logits, dim=-1).topk(k, dim=1)  # [N, k]
    state = reorder_fn(state, torch.arange(batch).repeat_interleave(k))
    sequences = words.reshape(-1, 1)
    base = (torch.arange(batch) * k).unsqueeze(1)
    for t in range(STEPS - 1):
        logits, state = step_fn(model, sequences[:, -1], state)
        log_probs = torch.log_softmax(logits, dim=-1)  # [N * k, V]
        candidates = (scores.reshape(-1, 1) + log_probs).reshape(batch, k * VOCAB)
        scores, index = candidates.topk(k, dim=1)  # [N, k]
        rows = (base + torch.div(index, VOCAB, rounding_mode="floor")).reshape(-1)
        if t + 1 < STEPS - 1:
            state = reorder_fn(state, rows)
        sequences = torch.cat([sequences[rows], (index % VOCAB).reshape(-1, 1)], dim=1)
    return sequences, scores


def check():
    """Asserts that the bench's model is the reference's and that cached steps equal the full forward."""
    with torch.inference_mode():
        # The reference's own model (its test sizes, random parameters) in this class.
        torch.manual_seed(0)
        ref = reference.CaptionTransformer(tied=False).eval()
        reference.randomise(ref, {"decoder": 1.5, "out": 3.0})
        ours = CaptionTransformer(
            reference.F, reference.R, reference.D, reference.HEADS, reference.L, reference.FF, reference.V, 0.1, 12
        ).eval()
        ours.load_state_dict(ref.state_dict(), strict=True)
        regions = torch.randn(3, reference.R, reference.F)
        tokens = torch.randint(0, reference.V, (3, 6))
        full = ref(regions, tokens)
        worst = float((ours(regions, tokens) - full).abs().max())
        assert worst < 1e-5, f"bench model differs from transformer_reference.CaptionTransformer by {worst}"

        # Cached steps = the full causal forward, position by position, for both decoders.
        for name, (start_fn, step_fn, reorder_fn) in DECODERS.items():
            state = start_fn(ours, regions)
            for t in range(tokens.shape[1]):
                logits, state = step_fn(ours, tokens[:, t], state)
                worst = float((logits - full[:, t]).abs().max())
                assert worst < 1e-5, f"{name} step {t} differs from the full forward by {worst}"
            # After two steps, rows (2, 0, 0) continue as those rows' prefixes do.
            rows = torch.tensor([2, 0, 0])
            state = start_fn(ours, regions)
            for t in range(2):
                state = step_fn(ours, tokens[:, t], state)[1]
            logits, _ = step_fn(ours, tokens[rows, 2], reorder_fn(state, rows))
            worst = float((logits - full[rows, 2]).abs().max())
            assert worst < 1e-5, f"{name} step after a reorder differs from the full forward by {worst}"


def features(batch):
    return torch.randn(batch, REGIONS, D_FEATURE)


def time_train(batch, runs):
    torch.manual_seed(0)
    model = new_model().train()
    optimizer = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE)
    regions = features(batch)
    inputs = torch.randint(FIRST_WORD, VOCAB, (batch, STEPS))
    targets = torch.randint(FIRST_WORD, VOCAB, (batch, STEPS))

    def train_step():
        optimizer.zero_grad(set_to_none=True)
        logits = model(regions, inputs)
        loss = Fn.cross_entropy(logits.reshape(-1, VOCAB), targets.reshape(-1), ignore_index=PAD)
        loss.backward()  # no gradient clipping: off on our side too
        optimizer.step()

    return median_seconds(train_step, runs)


def time_search(part, batch, runs):
    torch.manual_seed(0)
    model = new_model().eval()
    with torch.no_grad():
        model.out.bias[END] = -1e9
    regions = features(batch)
    name, _, variant = part.partition("_")
    search = greedy if name == "greedy" else beam3
    decoder = DECODERS[variant or "cached"]
    rows = batch * (BEAM_WIDTH if name == "beam3" else 1)

    def run():
        with torch.inference_mode():
            tokens, _ = search(model, regions, decoder)
        assert tokens.shape == (rows, STEPS) and not (tokens == END).any()

    return median_seconds(run, runs)


def torch_seconds(part, batch, runs):
    return time_train(batch, runs) if part == "train" else time_search(part, batch, runs)


def main():
    check()
    side_by_side.main(
        description=__doc__.splitlines()[0],
        title="Transformer caption decoder",
        shapes=f"F {D_FEATURE}, R {REGIONS} ({GRID}x{GRID}), D {D_MODEL}, {HEADS} heads, L {LAYERS}, FF {D_FF}, "
        f"V {VOCAB} (untied), T {STEPS}; dropout {DROPOUT} in training; beam width {BEAM_WIDTH}; random weights",
        notes=(
            "greedy, beam3: both sides decode incrementally (per-layer self-attention key/value caches, "
            "the regions' keys/values once per search, all reordered with the beams); PyTorch's is written "
            "over nn.TransformerDecoder's weights (checked against its full forward within 1e-5)",
            "*_uncached (PyTorch only): the plain nn.TransformerDecoder over the whole prefix at every step "
            "(O(T^2) positions, memory keys/values recomputed every step)",
        ),
        binary="transformer-compare",
        build=BUILD,
        parts=PARTS,
        default_parts="train,greedy,beam3",
        default_batches="1,32",
        rust_part=lambda part: None if part.endswith("_uncached") else part,
        torch_seconds=torch_seconds,
        example_out="benches/results/transformer-cpu.txt",
    )


if __name__ == "__main__":
    main()
