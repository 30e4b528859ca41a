"""Monitor speed figures: rules-tier scanning throughput (MB/s, one core), learned-tier
throughput (512-token chunks/s, one core), and the latency the rules tier adds inline in the
gateway (p50 / p99 for a 4 KB prompt).

    .venv/bin/python benchmarks/monitors_speed.py [--seconds 5]

Text is the agent transcripts and reports of the dev data set (data/datasets/monitors).
Run on a quiet machine: other processes on the same cores lower every figure.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

DATA = Path(__file__).resolve().parents[1] / "data" / "datasets" / "monitors"


def _one_core() -> None:
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = "1"
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})


def _texts() -> tuple[list[str], list[str]]:
    rows = [json.loads(line) for line in (DATA / "vuln_discovery_dev.jsonl").open()]
    transcripts = [r["text"] for r in rows if r["text"].startswith("### SYSTEM")]
    return [r["text"] for r in rows], transcripts


def _rates(work: float, wall: float, cpu: float) -> str:
    return f"{work / wall:.1f} per wall-second, {work / cpu:.1f} per CPU-second"


def rules_throughput(texts: list[str], seconds: float) -> str:
    from custodes.monitors import default_registry

    reg = default_registry()
    detectors = [reg.get("vuln_rules"), reg.get("coup_rules")]
    done, start, cpu = 0, time.perf_counter(), time.process_time()
    while time.perf_counter() - start < seconds:
        for t in texts:
            for d in detectors:
                d.detect(t)
            done += len(t.encode())
    return _rates(done / 1e6, time.perf_counter() - start, time.process_time() - cpu)


def learned_chunks_per_second(texts: list[str], seconds: float) -> str:
    from custodes.monitors._learned import LearnedDetector

    det = LearnedDetector.load()
    counts = {id(t): len(det._encoder.chunks(t)[1]) for t in texts}
    chunks, start, cpu = 0, time.perf_counter(), time.process_time()
    while time.perf_counter() - start < seconds:
        for t in texts:
            det.detect(t)
            chunks += counts[id(t)]
    return _rates(chunks, time.perf_counter() - start, time.process_time() - cpu)


def inline_latency(texts: list[str]) -> tuple[float, float]:
    from custodes.gateway import DetectorMonitor, MonitorRegistry
    from custodes.monitors import default_registry

    reg = default_registry()
    monitors = MonitorRegistry(
        [
            DetectorMonitor(reg.get("vuln_rules"), mode="observing"),
            DetectorMonitor(reg.get("coup_rules"), mode="observing"),
        ]
    )
    prompts = [t[i : i + 4096] for t in texts for i in range(0, len(t) - 4096, 4096)][:2000]
    samples = []
    for p in prompts * 3:
        # Thread CPU time: what the monitors cost, without time the scheduler gave to other
        # processes on a shared core (wall-clock p50 is printed too).
        t0 = time.thread_time_ns()
        monitors.screen(p, phase="prompt")
        samples.append((time.thread_time_ns() - t0) / 1e6)
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.99)]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=5.0)
    a = ap.parse_args()
    _one_core()
    everything, transcripts = _texts()
    print(
        f"rules tier, agent transcripts ({len(transcripts)} texts), MB: "
        f"{rules_throughput(transcripts, a.seconds)} (target >= 20)"
    )
    print(
        f"rules tier, whole dev set incl. dense crash reports, MB: "
        f"{rules_throughput(everything, a.seconds)}"
    )
    p50, p99 = inline_latency(transcripts)
    print(
        f"inline rules tier in the gateway, 4 KB prompt, CPU time: p50 {p50:.3f} ms, "
        f"p99 {p99:.3f} ms (target p50 <= 0.3)"
    )
    try:
        rate = learned_chunks_per_second(everything[:300], a.seconds)
    except Exception as exc:  # noqa: BLE001 - the learned extra is optional
        print(f"learned tier: unavailable ({exc})")
    else:
        print(f"learned tier, 512-token chunks: {rate} (target >= 200)")


if __name__ == "__main__":
    main()
