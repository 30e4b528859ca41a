"""Inclusion proofs over HTTP on a 10-million-entry log; server memory on a small and a big log.

Usage: python benchmarks/log_proof_10m.py [--entries 10000000] [--dir /tmp/custodes-bench-10m]
       [--requests 3000] [--seconds 10] [--client auto|wrk|python]

Builds the log through the store layer (``TreeWriter.integrate``, the sequencer's own
transaction: entries, tiles, state and checkpoints) unless the folder already holds it, starts a
real server on it and asks for inclusion proofs of random entries, one request at a time over a
keep-alive connection. Prints p50/p99 latency (target p50 <= 1 ms) and the server's resident
memory on a 1,000-entry log and on the big one after the same requests (it must not grow with
the log).

Latency is timed by ``wrk`` (Debian package ``wrk``: one thread, one connection, a Lua script
picks a random index per request) when it is installed, so that the figure is the server's and
not a Python client's header parsing; without it (or with ``--client python``) by Python's
``http.client``, which adds about 0.15 ms per request here. Either way, a Python client first
fetches and verifies proofs of random entries against the signed checkpoint's root (a fast wrong
answer is no answer), and every wrk answer must be 200.

Each index is random over the whole log, so nearly every request reads a level-0 tile no earlier
request read: the OS page cache is cold for it unless the same run touched it. The figure is
printed twice, for first reads and for the same indices again (page cache warm).
"""

from __future__ import annotations

import argparse
import http.client
import json
import random
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from _log_support import build, cpu_note, percentile, rss_kib, server_for

from custodes.log import verify_inclusion


def measure(base_url: str, requests: int, seed: int = 1) -> tuple[list[float], int]:
    """Time ``requests`` random proofs with http.client (after 200 untimed), checking every 50th
    against the checkpoint's root; returns the latencies and the log's size."""
    host, port = base_url.split("//")[1].split(":")
    conn = http.client.HTTPConnection(host, int(port))
    conn.request("GET", "/checkpoint")
    lines = conn.getresponse().read().decode().split("\n")
    size = int(lines[1])
    import base64

    root = base64.b64decode(lines[2])
    rng = random.Random(seed)
    latencies = []
    for n in range(requests + 200):
        index = rng.randrange(size)
        t0 = time.perf_counter()
        conn.request("GET", f"/log/proof/inclusion?index={index}&size={size}")
        body = conn.getresponse().read()
        elapsed = time.perf_counter() - t0
        if n >= 200:  # warm-up excluded
            latencies.append(elapsed)
        if n % 50 == 0:  # spot-check the answers
            proof = json.loads(body)
            verify_inclusion(
                base64.b64decode(proof["leaf_hash"]),
                index,
                size,
                [base64.b64decode(h) for h in proof["proof"]],
                root,
            )
    conn.close()
    return latencies, size


# One connection, one request at a time; the indices come from a seeded generator, so a second
# run with the same seed asks for the same proofs.
_WRK_SCRIPT = """
local size = %d
math.randomseed(%d)
request = function()
  return wrk.format("GET", "/log/proof/inclusion?index=" .. math.random(0, size - 1)
                    .. "&size=" .. size)
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("WRK %%d %%d %%d %%d %%d\\n", summary.requests, e.status,
    e.connect + e.read + e.write + e.timeout, latency:percentile(50), latency:percentile(99)))
end
"""


def measure_wrk(
    base_url: str, size: int, seconds: float, seed: int, workdir: Path
) -> tuple[int, float, float]:
    """(requests, p50, p99 in seconds) from wrk asking for random proofs for ``seconds``."""
    script = workdir / f"proof-{seed}.lua"
    script.write_text(_WRK_SCRIPT % (size, seed))
    out = subprocess.run(
        ["wrk", "-t1", "-c1", f"-d{seconds:.0f}s", "-s", str(script), base_url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    m = re.search(r"^WRK (\d+) (\d+) (\d+) (\d+) (\d+)$", out, re.M)
    if m is None:
        raise SystemExit(f"wrk printed no summary:\n{out}")
    requests, bad_status, socket_errors, p50, p99 = map(int, m.groups())
    if bad_status or socket_errors:
        raise SystemExit(
            f"wrk: {bad_status} answers other than 200, {socket_errors} socket errors:\n{out}"
        )
    return requests, p50 / 1e6, p99 / 1e6


def timed(
    base_url: str, size: int, args: argparse.Namespace, workdir: Path, use_wrk: bool
) -> list[tuple[str, int, float, float]]:
    """(label, requests, p50, p99) for first reads of random proofs, then the same again."""
    out = []
    seed = time.time_ns() % 1_000_000  # new indices on every run of the benchmark
    for label in ("first reads", "same indices again"):
        if use_wrk:
            out.append((label, *measure_wrk(base_url, size, args.seconds, seed, workdir)))
        else:
            latencies, _ = measure(base_url, args.requests, seed=seed)
            out.append(
                (label, len(latencies), percentile(latencies, 50), percentile(latencies, 99))
            )
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--entries", type=int, default=10_000_000)
    parser.add_argument("--dir", type=Path, default=Path("/tmp/custodes-bench-10m"))
    parser.add_argument("--requests", type=int, default=3000, help="Python client requests")
    parser.add_argument("--seconds", type=float, default=10.0, help="each wrk run")
    parser.add_argument("--client", choices=["auto", "wrk", "python"], default="auto")
    args = parser.parse_args()
    use_wrk = args.client == "wrk" or (args.client == "auto" and shutil.which("wrk") is not None)
    client = (
        "wrk (C; 1 connection, 1 request at a time)"
        if use_wrk
        else "Python http.client (1 connection)"
    )
    with tempfile.TemporaryDirectory() as tmp:
        small = Path(tmp) / "small"
        build(small, 1000)
        with server_for(small) as server:
            measure(server.base_url, 200, seed=99)  # verifies answers, warms up
            runs_small = timed(server.base_url, 1001, args, Path(tmp), use_wrk)
            rss_small = rss_kib(server.pid)
        t0 = time.perf_counter()
        build(args.dir, args.entries)
        print(f"log ready in {time.perf_counter() - t0:.0f} s")
        with server_for(args.dir) as server:
            rss_start = rss_kib(server.pid)
            _, size = measure(server.base_url, 200, seed=99)
            runs = timed(server.base_url, size, args, Path(tmp), use_wrk)
            rss_big = rss_kib(server.pid)
    print(f"timed by: {client}; answers verified against the checkpoint by a Python client")
    for (label, n, p50, p99), (_, n_small, p50_small, _) in zip(runs, runs_small, strict=True):
        print(
            f"inclusion proof over HTTP, log of {size:,} entries, {label} ({n} requests): "
            f"p50 {p50 * 1000:.2f} ms, p99 {p99 * 1000:.2f} ms; on a 1,000-entry log: "
            f"p50 {p50_small * 1000:.2f} ms ({n_small} requests)"
        )
    print(
        f"server RSS: {rss_small / 1024:.0f} MiB after the 1,000-entry runs; on the "
        f"{size:,}-entry log {rss_start / 1024:.0f} MiB at start, {rss_big / 1024:.0f} MiB "
        "after the requests"
    )
    print(cpu_note())


if __name__ == "__main__":
    main()
