"""Sustained appends through the HTTP API in batches of 1,000, and append-to-checkpoint latency.

Usage: python benchmarks/log_append_http.py [--backend sqlite|postgres] [--seconds 20]

Prints entries/s (target: SQLite >= 10,000/s, PostgreSQL >= 5,000/s), the p50/p99 time from
appending an entry to seeing it in a signed checkpoint at /checkpoint (target p99 <= 1 s), and
the server's resident memory before and after.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import tempfile
from pathlib import Path

import orjson
from _log_support import (
    Http,
    client_entry_json,
    cpu_note,
    cpu_seconds,
    now,
    percentile,
    postgres_url,
    rss_kib,
    run,
    server_for,
)

BATCH = 1000


async def _load(
    base_url: str, seconds: float, clients: int, api_key: str
) -> tuple[int, list[float]]:
    done = 0
    stop_at = now() + seconds
    counter = iter(range(10**12))

    async def client() -> None:
        nonlocal done
        http = await Http.connect(base_url, api_key)
        while now() < stop_at:
            start = next(counter) * BATCH
            body = (
                b'{"entries":['
                + b",".join(client_entry_json(start + i) for i in range(BATCH))
                + b"]}"
            )
            status, _ = await http.request("POST", "/log/entries", body)
            assert status == 201, status
            done += BATCH
        http.close()

    async def probe() -> list[float]:
        # One single-entry append every 50 ms; time until /checkpoint covers it.
        http = await Http.connect(base_url, api_key)
        poll = await Http.connect(base_url)
        latencies: list[float] = []
        while now() < stop_at:
            t0 = now()
            _, body = await http.request(
                "POST", "/log/entries", client_entry_json(10**11 + len(latencies))
            )
            index = orjson.loads(body)["entries"][0]["index"]
            while True:
                _, cp = await poll.request("GET", "/checkpoint")
                if int(cp.split(b"\n")[1]) > index:
                    break
                await asyncio.sleep(0.005)
            latencies.append(now() - t0)
            await asyncio.sleep(0.05)
        return latencies

    results = await asyncio.gather(*(client() for _ in range(clients)), probe())
    return done, results[-1]  # type: ignore[return-value]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--clients", type=int, default=4)
    args = parser.parse_args()
    with contextlib.ExitStack() as stack:
        url = stack.enter_context(postgres_url()) if args.backend == "postgres" else ""
        data = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        server = stack.enter_context(server_for(data, url))
        rss0 = rss_kib(server.pid)
        cpu0 = cpu_seconds(server.pid)
        start = now()
        done, latencies = run(
            _load(server.base_url, args.seconds, args.clients, server.api_key)  # type: ignore[attr-defined]
        )  # type: ignore[misc]
        elapsed = now() - start
        rss1 = rss_kib(server.pid)
        cpu = cpu_seconds(server.pid) - cpu0
    print(f"backend: {args.backend}, {args.clients} clients, batches of {BATCH}")
    print(f"appended {done} entries in {elapsed:.1f} s: {done / elapsed:,.0f} entries/s")
    print(
        f"append -> signed checkpoint: p50 {percentile(latencies, 50) * 1000:.0f} ms, "
        f"p99 {percentile(latencies, 99) * 1000:.0f} ms, max {max(latencies) * 1000:.0f} ms "
        f"({len(latencies)} probes)"
    )
    print(f"server RSS: {rss0 / 1024:.0f} MiB before, {rss1 / 1024:.0f} MiB after")
    print(
        f"server CPU: {cpu:.1f} s over {elapsed:.1f} s wall = {cpu / elapsed:.2f} cores; "
        f"{done / cpu:,.0f} per server-CPU-second (the rate one idle core would allow)"
    )
    print(cpu_note())


if __name__ == "__main__":
    main()
