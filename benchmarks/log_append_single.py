"""Single-entry append requests from 50 concurrent clients (SQLite).

Usage: python benchmarks/log_append_single.py [--clients 50] [--seconds 15]
       [--backend sqlite|postgres] [--client auto|wrk|python]

Each client holds a keep-alive connection and sends one entry per request (each a different
entry, with a log writer's API key: the server authenticates it, checks the role and stamps
the principal and its clock), waiting for the answer (which comes only once the entry is
durable). Prints requests/s (target >= 2,000/s on SQLite), latency percentiles, checkpoints
written, the server's CPU and resident memory.

The load comes from ``wrk`` (Debian package ``wrk``; one thread, a Lua script sets the method,
body and headers) when it is installed: on a 2-core machine a Python client would eat the core
the server needs. Without it, the Python asyncio client in _log_support is used. The output says
which. Any answer other than 201 fails the run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from _log_support import (
    CLIENT_TEMPLATE,
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
from sqlalchemy import func, select

from custodes.log._tables import log_checkpoints, log_entries
from custodes.store import create_db_engine


async def _load(base_url: str, clients: int, seconds: float, api_key: str) -> list[float]:
    latencies: list[float] = []
    stop_at = now() + seconds
    counter = iter(range(10**12))

    async def client() -> None:
        http = await Http.connect(base_url, api_key)
        while now() < stop_at:
            t0 = now()
            status, _ = await http.request("POST", "/log/entries", client_entry_json(next(counter)))
            assert status == 201, status
            latencies.append(now() - t0)
        http.close()

    await asyncio.gather(*(client() for _ in range(clients)))
    return latencies


# One wrk thread: every request a new entry (a counter in its text).
_WRK_SCRIPT = """
local counter = 0
local headers = {["Content-Type"] = "application/json", ["Authorization"] = "Bearer %s"}
local template = [[%s]]
request = function()
  counter = counter + 1
  return wrk.format("POST", "/log/entries", headers, string.format(template, counter))
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("WRK %%d %%d %%d %%d %%d %%d\\n", summary.requests, summary.duration,
    e.status, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
"""


def _wrk(
    base_url: str, clients: int, seconds: float, workdir: Path, api_key: str
) -> tuple[int, float, float, float]:
    """Run wrk; returns (requests answered 201, seconds, p50, p99 latency in seconds)."""
    script = workdir / "append.lua"
    script.write_text(_WRK_SCRIPT % (api_key, CLIENT_TEMPLATE.decode().replace("%d", "wrk %d")))
    out = subprocess.run(
        [
            "wrk",
            "-t1",
            f"-c{clients}",
            f"-d{seconds:.0f}s",
            "--timeout",
            "10s",
            "-s",
            str(script),
            base_url,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    m = re.search(r"^WRK (\d+) (\d+) (\d+) (\d+) (\d+) (\d+)$", out, re.M)
    if m is None:
        raise SystemExit(f"wrk printed no summary:\n{out}")
    requests, duration, bad_status, socket_errors, p50, p99 = map(int, m.groups())
    if bad_status or socket_errors:
        raise SystemExit(
            f"wrk: {bad_status} answers other than 201, {socket_errors} socket errors:\n{out}"
        )
    return requests, duration / 1e6, p50 / 1e6, p99 / 1e6


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--client", choices=["auto", "wrk", "python"], default="auto")
    args = parser.parse_args()
    use_wrk = args.client == "wrk" or (args.client == "auto" and shutil.which("wrk") is not None)
    with contextlib.ExitStack() as stack:
        url = stack.enter_context(postgres_url()) if args.backend == "postgres" else ""
        data = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        server = stack.enter_context(server_for(data, url))
        rss0 = rss_kib(server.pid)
        cpu0 = cpu_seconds(server.pid)
        start = now()
        if use_wrk:
            client = "wrk (1 thread, C; Lua script)"
            requests, elapsed, p50, p99 = _wrk(
                server.base_url,
                args.clients,
                args.seconds,
                data,
                server.api_key,  # type: ignore[attr-defined]
            )
            cpu = cpu_seconds(server.pid) - cpu0
        else:
            client = (
                "Python asyncio client (--client python)"
                if args.client == "python"
                else "Python asyncio client (wrk is not installed)"
            )
            latencies: list[float] = run(
                _load(server.base_url, args.clients, args.seconds, server.api_key)  # type: ignore[attr-defined]
            )  # type: ignore[assignment]
            elapsed = now() - start
            cpu = cpu_seconds(server.pid) - cpu0
            requests = len(latencies)
            p50, p99 = percentile(latencies, 50), percentile(latencies, 99)
        rss1 = rss_kib(server.pid)
        engine = create_db_engine(url or f"sqlite:///{data / 'custodes.db'}")
        with engine.connect() as conn:
            checkpoints = conn.execute(select(func.count()).select_from(log_checkpoints)).scalar()
            stored = conn.execute(select(func.count()).select_from(log_entries)).scalar() or 0
        engine.dispose()
    if stored < requests:
        raise SystemExit(f"only {stored} entries stored, but {requests} appends were answered 201")
    print(f"backend: {args.backend}, {args.clients} concurrent clients, one entry per request")
    print(f"load generator: {client}")
    print(
        f"{requests} requests in {elapsed:.1f} s: {requests / elapsed:,.0f} req/s "
        f"({stored} entries stored)"
    )
    print(f"latency p50 {p50 * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms")
    print(f"checkpoints signed: {checkpoints} ({checkpoints / elapsed:.1f}/s)")
    print(f"server RSS: {rss0 / 1024:.0f} MiB before, {rss1 / 1024:.0f} MiB after")
    print(
        f"server CPU: {cpu:.1f} s over {elapsed:.1f} s wall = {cpu / elapsed:.2f} cores; "
        f"{requests / cpu:,.0f} per server-CPU-second (the rate one idle core would allow)"
    )
    print(cpu_note())


if __name__ == "__main__":
    main()
