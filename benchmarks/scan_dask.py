"""Scan throughput: `custodes scan` locally (one process) and on a Dask LocalCluster of 1, 2
and 4 worker processes, over the same corpus (the labelled vuln and coup dev sets of
data/datasets/monitors, repeated to about 50 MB), each into a fresh SQLite database.

    nice -n 10 .venv/bin/python benchmarks/scan_dask.py [--mb 50] [--workers 1 2 4]

The Dask figures time the scan alone (the cluster is started and every worker has built its
detectors before the clock starts: a long scan pays that once). Prints MB/s, the overhead of
one Dask worker over the local scan, and the load average before and after, since the machine
is shared. Detections are checked equal across runs (the same scan, wherever it ran).
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

DATA = Path(__file__).resolve().parents[1] / "data" / "datasets" / "monitors"
DETECTORS = ["vuln_rules", "coup_rules"]


def _corpus(root: Path, mb: int) -> Path:
    folder = root / "corpus"
    folder.mkdir()
    parts = [(DATA / n).read_bytes() for n in ("vuln_discovery_dev.jsonl", "coup_misuse_dev.jsonl")]
    size, i = 0, 0
    while size < mb * 1_000_000:
        for p in parts:
            (folder / f"part-{i:03d}.jsonl").write_bytes(p)
            size += len(p)
            i += 1
    return folder


def _scanner(db: Path):  # type: ignore[no-untyped-def]
    from custodes.clock import SystemClock
    from custodes.log import NoteSigner, TransparencyLog
    from custodes.monitors import ReviewQueue, StaticDirectory, TranscriptScanner, default_registry
    from custodes.store import create_db_engine, migrate

    engine = create_db_engine(f"sqlite:///{db}")
    migrate(engine)
    clock = SystemClock()
    log = TransparencyLog(engine, NoteSigner.generate("bench.custodes/log"), clock=clock)
    directory = StaticDirectory(
        organisations={"agent@lab": "lab", "ana@aisi": "aisi"},
        reviewer_ids=("ana@aisi",),
        overseer_organisations=frozenset({"aisi"}),
    )
    queue = ReviewQueue(engine, log, directory, clock=clock)
    registry = default_registry()
    return TranscriptScanner(
        [registry.get(n) for n in DETECTORS], queue, actor="agent@lab", detector_names=DETECTORS
    ), log


def _found(scanner) -> list[tuple[str, str, str]]:  # type: ignore[no-untyped-def]
    return [(d.location, d.detector, d.category) for d in scanner.queue.list(limit=10_000_000)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=50)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--shard-mb", type=int, default=8)
    args = parser.parse_args()
    logging.getLogger("distributed").setLevel(logging.ERROR)
    import distributed

    from custodes.monitors import DaskScan, scan_sources
    from custodes.monitors._dask_scan import _detectors

    root = Path(tempfile.mkdtemp(prefix="custodes-scan-bench-"))
    try:
        corpus = _corpus(root, args.mb)
        total = sum(f.stat().st_size for f in corpus.iterdir()) / 1e6
        print(
            f"corpus: {total:.1f} MB in {len(list(corpus.iterdir()))} files; cores: "
            f"{len(os.sched_getaffinity(0))}; load average before: {os.getloadavg()}"
        )
        scanner, log = _scanner(root / "local.db")
        start = time.perf_counter()
        summary = scanner.scan([corpus])
        local = time.perf_counter() - start
        reference = _found(scanner)
        log.close()
        print(
            f"local scan (one process): {total / local:6.2f} MB/s ({local:.1f} s, "
            f"{summary.detections} detections)"
        )
        for n in args.workers:
            with (
                distributed.LocalCluster(
                    n_workers=n,
                    threads_per_worker=1,
                    processes=True,
                    host="127.0.0.1",
                    dashboard_address=":0",
                    silence_logs=logging.ERROR,
                ) as cluster,
                distributed.Client(cluster) as client,
            ):
                client.run(_detectors, tuple(DETECTORS))  # built before the clock starts
                scanner, log = _scanner(root / f"dask{n}.db")
                runner = DaskScan(scanner, client, shard_bytes=args.shard_mb * 1024 * 1024)
                start = time.perf_counter()
                runner.scan(scan_sources([corpus]))
                took = time.perf_counter() - start
                same = _found(scanner) == reference
                log.close()
            extra = f", {100 * (took / local - 1):+.0f}% time vs local" if n == 1 else ""
            print(
                f"dask, {n} worker(s):        {total / took:6.2f} MB/s ({took:.1f} s{extra}; "
                f"detections identical to local: {same})"
            )
        print(f"load average after: {os.getloadavg()}; at {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
