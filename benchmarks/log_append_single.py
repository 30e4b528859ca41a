"""Single-entry append requests from 50 concurrent clients (SQLite).

Usage: python benchmarks/log_append_single.py [--clients 50] [--seconds 15]
       [--backend sqlite|postgres]

Each client holds a keep-alive connection and sends one entry per request, waiting for the
answer (which comes only once the entry is durable). Prints requests/s (target >= 2,000/s on
SQLite), latency percentiles, checkpoints written, and the server's resident memory.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import tempfile
from pathlib import Path

from _log_support import (
    Http,
    cpu_note,
    cpu_seconds,
    entry_json,
    now,
    percentile,
    postgres_url,
    rss_kib,
    run,
    server_for,
)
from sqlalchemy import func, select

from custodes.log._tables import log_checkpoints
from custodes.store import create_db_engine


async def _load(base_url: str, clients: int, seconds: float) -> list[float]:
    latencies: list[float] = []
    stop_at = now() + seconds
    counter = iter(range(10**12))

    async def client() -> None:
        http = await Http.connect(base_url)
        while now() < stop_at:
            t0 = now()
            status, _ = await http.request("POST", "/log/entries", entry_json(next(counter)))
            assert status == 201, status
            latencies.append(now() - t0)
        http.close()

    await asyncio.gather(*(client() for _ in range(clients)))
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=15.0)
    args = parser.parse_args()
    with contextlib.ExitStack() as stack:
        url = stack.enter_context(postgres_url()) if args.backend == "postgres" else ""
        data = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        server = stack.enter_context(server_for(data, url))
        rss0 = rss_kib(server.pid)
        cpu0 = cpu_seconds(server.pid)
        start = now()
        latencies: list[float] = run(_load(server.base_url, args.clients, args.seconds))  # type: ignore[assignment]
        elapsed = now() - start
        rss1 = rss_kib(server.pid)
        cpu = cpu_seconds(server.pid) - cpu0
        engine = create_db_engine(url or f"sqlite:///{data / 'custodes.db'}")
        with engine.connect() as conn:
            checkpoints = conn.execute(select(func.count()).select_from(log_checkpoints)).scalar()
        engine.dispose()
    print(f"backend: {args.backend}, {args.clients} concurrent clients, one entry per request")
    print(f"{len(latencies)} requests in {elapsed:.1f} s: {len(latencies) / elapsed:,.0f} req/s")
    print(f"latency p50 {percentile(latencies, 50) * 1000:.1f} ms, "
          f"p99 {percentile(latencies, 99) * 1000:.1f} ms")
    print(f"checkpoints signed: {checkpoints} ({checkpoints / elapsed:.1f}/s)")
    print(f"server RSS: {rss0 / 1024:.0f} MiB before, {rss1 / 1024:.0f} MiB after")
    print(f"server CPU: {cpu:.1f} s over {elapsed:.1f} s wall = {cpu / elapsed:.2f} cores; "
          f"{len(latencies) / cpu:,.0f} per server-CPU-second (the rate one idle core would allow)")
    print(cpu_note())


if __name__ == "__main__":
    main()
