"""Inclusion proofs over HTTP on a 10-million-entry log; server memory on a small and a big log.

Usage: python benchmarks/log_proof_10m.py [--entries 10000000] [--dir /tmp/custodes-bench-10m]
       [--requests 3000]

Builds the log through the store layer (``TransparencyLog.integrate``, the sequencer's own
transaction: entries, tiles, state and checkpoints) unless the folder already holds it, starts a
real server on it and asks for inclusion proofs of random entries, one request at a time over a
keep-alive connection. Prints p50/p99 latency (target p50 <= 1 ms) and the server's resident
memory on a 1,000-entry log and on the big one after the same requests (it must not grow with
the log).
"""

from __future__ import annotations

import argparse
import http.client
import json
import random
import tempfile
import time
from pathlib import Path

from _log_support import build, cpu_note, percentile, rss_kib, server_for

from custodes.log import verify_inclusion


def measure(base_url: str, requests: int) -> tuple[list[float], int]:
    host, port = base_url.split("//")[1].split(":")
    conn = http.client.HTTPConnection(host, int(port))
    conn.request("GET", "/checkpoint")
    lines = conn.getresponse().read().decode().split("\n")
    size = int(lines[1])
    import base64

    root = base64.b64decode(lines[2])
    rng = random.Random(1)
    latencies = []
    for n in range(requests + 200):
        index = rng.randrange(size)
        t0 = time.perf_counter()
        conn.request("GET", f"/log/proof/inclusion?index={index}&size={size}")
        body = conn.getresponse().read()
        elapsed = time.perf_counter() - t0
        if n >= 200:  # warm-up excluded
            latencies.append(elapsed)
        if n % 500 == 0:  # spot-check the answers
            proof = json.loads(body)
            verify_inclusion(base64.b64decode(proof["leaf_hash"]), index, size,
                             [base64.b64decode(h) for h in proof["proof"]], root)
    conn.close()
    return latencies, size


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--entries", type=int, default=10_000_000)
    parser.add_argument("--dir", type=Path, default=Path("/tmp/custodes-bench-10m"))
    parser.add_argument("--requests", type=int, default=3000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as small:
        build(Path(small), 1000)
        with server_for(Path(small)) as server:
            lat_small, _ = measure(server.base_url, args.requests)
            rss_small = rss_kib(server.pid)
    t0 = time.perf_counter()
    build(args.dir, args.entries)
    print(f"log ready in {time.perf_counter() - t0:.0f} s")
    with server_for(args.dir) as server:
        rss_start = rss_kib(server.pid)
        latencies, size = measure(server.base_url, args.requests)
        rss_big = rss_kib(server.pid)
    print(f"inclusion proof over HTTP, log of {size:,} entries, {len(latencies)} requests: "
          f"p50 {percentile(latencies, 50) * 1000:.2f} ms, "
          f"p99 {percentile(latencies, 99) * 1000:.2f} ms")
    print(f"same on a 1,000-entry log: p50 {percentile(lat_small, 50) * 1000:.2f} ms")
    print(f"server RSS: {rss_small / 1024:.0f} MiB after the 1,000-entry run; on the "
          f"{size:,}-entry log {rss_start / 1024:.0f} MiB at start, {rss_big / 1024:.0f} MiB "
          "after the requests")
    print(cpu_note())


if __name__ == "__main__":
    main()
