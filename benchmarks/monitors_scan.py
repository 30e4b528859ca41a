"""Scan throughput: ``TranscriptScanner`` over agent transcripts with 1 and N worker
processes (the rules tier, ``vuln_rules`` + ``coup_rules``; the scan's defaults), MB per
wall-second, with the parent's CPU time.

    nice -n 10 .venv/bin/python benchmarks/monitors_scan.py [--mb 50] [--workers 2]

The corpus is the DEV sets' transcripts written as OpenAI-style JSONL (repeated up to
``--mb``), into a temporary folder; detections go to a real review queue and log on SQLite.
Run on a quiet machine: wall-clock figures on shared cores measure the neighbours too.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

DATA = Path(__file__).resolve().parents[1] / "data" / "datasets" / "monitors"


def _corpus(folder: Path, mb: float) -> list[Path]:
    from custodes.monitors import read_dataset

    texts = [
        e.text
        for f in ("vuln_discovery_dev.jsonl", "coup_misuse_dev.jsonl")
        for e in read_dataset(DATA / f)
    ]
    files, done, i = [], 0, 0
    while done < mb * 1e6:
        path = folder / f"part-{len(files):03d}.jsonl"
        with path.open("w", encoding="utf-8") as fh:
            for _ in range(500):
                t = texts[i % len(texts)]
                i += 1
                line = json.dumps({"id": f"r{i}", "messages": [{"role": "user", "content": t}]})
                fh.write(line + "\n")
                done += len(line) + 1
        files.append(path)
    return files


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mb", type=float, default=50.0)
    ap.add_argument("--workers", type=int, default=2)
    a = ap.parse_args()
    from custodes.clock import SystemClock
    from custodes.log import NoteSigner, TransparencyLog
    from custodes.monitors import ReviewQueue, StaticDirectory, TranscriptScanner, default_registry
    from custodes.store import create_db_engine, migrate

    names = ["vuln_rules", "coup_rules"]
    directory = StaticDirectory(
        organisations={"agent@lab": "lab", "ana@aisi": "aisi"},
        reviewer_ids=("ana@aisi",),
        overseer_organisations=frozenset({"aisi"}),
    )
    with tempfile.TemporaryDirectory() as tmp:
        files = _corpus(Path(tmp), a.mb)
        size = sum(f.stat().st_size for f in files)
        for workers in sorted({1, a.workers}):
            engine = create_db_engine(f"sqlite:///{tmp}/scan-{workers}.db")
            migrate(engine)
            clock = SystemClock()
            log = TransparencyLog(engine, NoteSigner.generate("bench.custodes/log"), clock=clock)
            log.start()
            try:
                queue = ReviewQueue(engine, log, directory, clock=clock)
                reg = default_registry()
                scanner = TranscriptScanner(
                    [reg.get(n) for n in names],
                    queue,
                    actor="agent@lab",
                    workers=workers,
                    detector_names=names,
                )
                wall, cpu = time.perf_counter(), time.process_time()
                summary = scanner.scan(files)
                wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            finally:
                log.close()
                engine.dispose()
            print(
                f"workers {workers}: {size / 1e6:.1f} MB, {summary.records} records, "
                f"{summary.detections} detections in {wall:.1f} s: {size / 1e6 / wall:.1f} MB "
                f"per wall-second (parent CPU {cpu:.1f} s)"
            )


if __name__ == "__main__":
    main()
