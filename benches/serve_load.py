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

`--hostile N` measures the same load twice: alone, then while N hostile connections run
(half idle, half "slow loris" sending a header byte every half second, each reconnecting
when the server cuts it off) and one client uploads PNGs declaring 8192x8192 pixels in a
loop. It reports both p99 latencies, their ratio, what the hostile side got back, and the
server's peak resident memory (VmHWM). The script raises its open-file limit (the server
inherits it) and starts the server with `--max-connections` above N.
"""
import argparse
import datetime
import http.client
import io
import json
import os
import pathlib
import platform
import resource
import shutil
import socket
import struct
import zlib
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


def png_claiming(width, height):
    """A valid PNG header declaring width x height pixels, with almost no pixel data."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b""))


class Hostile:
    """Idle and slow connections plus a decompression-bomb uploader, until stopped."""

    def __init__(self, port, connections):
        self.port, self.stop = port, threading.Event()
        self.counts, self.lock = {"cut off": 0, "refused": 0, "bomb 422": 0, "bomb other": 0}, threading.Lock()
        self.threads = [threading.Thread(target=self.idle, args=(i % 2 == 1,), daemon=True)
                        for i in range(connections)]
        self.threads.append(threading.Thread(target=self.bombs, daemon=True))

    def count(self, key):
        with self.lock:
            self.counts[key] += 1

    def idle(self, slow):
        while not self.stop.is_set():
            try:
                sock = socket.create_connection(("127.0.0.1", self.port), timeout=30)
            except OSError:
                self.count("refused")
                time.sleep(0.5)
                continue
            sock.settimeout(0.5)
            head = b"GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"a" * 10000
            sent = 0
            try:
                while not self.stop.is_set():
                    if slow:
                        sock.send(head[sent:sent + 1])
                        sent += 1
                    try:
                        if sock.recv(4096) == b"":
                            self.count("cut off")
                            break
                    except socket.timeout:
                        pass
            except OSError:
                self.count("cut off")
            finally:
                sock.close()

    def bombs(self):
        bomb = png_claiming(8192, 8192)
        while not self.stop.is_set():
            try:
                status, _ = post(self.port, bomb, "")
                self.count("bomb 422" if status == 422 else "bomb other")
            except OSError:
                self.count("bomb other")

    def __enter__(self):
        for t in self.threads:
            t.start()
        time.sleep(2.0)  # let every connection open
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for t in self.threads:
            t.join(timeout=5)


def peak_memory_mb(pid):
    for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


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
    parser.add_argument("--hostile", type=int, default=0,
                        help="also measure while this many idle/slow connections and bomb uploads run")
    args = parser.parse_args()
    extra = []
    if args.hostile:
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        wanted = 2 * args.hostile + 1024
        if hard != resource.RLIM_INFINITY:
            wanted = min(wanted, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, wanted), hard))
        extra = ["--max-connections", str(args.hostile + 512)]

    with tempfile.TemporaryDirectory() as scratch:
        model = model_with_crop(args.model, args.crop, scratch) if args.crop else args.model
        server = subprocess.Popen(
            [args.binary, "serve", "--model", str(model), "--addr", "127.0.0.1:0", "--no-access-log",
             *extra],
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
            hostile = None
            if args.hostile:
                with Hostile(port, args.hostile) as attack:
                    h_latencies, h_failures, h_wall = run_load(
                        port, bodies, args.requests, args.clients, args.query)
                hostile = (h_latencies, h_failures, h_wall, dict(attack.counts))
            peak = peak_memory_mb(server.pid)
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
    if hostile:
        h_latencies, h_failures, h_wall, counts = hostile
        failures = failures + h_failures
        ratio = quantile(h_latencies, 0.99) / quantile(latencies, 0.99)
        report += (
            f"the same under attack ({args.hostile} idle/slow connections, 8192x8192 PNG bombs): "
            f"{len(h_failures)} failures, p50 {ms(quantile(h_latencies, 0.5))}, "
            f"p99 {ms(quantile(h_latencies, 0.99))} ({ratio:.2f}x unloaded p99), "
            f"{args.requests / h_wall:.1f} req/s; hostile side: {counts}\n"
        )
    report += f"server peak resident memory {peak:.0f} MB\n"
    print(report, end="")
    if failures:
        print("failures:", failures[:5])
    if args.out:
        with open(args.out, "a") as f:
            f.write(report + "\n")
    raise SystemExit(1 if failures else 0)


if __name__ == "__main__":
    main()
