#!/usr/bin/env python3
"""PyTorch reference timings for the captioning pipeline: the rates our Burn crates are
measured against.

Three workloads run on one device: the CUDA device when there is one, the CPU otherwise
or with --cpu. Their sizes match what `gpu-check` (benches/gpu_check/) times on our side,
so that `gpu-check --anchor torch.jsonl` can put the two next to each other:

  encoder     torchvision's ResNet-50 with random weights (the speed does not depend on
              them) and `fc` replaced by Identity, so each image gives a 2048-d feature;
              eval mode, inference_mode, input randn(batch, 3, 224, 224). Images/s for each
              batch size and precision:
                fp32      float32, TF32 disabled in cuDNN and matmul
                tf32      float32, TF32 allowed
                bf16      autocast to bfloat16 (TF32 allowed for what stays float32)
                fp16-cl   autocast to float16, model and input in channels-last layout
  train_step  one training step of the caption decoder below: teacher forcing over 20
              tokens (inputs tokens[:, :-1], targets tokens[:, 1:], token ids drawn from
              1..7999), cross-entropy ignoring token 0, backward, Adam (lr 1e-3). Captions/s.
  greedy,     greedy search and beam search of width 3 from random 2048-d features, start
  beam3       token 1, always 20 steps (no early stop). Captions/s.

The caption decoder is the one benches/search_lstm.rs builds in Burn (show-and-tell style):
vocabulary 8000, embedding 256, LSTM hidden state 512, image features 2048; the initial
hidden and cell states are tanh(Linear(feature)) each; logits are Linear(hidden) over the
vocabulary, log-softmax for search. Training runs the LSTM over the whole sequence
(nn.LSTM, cuDNN on a GPU); search steps it one token at a time with nn.LSTMCell on the
same weights. Both run in float32 with TF32 disabled.

Default sizes:

                  CUDA                               --cpu
  encoder         batch 1, 32, 128, 256;             batch 1, 32; fp32
                  fp32, tf32, bf16, fp16-cl
  train_step      batch 128, 512                     batch 32
  greedy, beam3   batch 1, 128, 1024                 batch 1, 32

Each time is the median of the timed calls after some warm-up calls (CUDA: encoder 5 + 20,
train 3 + 30, search 3 + 20; CPU: encoder 1 + 3, train 3 + 5, search 3 + 5), with the
device synchronised around every call.

Output, on stdout: one JSON object per line and per measurement, then a plain-text summary
(lines that do not start with "{", which gpu-check skips):

  {"part": "encoder", "prec": "fp32", "batch": 32, "s_per_batch": ..., "img_per_s": ...}
  {"part": "train_step", "batch": 128, "seq": 20, "s_per_step": ..., "captions_per_s": ...}
  {"part": "greedy", "batch": 1, "max_len": 20, "s_per_batch": ..., "captions_per_s": ...}
  {"part": "beam3", "batch": 1, "max_len": 20, "s_per_batch": ..., "captions_per_s": ...}

Usage (benches/gpu/run.sh runs it without flags on the GPU machine):

  python benches/torch_reference.py [--cpu] [--quick | --tiny] [--parts encoder,train,search]
      [--precisions fp32,tf32,bf16,fp16-cl] [--encoder-batches 1,32] [--train-batches 32]
      [--search-batches 1,32] [--image-size 224] [--warm N] [--reps N] [--threads N]

It is also a module: benches/search_vs_torch.py and benches/encoder_vs_torch.py import
`CaptionDecoder`, `greedy`, `beam_search`, `resnet50_features` and `median_time` from it.
"""
import argparse
import contextlib
import json
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

VOCAB_SIZE = 8000
D_EMBED = 256
D_HIDDEN = 512
D_FEATURE = 2048
MAX_LEN = 20
BEAM_WIDTH = 3
PAD_TOKEN = 0
START_TOKEN = 1

PARTS = ("encoder", "train", "search")
PRECISIONS = ("fp32", "tf32", "bf16", "fp16-cl")

# Per device: batch sizes, precisions, and (warm-up, timed) calls of each part.
DEFAULTS = {
    "cuda": {
        "encoder_batches": [1, 32, 128, 256],
        "precisions": list(PRECISIONS),
        "train_batches": [128, 512],
        "search_batches": [1, 128, 1024],
        "calls": {"encoder": (5, 20), "train": (3, 30), "search": (3, 20)},
    },
    "cpu": {
        "encoder_batches": [1, 32],
        "precisions": ["fp32"],
        "train_batches": [32],
        "search_batches": [1, 32],
        "calls": {"encoder": (1, 3), "train": (3, 5), "search": (3, 5)},
    },
}


