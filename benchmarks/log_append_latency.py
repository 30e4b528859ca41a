"""Latency of one durable append when the log is idle (SQLite by default).

Usage: python benchmarks/log_append_latency.py [--appends 2000] [--batch-wait-ms 0]
       [--backend sqlite|postgres]

One caller appends one entry at a time through ``TransparencyLog.append`` (the sequencer thread,
a transaction with entries, tiles and state, synchronous=FULL on SQLite) and waits until it is
durable before sending the next, so no batch ever holds more than one entry. Then the same through
``append_batch([one], wait=False, inline_if_idle=True)`` (the gateway's path: an idle SQLite log
commits on the caller's thread). Also times the sequencer's transaction called directly (no
queue, no thread hand-off, no entry encoding), and its CPU time in the calling thread (the part
contention on a busy machine does not inflate much; the rest is the commit's fsync and waiting
for a core). Prints p50/p99 of each; the gateway's budget asks for well under 1 ms p50 for the
append when the machine is idle.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import tempfile
import time
from pathlib import Path

from _log_support import cpu_note, entry_json, percentile, postgres_url

from custodes.log import Entry, NoteSigner, TransparencyLog
from custodes.store import create_db_engine, migrate


def _figures(name: str, samples: list[float]) -> str:
    return (
        f"{name}: p50 {percentile(samples, 50) * 1000:.3f} ms, "
        f"p99 {percentile(samples, 99) * 1000:.3f} ms, "
        f"mean {sum(samples) / len(samples) * 1000:.3f} ms over {len(samples)}"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--appends", type=int, default=2000)
    parser.add_argument("--batch-wait-ms", type=float, default=0.0)
    args = parser.parse_args()
    with contextlib.ExitStack() as stack:
        data = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        url = (
            stack.enter_context(postgres_url())
            if args.backend == "postgres"
            else f"sqlite:///{data / 'custodes.db'}"
        )
        engine = create_db_engine(url)
        migrate(engine)
        log = TransparencyLog(
            engine, NoteSigner.generate("custodes.local/log"), batch_wait=args.batch_wait_ms / 1000
        )
        # Warm up: a few hundred entries so the tree has partial tiles on two levels.
        log._writer.integrate([entry_json(i) for i in range(300)], sign=True)
        counter = 300
        # Built (and so encoded: Entry.to_json, computed once) ahead, as the gateway and the
        # server build theirs before they append: the timed part is the log's own work, the
        # same as appending the encoded bytes was before the log took only entries.
        entries = [Entry.from_json(entry_json(counter + i)) for i in range(2 * args.appends)]
        for entry in entries:
            entry.to_json()
        # The entries built ahead are long-lived objects: out of the collector's way, so that
        # its passes over them do not show up as the log's latency.
        gc.freeze()
        appended: list[float] = []
        for entry in entries[: args.appends]:
            t0 = time.perf_counter()
            log.append(entry)
            appended.append(time.perf_counter() - t0)
            counter += 1
        inline: list[float] = []
        for entry in entries[args.appends :]:
            t0 = time.perf_counter()
            log.append_batch([entry], wait=False, inline_if_idle=True).result()
            inline.append(time.perf_counter() - t0)
            counter += 1
        direct: list[float] = []
        cpu: list[float] = []
        for _ in range(args.appends):
            t0, c0 = time.perf_counter(), time.thread_time()
            log._writer.integrate([entry_json(counter)], sign=False)
            direct.append(time.perf_counter() - t0)
            cpu.append(time.thread_time() - c0)
            counter += 1
        log.close()
        engine.dispose()
    print(f"backend: {args.backend}, batch_wait {args.batch_wait_ms} ms, one entry per append")
    print(_figures("TransparencyLog.append (durable)", appended))
    print(_figures("TransparencyLog.append_batch([one], inline_if_idle) (durable)", inline))
    print(_figures("the sequencer's transaction ([one]) direct", direct))
    print(_figures("  of which CPU in the calling thread (no disk wait)", cpu))
    print(cpu_note())


if __name__ == "__main__":
    main()
