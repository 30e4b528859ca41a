"""Time from a new checkpoint to a 2-of-3 cosigned checkpoint on loopback (target p99 <= 200 ms).

Three witness server processes (``python -m custodes.witness``, each with its own SQLite
database) and a log with its publisher in this process (SQLite, durable commits). For each of
ROUNDS single-entry appends, the clock starts when the log hands the newly committed checkpoint
to its listeners and stops when the publisher has stored two verified cosignatures for it (the
quorum, durably recorded, so ``GET /checkpoint/cosigned`` would serve it).

    .venv/bin/python benchmarks/witness_latency.py [--rounds 300]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from witness_support import WitnessServer  # noqa: E402

from custodes.log import Entry, NoteSigner, SignedCheckpoint, TransparencyLog  # noqa: E402
from custodes.log import _types as _log_types  # noqa: E402,F401
from custodes.store import create_db_engine, migrate  # noqa: E402
from custodes.witness import PolicyWitness, WitnessPolicy, WitnessPublisher  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=300)
    args = parser.parse_args()
    signer = NoteSigner.generate("latency.bench.example/log")
    witnesses = [WitnessServer(f"w{i}.bench.example", [signer.verifier]) for i in range(3)]
    for w in witnesses:
        w.wait()
    engine = create_db_engine(f"sqlite:///{tempfile.mkdtemp()}/log.db")
    migrate(engine)
    log = TransparencyLog(engine, signer, checkpoint_interval=0.001)
    log.start()
    policy = WitnessPolicy.threshold(
        2, [PolicyWitness(w.signer.name, w.signer.verifier, w.url) for w in witnesses]
    )
    publisher = WitnessPublisher(engine, log, policy, retry_interval=1.0)
    signed_at: dict[int, float] = {}
    lock = threading.Lock()

    def record(cp: SignedCheckpoint) -> None:
        with lock:
            signed_at.setdefault(cp.checkpoint.size, time.perf_counter())

    log.add_checkpoint_listener(record)  # registered first: runs before the publisher's
    publisher.start()
    latencies = []
    try:
        for i in range(args.rounds + 10):
            entry = Entry.create(
                "log.annotation/v1",
                time=datetime.now(UTC),
                principal="bench",
                body={"text": f"round {i}"},
            )
            size = log.append(entry).index + 1
            if not publisher.wait_for_quorum(size, timeout=10):
                raise RuntimeError(f"size {size} did not reach quorum in 10 s")
            done = time.perf_counter()
            with lock:
                start = signed_at[size]
            if i >= 10:  # warm-up rounds (connections, caches) are not counted
                latencies.append((done - start) * 1000)
    finally:
        publisher.close()
        log.close()
        for w in witnesses:
            w.stop()
    latencies.sort()
    p = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))]  # noqa: E731
    print(f"{len(latencies)} checkpoints, each cosigned by 2 of 3 witnesses")
    print(
        f"p50 {p(0.50):.1f} ms  p90 {p(0.90):.1f} ms  p99 {p(0.99):.1f} ms  "
        f"max {latencies[-1]:.1f} ms  mean {statistics.mean(latencies):.1f} ms"
    )
    print(f"new checkpoint -> 2-of-3 cosigned, p99: {p(0.99):.1f} ms (target <= 200 ms)")


if __name__ == "__main__":
    main()