# ---------------------------------------------------------------- timing

def synchronize(device):
    """Waits for the work queued on `device` (a no-op on the CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def median_time(fn, reps, warm=1, device=torch.device("cpu")):
    """Calls `fn` `warm` times untimed, then `reps` times timed; returns the median in
    seconds. Each timed call ends with a device synchronisation, so it counts the device's
    work and not only the time to queue it."""
    for _ in range(warm):
        fn()
    synchronize(device)
    times = []
    for _ in range(max(reps, 1)):
        begin = time.perf_counter()
        fn()
        synchronize(device)
        times.append(time.perf_counter() - begin)
    return sorted(times)[len(times) // 2]


# ---------------------------------------------------------------- encoder

def resnet50_features():
    """torchvision's ResNet-50, randomly initialised, with the classifier replaced by
    Identity: an image batch [n, 3, h, w] gives features [n, 2048]. In eval mode."""
    import torchvision

    model = torchvision.models.resnet50(weights=None)
    model.fc = nn.Identity()
    return model.eval()


@contextlib.contextmanager
def tf32_allowed(allowed):
    """Sets whether cuDNN convolutions and CUDA matmuls may use TF32, restoring the old
    settings on exit."""
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = allowed
    torch.backends.cuda.matmul.allow_tf32 = allowed
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


def bench_encoder(device, precisions, batches, image_size, calls, emit):
    """Times ResNet-50 feature extraction for every precision and batch size; emits one
    `encoder` row each."""
    warm, reps = calls
    model = resnet50_features().to(device)
    autocast_dtype = {"bf16": torch.bfloat16, "fp16-cl": torch.float16}
    for prec in precisions:
        if prec not in PRECISIONS:
            raise SystemExit(f"unknown precision {prec!r}; known: {', '.join(PRECISIONS)}")
        layout = torch.channels_last if prec == "fp16-cl" else torch.contiguous_format
        model = model.to(memory_format=layout)
        dtype = autocast_dtype.get(prec)
        with tf32_allowed(prec != "fp32"):
            for batch in batches:
                images = torch.randn(batch, 3, image_size, image_size, device=device)
                images = images.contiguous(memory_format=layout)

                def forward():
                    with torch.inference_mode(), torch.autocast(
                        device.type, dtype=dtype, enabled=dtype is not None
                    ):
                        return model(images)

                seconds = median_time(forward, reps, warm, device)
                row = {"part": "encoder", "prec": prec, "batch": batch}
                if image_size != 224:
                    row["size"] = image_size
                emit(**row, s_per_batch=seconds, img_per_s=batch / seconds)
    model.to(memory_format=torch.contiguous_format)


# ---------------------------------------------------------------- decoder

class CaptionDecoder(nn.Module):
    """LSTM caption decoder conditioned on an image feature.

    The feature sets the LSTM's initial state: h0 = tanh(W_h f + b_h), c0 = tanh(W_c f + b_c).
    Tokens are embedded, run through a one-layer LSTM and projected to vocabulary logits.
    `forward` runs a whole teacher-forced sequence with nn.LSTM; `step` advances one token
    with an nn.LSTMCell that shares the LSTM's weights (the same parameter objects), as a
    search does.
    """

    def __init__(self, vocab_size=VOCAB_SIZE, d_embed=D_EMBED, d_hidden=D_HIDDEN,
                 d_feature=D_FEATURE):
        super().__init__()
        self.vocab_size = vocab_size
        self.hidden_from_feature = nn.Linear(d_feature, d_hidden)
        self.cell_from_feature = nn.Linear(d_feature, d_hidden)
        self.embedding = nn.Embedding(vocab_size, d_embed)
        self.lstm = nn.LSTM(d_embed, d_hidden, batch_first=True)
        self.lstm_cell = nn.LSTMCell(d_embed, d_hidden)
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            setattr(self.lstm_cell, name, getattr(self.lstm, f"{name}_l0"))
        self.to_vocab = nn.Linear(d_hidden, vocab_size)

    def initial_state(self, features):
        """(h0, c0), each [batch, d_hidden], from features [batch, d_feature]."""
        return (
            torch.tanh(self.hidden_from_feature(features)),
            torch.tanh(self.cell_from_feature(features)),
        )

    def forward(self, features, tokens):
        """Teacher forcing: logits [batch, seq, vocab] for input tokens [batch, seq]."""
        h0, c0 = self.initial_state(features)
        hidden, _ = self.lstm(self.embedding(tokens), (h0.unsqueeze(0), c0.unsqueeze(0)))
        return self.to_vocab(hidden)

    def step(self, tokens, h, c):
        """One search step: the last tokens [rows] and state -> (log-probabilities
        [rows, vocab], h, c)."""
        h, c = self.lstm_cell(self.embedding(tokens), (h, c))
        return F.log_softmax(self.to_vocab(h), dim=-1), h, c


@torch.inference_mode()
def greedy(decoder, features, max_len=MAX_LEN, start=START_TOKEN):
    """Greedy search: the most likely next token at each of `max_len` steps, no early stop.
    Returns tokens [batch, max_len]."""
    h, c = decoder.initial_state(features)
    token = torch.full((features.shape[0],), start, dtype=torch.long, device=features.device)
    chosen = []
    for _ in range(max_len):
        log_probs, h, c = decoder.step(token, h, c)
        token = log_probs.argmax(dim=-1)
        chosen.append(token)
    return torch.stack(chosen, dim=1)


@torch.inference_mode()
def beam_search(decoder, features, width=BEAM_WIDTH, max_len=MAX_LEN, start=START_TOKEN):
    """Beam search of `width` beams per image for `max_len` steps, no early stop, scores
    the summed log-probabilities. Returns the best beam's tokens [batch, max_len].

    The beams of one image are rows image * width .. image * width + width - 1. At the first
    step only beam 0 is live (the others score -inf), so the first top-k picks `width`
    distinct tokens. Every step keeps the chosen tokens and the beam each came from; the
    best final beam is traced back through them at the end.
    """
    images, vocab = features.shape[0], decoder.vocab_size
    device = features.device
    h, c = decoder.initial_state(features)
    h, c = h.repeat_interleave(width, dim=0), c.repeat_interleave(width, dim=0)
    token = torch.full((images * width,), start, dtype=torch.long, device=device)
    scores = torch.full((images, width), float("-inf"), device=device)
    scores[:, 0] = 0.0
    first_row = torch.arange(images, device=device).unsqueeze(1) * width
    step_tokens, step_parents = [], []
    for _ in range(max_len):
        log_probs, h, c = decoder.step(token, h, c)
        candidates = scores.unsqueeze(2) + log_probs.view(images, width, vocab)
        scores, flat = candidates.view(images, width * vocab).topk(width, dim=1)
        parent = torch.div(flat, vocab, rounding_mode="floor")
        word = flat - parent * vocab
        rows = (first_row + parent).view(-1)
        h, c = h.index_select(0, rows), c.index_select(0, rows)
        token = word.view(-1)
        step_tokens.append(word)
        step_parents.append(parent)
    # Trace the best beam (top-k sorts, so it is beam 0) back to the first step.
    beam = torch.zeros(images, 1, dtype=torch.long, device=device)
    reversed_tokens = []
    for word, parent in zip(reversed(step_tokens), reversed(step_parents)):
        reversed_tokens.append(word.gather(1, beam))
        beam = parent.gather(1, beam)
    return torch.cat(reversed_tokens[::-1], dim=1)


def bench_train(device, batches, calls, emit):
    """Times one teacher-forced training step with Adam at each batch size; emits one
    `train_step` row each."""
    warm, reps = calls
    for batch in batches:
        decoder = CaptionDecoder().to(device).train()
        optimizer = torch.optim.Adam(decoder.parameters(), lr=1e-3)
        features = torch.randn(batch, D_FEATURE, device=device)
        tokens = torch.randint(1, VOCAB_SIZE, (batch, MAX_LEN + 1), device=device)
        inputs, targets = tokens[:, :-1], tokens[:, 1:]

        def train_step():
            optimizer.zero_grad(set_to_none=True)
            logits = decoder(features, inputs)
            loss = F.cross_entropy(
                logits.reshape(-1, VOCAB_SIZE), targets.reshape(-1), ignore_index=PAD_TOKEN
            )
            loss.backward()
            optimizer.step()

        seconds = median_time(train_step, reps, warm, device)
        emit(part="train_step", batch=batch, seq=MAX_LEN, s_per_step=seconds,
             captions_per_s=batch / seconds)


def bench_search(device, batches, calls, emit):
    """Times greedy and beam-3 search at each batch size; emits a `greedy` and a `beam3`
    row each."""
    warm, reps = calls
    decoder = CaptionDecoder().to(device).eval()
    for batch in batches:
        features = torch.randn(batch, D_FEATURE, device=device)
        for part, search in (("greedy", greedy), ("beam3", beam_search)):
            seconds = median_time(lambda: search(decoder, features), reps, warm, device)
            emit(part=part, batch=batch, max_len=MAX_LEN, s_per_batch=seconds,
                 captions_per_s=batch / seconds)


# ---------------------------------------------------------------- command line

def int_list(text):
    """'1,32' -> [1, 32]."""
    return [int(item) for item in text.split(",") if item]


def str_list(text):
    """'a,b' -> ['a', 'b']."""
    return [item for item in text.split(",") if item]


def parse_args(argv=None):
    """The command line; sizes left unset take the device's defaults (see the module doc)."""
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--cpu", action="store_true", help="run on the CPU even when CUDA is available")
    p.add_argument("--quick", action="store_true", help="only the first two encoder batch sizes")
    p.add_argument("--tiny", action="store_true",
                   help="a check that everything runs, not a measurement: 64x64 images, "
                        "batches of 1 and 2, one warm-up and one timed call "
                        "(explicit flags override it)")
    p.add_argument("--parts", type=str_list, default=list(PARTS), help="of encoder,train,search")
    p.add_argument("--precisions", type=str_list, help="of " + ",".join(PRECISIONS))
    p.add_argument("--encoder-batches", type=int_list)
    p.add_argument("--train-batches", type=int_list)
    p.add_argument("--search-batches", type=int_list)
    p.add_argument("--image-size", type=int, help="encoder input side (default 224)")
    p.add_argument("--warm", type=int, help="warm-up calls of every part")
    p.add_argument("--reps", type=int, help="timed calls of every part")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    args = p.parse_args(argv)
    unknown = set(args.parts) - set(PARTS)
    if unknown:
        p.error(f"unknown part(s) {', '.join(sorted(unknown))}; known: {', '.join(PARTS)}")
    return args


