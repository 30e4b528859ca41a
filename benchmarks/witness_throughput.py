"""Cosignatures per second one witness serves, with small consistency proofs (target >= 1,000).

One witness server process (uvicorn, SQLite, group commit) witnesses LOGS logs; each log grows
one leaf per request, so every request carries a proof of a few hashes, and each log's requests
are sequential (as a real log's publisher sends them). Requests are precomputed (signed
checkpoints and proofs) so the load generator spends its CPU on HTTP only. Every answer must
be 200 with a cosignature line; the figure counts only those.

    .venv/bin/python benchmarks/witness_throughput.py [--logs 32] [--per-log 150]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from witness_support import RawConnection, WitnessServer  # noqa: E402

from custodes.log import (  # noqa: E402
    Checkpoint,
    NoteSigner,
    consistency_proof,
    leaf_hash,
    tree_hash,
)
from custodes.witness import AddCheckpointRequest  # noqa: E402


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and its children (Linux /proc), to see past CPU
    contention; uvicorn workers are children of the supervisor."""
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if stat.parent.name == str(pid) or fields[1] == str(pid):
            total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def requests_for(signer: NoteSigner, count: int) -> list[bytes]:
    leaves = [leaf_hash(hashlib.sha256(b"%d" % i).digest()) for i in range(count + 1)]
    bodies = []
    for size in range(1, count + 1):
        old = size - 1
        proof = consistency_proof(old, size, leaves[:size]) if old else []
        note = Checkpoint(signer.name, size, tree_hash(leaves[:size])).sign(signer).to_text()
        bodies.append(AddCheckpointRequest.build(old, proof, note))
    return bodies


async def drive(port: int, bodies: list[bytes]) -> int:
    conn = await RawConnection.open(port)
    ok = 0
    try:
        for body in bodies:
            status, answer = await conn.post("/add-checkpoint", body)
            if status != 200 or not answer.startswith("\u2014 ".encode()):
                raise RuntimeError(f"witness answered {status}: {answer[:200]!r}")
            ok += 1
    finally:
        conn.close()
    return ok


async def run(port: int, work: list[list[bytes]]) -> tuple[int, float]:
    # Warm up (connections, SQLite pages) with each log's first request.
    await asyncio.gather(*(drive(port, w[:1]) for w in work))
    started = time.perf_counter()
    counts = await asyncio.gather(*(drive(port, w[1:]) for w in work))
    return sum(counts), time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--logs", type=int, default=32)
    parser.add_argument("--per-log", type=int, default=150)
    parser.add_argument("--workers", type=int, default=1, help="witness server processes")
    args = parser.parse_args()
    signers = [NoteSigner.generate(f"bench{i}.example/log") for i in range(args.logs)]
    t = time.perf_counter()
    work = [requests_for(s, args.per_log) for s in signers]
    print(f"precomputed {args.logs * args.per_log} requests in {time.perf_counter() - t:.1f}s")
    server = WitnessServer(
        "bench.witness.example", [s.verifier for s in signers], workers=args.workers
    ).wait()
    try:
        cpu_before = cpu_seconds(server.process.pid)
        count, elapsed = asyncio.run(run(server.port, work))
        cpu = cpu_seconds(server.process.pid) - cpu_before
    finally:
        server.stop()
    load = os.getloadavg()[0]
    print(
        f"{count} cosignatures in {elapsed:.2f}s from {args.logs} logs; the witness process "
        f"used {cpu:.2f} CPU-s ({count / cpu:,.0f} cosignatures per CPU-second); "
        f"load average {load:.1f} on {os.cpu_count()} cores"
    )
    print(f"cosignatures/s one witness serves: {count / elapsed:,.0f} (target >= 1,000)")


if __name__ == "__main__":
    main()
