"""Load on `storyteller serve`: REQUESTS uploads from CLIENTS concurrent clients over loopback.

Starts the release binary on a free port with a model directory, uploads scikit-image's
sample photographs (JPEG, as a person would) with raw-body POSTs, and prints p50 / p90 /
p99 latency, throughput, failures and how many model calls (batches) the server made.
`--crop` serves the same decoder with the encoder run at another input size (the model
directory is copied and its preprocessing rewritten), to see the cost of full-size images;
the captions are then meaningless, the timing is not. Run from the repository root:

    cargo build --release -p storyteller-cli
    cargo run --release -p storyteller-cli -- demo --out storyteller-demo
    python benches/serve_load.py --model storyteller-demo/model [--crop 224] \
        [--requests 200] [--clients 16] [--out benches/results/serve-load.txt]
"""
import argparse
import datetime
import http.client
import io
import json
import os
import pathlib
import platform
import shutil
import subprocess
import tempfile
import threading
import time

import numpy as np
from PIL import Image
from skimage import data as samples

SAMPLES = ["astronaut", "coffee", "chelsea", "rocket", "hubble_deep_field", "immunohistochemistry"]


def jpegs():
    out = []
    for name in SAMPLES:
        pixels = getattr(samples, name)()
        if pixels.ndim == 2:
            pixels = np.stack([pixels] * 3, axis=-1)
        buffer = io.BytesIO()
        Image.fromarray(pixels[..., :3]).save(buffer, format="JPEG", quality=90)
        out.append(buffer.getvalue())
    return out


def model_with_crop(model, crop, scratch):
    copy = pathlib.Path(scratch) / "model"
    shutil.copytree(model, copy)
    config = json.loads((copy / "config.json").read_text())
    config["preprocess"]["crop"] = crop
    config["preprocess"]["resize"] = round(crop * 256 / 224)
    (copy / "config.json").write_text(json.dumps(config, indent=2))
    return copy


def post(port, body, query):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    try:
        conn.request("POST", "/api/caption" + query, body, {"Content-Type": "image/jpeg"})
        response = conn.getresponse()
        payload = response.read()
        return response.status, payload
    finally:
        conn.close()


def get(port, path):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("GET", path)
    return json.loads(conn.getresponse().read())


def run_load(port, bodies, requests, clients, query):
    latencies, failures, lock = [], [], threading.Lock()
    counter = iter(range(requests))

    def client():
        while True:
            with lock:
                i = next(counter, None)
            if i is None:
                return
            started = time.perf_counter()
            status, payload = post(port, bodies[i % len(bodies)], query)
            elapsed = time.perf_counter() - started
            with lock:
                latencies.append(elapsed)
                if status != 200:
                    failures.append((status, payload[:200]))

    started = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sorted(latencies), failures, time.perf_counter() - started


def quantile(xs, q):
    return xs[min(len(xs) - 1, int(q * len(xs)))]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--binary", default=os.path.join(
        os.environ.get("CARGO_TARGET_DIR", "target"), "release", "storyteller"))
    parser.add_argument("--crop", type=int, help="serve at this input size instead of the model's")
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--query", default="", help="e.g. ?search=greedy or ?width=5&n_best=5")
    parser.add_argument("--out", help="append the report to this file")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as scratch:
        model = model_with_crop(args.model, args.crop, scratch) if args.crop else args.model
        server = subprocess.Popen(
            [args.binary, "serve", "--model", str(model), "--addr", "127.0.0.1:0"],
            stdout=subprocess.PIPE, text=True)
        try:
            line = server.stdout.readline().strip()
            assert line.startswith("listening on http://"), line
            port = int(line.rsplit(":", 1)[1])
            bodies = jpegs()
            run_load(port, bodies, 2 * len(bodies), 1, args.query)  # warm-up, one at a time
            before = get(port, "/api/health")
            latencies, failures, wall = run_load(port, bodies, args.requests, args.clients, args.query)
            after = get(port, "/api/health")
            config = get(port, "/api/model")["config"]
        finally:
            server.terminate()
            server.wait()

    ms = lambda s: f"{s * 1e3:.1f} ms"  # noqa: E731
    report = (
        f"# storyteller serve load, {datetime.datetime.now():%Y-%m-%d %H:%M}, "
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores\n"
        f"model {args.model}: crop {config['preprocess']['crop']} px, "
        f"d_hidden {config['decoder']['d_hidden']}, vocab {config['decoder']['vocab_size']}; "
        f"query {args.query or '(default beam)'}; JPEG uploads {min(map(len, bodies))}-"
        f"{max(map(len, bodies))} bytes\n"
        f"{args.requests} requests from {args.clients} clients: {len(failures)} failures, "
        f"p50 {ms(quantile(latencies, 0.5))}, p90 {ms(quantile(latencies, 0.9))}, "
        f"p99 {ms(quantile(latencies, 0.99))}, {args.requests / wall:.1f} req/s, "
        f"{after['batches'] - before['batches']} model calls "
        f"({args.requests / max(1, after['batches'] - before['batches']):.1f} images per call)\n"
    )
    print(report, end="")
    if failures:
        print("failures:", failures[:5])
    if args.out:
        with open(args.out, "a") as f:
            f.write(report + "\n")
    raise SystemExit(1 if failures else 0)


if __name__ == "__main__":
    main()