def settings(args, device):
    """The sizes and call counts to run: the device's defaults, then --quick / --tiny, then
    explicit flags."""
    base = DEFAULTS[device.type]
    s = {
        "encoder_batches": list(base["encoder_batches"]),
        "precisions": list(base["precisions"]),
        "train_batches": list(base["train_batches"]),
        "search_batches": list(base["search_batches"]),
        "image_size": 224,
        "calls": dict(base["calls"]),
    }
    if args.quick:
        s["encoder_batches"] = s["encoder_batches"][:2]
    if args.tiny:
        s.update(encoder_batches=[1, 2], train_batches=[2], search_batches=[1, 2], image_size=64)
        s["calls"] = {part: (1, 1) for part in PARTS}
    for key in ("encoder_batches", "precisions", "train_batches", "search_batches", "image_size"):
        if getattr(args, key) is not None:
            s[key] = getattr(args, key)
    for part, (warm, reps) in s["calls"].items():
        s["calls"][part] = (
            warm if args.warm is None else args.warm,
            reps if args.reps is None else args.reps,
        )
    return s


def main(argv=None):
    """Runs the selected parts, printing a JSON line per measurement and a summary."""
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device("cuda" if torch.cuda.is_available() and not args.cpu else "cpu")
    s = settings(args, device)
    rows = []

    def emit(**row):
        rows.append(row)
        print(json.dumps(row), flush=True)

    if "encoder" in args.parts:
        bench_encoder(device, s["precisions"], s["encoder_batches"], s["image_size"],
                      s["calls"]["encoder"], emit)
    # The decoder runs in true float32: TF32 off for cuDNN's LSTM and for matmuls.
    with tf32_allowed(False):
        if "train" in args.parts:
            bench_train(device, s["train_batches"], s["calls"]["train"], emit)
        if "search" in args.parts:
            bench_search(device, s["search_batches"], s["calls"]["search"], emit)

    threads = torch.get_num_threads()
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else (
        f"cpu, {threads} thread{'' if threads == 1 else 's'}")
    print(f"\n== PyTorch reference ({where}, torch {torch.__version__}) ==")
    for row in rows:
        rate = row.get("img_per_s", row.get("captions_per_s"))
        prec = row.get("prec", "")
        print(f"{row['part']:<10} {prec:<8} batch {row['batch']:<5} {rate:>10.1f} /s")


if __name__ == "__main__":
    main()
