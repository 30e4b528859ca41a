"""Append throughput of this tree and of another checkout, side by side in one run.

Usage: python benchmarks/log_append_compare.py --before /tmp/i14-before-eaac6f7
       [--rounds 6] [--seconds 6] [--backend sqlite|postgres]

Make the other tree with ``git archive <commit> | tar -x -C /tmp/i14-before-eaac6f7`` (for
the log's per-integration self-check: the commit before it, eaac6f7). Two servers start, each
from its own tree on its own fresh database, and the load shapes of log_append_http.py (4
clients, batches of 1,000 entries) and log_append_single.py (50 clients, one entry per request,
the Python client) run against them in alternating rounds (A B, then B A, ...), so that the
machine's changing load hits both alike. Prints entries/s per round, the median of each, and
the ratio after/before, and the server CPU time per entry (which the machine's other load
moves much less than the wall-clock rate). Any answer other than 201 fails the run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

from _log_support import (
    ROOT,
    Http,
    client_entry_json,
    cpu_note,
    cpu_seconds,
    now,
    postgres_url,
    run,
)

# Runs in the tree under test (cwd and PYTHONPATH): starts that tree's server with that tree's
# test support, prints its URL and a log writer's key, and stops it when stdin closes.
_CONTROLLER = """
import sys
from pathlib import Path
from custodes.config import Settings
from custodes.log import NoteSigner
from tests.support.keys import LOG_WRITER, issue_keys
from tests.support.server import start_server
data, url = Path(sys.argv[1]), sys.argv[2]
data.mkdir(parents=True, exist_ok=True)
(data / "log.key").write_text(NoteSigner.generate("custodes.local/log").to_key())
settings = Settings(data_dir=data, database_url=url, demo=True)
key = issue_keys(settings, LOG_WRITER)[LOG_WRITER]
server = start_server(settings, log_path=data / "server.log")
print(server.base_url, key, server.pid, flush=True)
sys.stdin.read()
server.stop()
"""

BATCH = 1000


@contextlib.contextmanager
def _server(root: Path, data: Path, url: str) -> Iterator[tuple[str, str, int]]:
    proc = subprocess.Popen(
        [sys.executable, "-c", _CONTROLLER, str(data), url],
        cwd=root,
        env={"PYTHONPATH": f"{root}:{root / 'src'}", "PATH": "/usr/bin:/bin"},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stdin is not None
    line = proc.stdout.readline().split()
    if len(line) != 3:
        proc.kill()
        raise RuntimeError(f"the server from {root} did not start")
    try:
        yield line[0], line[1], int(line[2])
    finally:
        proc.stdin.close()
        proc.wait(60)


async def _batches(base_url: str, api_key: str, seconds: float, clients: int = 4) -> int:
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

    await asyncio.gather(*(client() for _ in range(clients)))
    return done


async def _singles(base_url: str, api_key: str, seconds: float, clients: int = 50) -> int:
    done = 0
    stop_at = now() + seconds
    counter = iter(range(10**12))

    async def client() -> None:
        nonlocal done
        http = await Http.connect(base_url, api_key)
        while now() < stop_at:
            status, _ = await http.request("POST", "/log/entries", client_entry_json(next(counter)))
            assert status == 201, status
            done += 1
        http.close()

    await asyncio.gather(*(client() for _ in range(clients)))
    return done


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--before", type=Path, required=True)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    args = parser.parse_args()
    trees = {"before": args.before.resolve(), "after": ROOT}
    rates: dict[tuple[str, str], list[float]] = {}
    costs: dict[tuple[str, str], list[float]] = {}  # server CPU microseconds per entry
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        servers = {}
        for name, root in trees.items():
            url = stack.enter_context(postgres_url()) if args.backend == "postgres" else ""
            servers[name] = stack.enter_context(_server(root, tmp / name, url))
        for shape, load in (("batches of 1,000", _batches), ("single entries", _singles)):
            for r in range(args.rounds):
                order = ["before", "after"] if r % 2 == 0 else ["after", "before"]
                for name in order:
                    base_url, key, pid = servers[name]
                    t0, c0 = now(), cpu_seconds(pid)
                    done = run(load(base_url, key, args.seconds))  # type: ignore[arg-type]
                    rate = done / (now() - t0)
                    cost = (cpu_seconds(pid) - c0) / done * 1e6  # type: ignore[operator]
                    rates.setdefault((shape, name), []).append(rate)
                    costs.setdefault((shape, name), []).append(cost)
                    print(
                        f"  {shape:>16} round {r + 1} {name:>6}: {rate:>9,.0f} entries/s, "
                        f"server {cost:6.1f} CPU-us/entry"
                    )
    print(f"backend {args.backend}; before = {trees['before']}, after = {trees['after']}")
    for shape in ("batches of 1,000", "single entries"):
        b = statistics.median(rates[(shape, "before")])
        a = statistics.median(rates[(shape, "after")])
        cb = statistics.median(costs[(shape, "before")])
        ca = statistics.median(costs[(shape, "after")])
        print(
            f"{shape:>16}: before {b:>9,.0f}/s, after {a:>9,.0f}/s (medians of "
            f"{args.rounds} rounds): after/before = {a / b:.3f}; server CPU per entry "
            f"{cb:.1f} -> {ca:.1f} us: before/after = {cb / ca:.3f} (the rate one idle core "
            "would allow)"
        )
    print(cpu_note())


if __name__ == "__main__":
    main()
