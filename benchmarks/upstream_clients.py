"""The gateway's upstream hop through each HTTP client, side by side in one run (issue 16).

Every model call crosses one HTTP/1.1 hop from the gateway to its upstream. This compares, in
one process, against one loopback upstream, the clients that could carry it:

- ``http1``: the gateway's own hand-written client (``gateway/_http1.py``, an asyncio
  protocol + llhttp through ``httptools``), or the file ``--http1`` names (to measure another
  version of it side by side);
- ``gateway``: the gateway's ``HttpUpstream.send`` itself, as every model call uses it: the
  client plus custodes' error mapping;
- ``aiohttp``: one ``ClientSession`` over a ``TCPConnector`` (``limit`` as the gateway's pool,
  ``keepalive_timeout`` 4 s, no cookie jar, ``auto_decompress`` off, no proxy from the
  environment, no redirects, ``sock_read`` timeout as the gateway's);
- ``httpcore``: an ``AsyncConnectionPool`` (HTTP/1.1 only, every connection kept alive 4 s,
  no retries), the layer under httpx;
- ``httpx``: an ``AsyncClient`` over an ``AsyncHTTPTransport`` with the same pool limits,
  ``trust_env`` off, no redirects.

Each is asked for an OpenAI chat completion, whole (``application/json``, length-framed) and
streamed (server-sent events, chunked), at concurrency 1, 16 and 64 (closed loop: each of the
``c`` tasks sends its next request when its answer is read). Printed per cell: requests/s,
p50 and p99 latency (the request sent to the last body byte read), and the client process's CPU
per request (``time.process_time`` over the phase divided by its requests; the upstream runs in
its own process, so this is the client's own cost).

The upstream is uvicorn (uvloop, httptools) serving a bare ASGI app, so that as little as
possible of the machine goes to the upstream and the clients' differences show. Phases are
interleaved (every client once per round, the order rotated each round) so drift in the shared
machine's load falls on all columns alike; compare the columns of one run.

    nice -n 10 .venv/bin/python benchmarks/upstream_clients.py            # the full run
    nice -n 10 .venv/bin/python benchmarks/upstream_clients.py --quick    # a smoke run

The figures of issue 16, and why the gateway keeps its own client, are in docs/gateway.md
("Issue 16: the upstream client, measured against the libraries").
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src")]

KEEPALIVE_S = 4.0  # as the gateway: below uvicorn's 5 s idle close
POOL = 200  # the gateway's default gateway_upstream_connections
READ_TIMEOUT_S = 60.0
CONNECT_TIMEOUT_S = 10.0
BODY = orjson.dumps(
    {
        "model": "test-model",
        "messages": [
            {"role": "user", "content": "Summarise the oversight rules for this deployment."}
        ],
    }
)
STREAM_BODY = orjson.dumps({**orjson.loads(BODY), "stream": True})
HEADERS = [
    ("content-type", "application/json"),
    ("authorization", "Bearer upstream-secret"),
]


# --- the upstream ---------------------------------------------------------------------------


def upstream_app(events: int) -> Callable[..., Awaitable[None]]:
    """A bare ASGI app answering ``POST /v1/chat/completions`` as an OpenAI server would."""
    words = ("The oversight rules say a model call is logged before it is answered. " * 8).split()

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        request = orjson.loads(body)
        base = {"id": "chatcmpl-bench", "created": 0, "model": request["model"]}
        if not request.get("stream"):
            text = " ".join(words[:events])
            out = orjson.dumps(
                {
                    **base,
                    "object": "chat.completion",
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": text},
                            "finish_reason": "stop",
                        }
                    ],
                    "usage": {"prompt_tokens": 7, "completion_tokens": events, "total_tokens": 7},
                }
            )
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"content-length", str(len(out)).encode()),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": out})
            return
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"text/event-stream")],
            }
        )
        for i in range(events):
            chunk = {
                **base,
                "object": "chat.completion.chunk",
                "choices": [{"index": 0, "delta": {"content": words[i % len(words)] + " "}}],
            }
            await send(
                {
                    "type": "http.response.body",
                    "body": b"data: " + orjson.dumps(chunk) + b"\n\n",
                    "more_body": True,
                }
            )
        await send({"type": "http.response.body", "body": b"data: [DONE]\n\n"})

    return app


def serve_upstream(port: int, events: int) -> None:
    import uvicorn

    uvicorn.run(
        upstream_app(events),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        access_log=False,
        lifespan="off",
        loop="uvloop",
        http="httptools",
        backlog=4096,
    )


# --- the clients ----------------------------------------------------------------------------
# Each is made once, on the benchmark's event loop, and answers ``call(stream) -> bytes read``.


class Client:
    name = ""

    async def call(self, stream: bool) -> int:
        raise NotImplementedError

    async def aclose(self) -> None:
        return None


class Http1(Client):
    """The gateway's hand-written HTTP/1.1 client, from the tree or from a file."""

    name = "http1"

    def __init__(self, base_url: str, path: Path | None) -> None:
        if path is None:
            from custodes.gateway import _http1 as module
        else:
            spec = importlib.util.spec_from_file_location("_bench_http1", path)
            assert spec is not None and spec.loader is not None
            module = sys.modules[spec.name] = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
        self.client = module.Http1Client(max_connections=POOL, keepalive=KEEPALIVE_S)
        self.target = module.Target.parse(base_url)

    async def call(self, stream: bool) -> int:
        accept = "text/event-stream" if stream else "application/json"
        response = await self.client.post(
            self.target,
            "/chat/completions",
            [*HEADERS, ("accept", accept)],
            STREAM_BODY if stream else BODY,
            connect_timeout=CONNECT_TIMEOUT_S,
            read_timeout=READ_TIMEOUT_S,
        )
        try:
            if response.status != 200:
                raise RuntimeError(f"HTTP {response.status}")
            if not stream:
                return len(await response.read())
            n = 0
            async for chunk in response.iter_chunks():
                n += len(chunk)
            return n
        finally:
            response.release()

    async def aclose(self) -> None:
        await self.client.aclose()


class Gateway(Client):
    """``custodes.gateway.HttpUpstream``: what the gateway calls for every model call."""

    name = "gateway"

    def __init__(self, base_url: str) -> None:
        from custodes.gateway import HttpUpstream
        from custodes.gateway._models import ModelRoute

        self.upstream = HttpUpstream(max_connections=POOL)
        self.route = ModelRoute(
            name="bench",
            capability="general",
            upstream_model="test-model",
            base_url=base_url,
            api_key="upstream-secret",
            timeout_s=READ_TIMEOUT_S,
            scripted_file=None,
            owned_by="bench",
        )

    async def call(self, stream: bool) -> int:
        reply = await self.upstream.send(
            self.route, "chat/completions", STREAM_BODY if stream else BODY, stream=stream
        )
        if reply.status != 200:
            raise RuntimeError(f"HTTP {reply.status}")
        if reply.chunks is None:
            return len(reply.body)
        n = 0
        try:
            async for chunk in reply.chunks:
                n += len(chunk)
        finally:
            await reply.close()
        return n

    async def aclose(self) -> None:
        await self.upstream.aclose()


class Aiohttp(Client):
    """aiohttp tuned for one trusted hop (see its client reference: ClientSession, TCPConnector)."""

    name = "aiohttp"

    def __init__(self, base_url: str) -> None:
        import aiohttp

        self.url = base_url + "/chat/completions"
        self.session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(
                limit=POOL,
                limit_per_host=0,
                keepalive_timeout=KEEPALIVE_S,
                ttl_dns_cache=300,
            ),
            cookie_jar=aiohttp.DummyCookieJar(),
            auto_decompress=False,
            trust_env=False,
            skip_auto_headers=("User-Agent",),
            timeout=aiohttp.ClientTimeout(
                total=None, sock_connect=CONNECT_TIMEOUT_S, sock_read=READ_TIMEOUT_S
            ),
            raise_for_status=False,
        )

    async def call(self, stream: bool) -> int:
        headers = [
            *HEADERS,
            ("accept", "text/event-stream" if stream else "application/json"),
            ("accept-encoding", "identity"),
        ]
        async with self.session.post(
            self.url,
            data=STREAM_BODY if stream else BODY,
            headers=headers,
            allow_redirects=False,
        ) as response:
            if response.status != 200:
                raise RuntimeError(f"HTTP {response.status}")
            if not stream:
                return len(await response.read())
            n = 0
            async for chunk in response.content.iter_any():
                n += len(chunk)
            return n

    async def aclose(self) -> None:
        await self.session.close()


class Httpcore(Client):
    """httpcore's connection pool directly (HTTP/1.1, keep-alive, no retries)."""

    name = "httpcore"

    def __init__(self, base_url: str) -> None:
        import httpcore

        self.url = base_url + "/chat/completions"
        self.pool = httpcore.AsyncConnectionPool(
            max_connections=POOL,
            max_keepalive_connections=POOL,
            keepalive_expiry=KEEPALIVE_S,
            http1=True,
            http2=False,
            retries=0,
        )
        self.timeouts = {
            "connect": CONNECT_TIMEOUT_S,
            "read": READ_TIMEOUT_S,
            "write": READ_TIMEOUT_S,
            "pool": READ_TIMEOUT_S,
        }

    async def call(self, stream: bool) -> int:
        headers = [
            *HEADERS,
            ("accept", "text/event-stream" if stream else "application/json"),
            ("accept-encoding", "identity"),
        ]
        async with self.pool.stream(
            "POST",
            self.url,
            headers=headers,
            content=STREAM_BODY if stream else BODY,
            extensions={"timeout": self.timeouts},
        ) as response:
            if response.status != 200:
                raise RuntimeError(f"HTTP {response.status}")
            n = 0
            async for chunk in response.aiter_stream():
                n += len(chunk)
            return n

    async def aclose(self) -> None:
        await self.pool.aclose()


class Httpx(Client):
    """httpx with its pool configured (the limits, keep-alive 4 s, HTTP/1.1, no env proxy)."""

    name = "httpx"

    def __init__(self, base_url: str) -> None:
        import httpx

        limits = httpx.Limits(
            max_connections=POOL, max_keepalive_connections=POOL, keepalive_expiry=KEEPALIVE_S
        )
        self.url = base_url + "/chat/completions"
        self.client = httpx.AsyncClient(
            transport=httpx.AsyncHTTPTransport(
                limits=limits, http1=True, http2=False, trust_env=False, retries=0
            ),
            timeout=httpx.Timeout(READ_TIMEOUT_S, connect=CONNECT_TIMEOUT_S),
            trust_env=False,
            follow_redirects=False,
        )

    async def call(self, stream: bool) -> int:
        headers = [
            *HEADERS,
            ("accept", "text/event-stream" if stream else "application/json"),
            ("accept-encoding", "identity"),
        ]
        request = self.client.build_request(
            "POST", self.url, content=STREAM_BODY if stream else BODY, headers=headers
        )
        response = await self.client.send(request, stream=True)
        try:
            if response.status_code != 200:
                raise RuntimeError(f"HTTP {response.status_code}")
            n = 0
            async for chunk in response.aiter_raw():
                n += len(chunk)
            return n
        finally:
            await response.aclose()

    async def aclose(self) -> None:
        await self.client.aclose()


# --- the load -------------------------------------------------------------------------------


@dataclass
class Cell:
    """Every phase of one client at one (mode, concurrency), summed over the rounds."""

    latencies: list[float] = field(default_factory=list)
    seconds: float = 0.0
    cpu: float = 0.0
    upstream_cpu: float = 0.0
    errors: int = 0

    def pct(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000 if ordered else 0

    @property
    def rps(self) -> float:
        return len(self.latencies) / self.seconds if self.seconds else 0

    @property
    def cpu_us(self) -> float:
        return self.cpu / len(self.latencies) * 1e6 if self.latencies else 0

    @property
    def upstream_cpu_us(self) -> float:
        return self.upstream_cpu / len(self.latencies) * 1e6 if self.latencies else 0


def process_cpu(pid: int) -> float:
    """User + system CPU seconds of a process and its reaped children (proc(5): stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK")


async def phase(
    client: Client,
    *,
    stream: bool,
    concurrency: int,
    seconds: float,
    cell: Cell,
    upstream_pid: int,
) -> None:
    loop = asyncio.get_running_loop()
    until = loop.time() + seconds
    latencies: list[float] = []
    errors = 0

    async def worker() -> None:
        nonlocal errors
        while loop.time() < until:
            start = time.perf_counter()
            try:
                if await client.call(stream) <= 0:
                    errors += 1
                    continue
            except Exception:
                errors += 1
                await asyncio.sleep(0.01)
                continue
            latencies.append(time.perf_counter() - start)

    up0, cpu0, t0 = process_cpu(upstream_pid), time.process_time(), time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    cell.cpu += time.process_time() - cpu0
    cell.upstream_cpu += process_cpu(upstream_pid) - up0
    cell.seconds += time.perf_counter() - t0
    cell.latencies += latencies
    cell.errors += errors


def make_clients(base_url: str, only: list[str] | None, http1: Path | None) -> list[Client]:
    clients: list[Client] = [Http1(base_url, http1)]
    for kind in (Gateway, Aiohttp, Httpcore, Httpx):
        clients.append(kind(base_url))
    return [c for c in clients if not only or c.name in only]


async def run(args: argparse.Namespace, base_url: str, upstream_pid: int) -> None:
    clients = make_clients(base_url, args.only, args.http1)
    names = [c.name for c in clients]
    table: dict[tuple[str, int], dict[str, Cell]] = {}
    try:
        for client in clients:  # connections open, caches and code paths warm
            await phase(
                client,
                stream=False,
                concurrency=64,
                seconds=0.5,
                cell=Cell(),
                upstream_pid=upstream_pid,
            )
            await phase(
                client,
                stream=True,
                concurrency=64,
                seconds=0.5,
                cell=Cell(),
                upstream_pid=upstream_pid,
            )
        for mode in ("whole", "stream"):
            for concurrency in args.concurrency:
                cells = table[(mode, concurrency)] = {name: Cell() for name in names}
                for r in range(args.rounds):
                    order = clients[r % len(clients) :] + clients[: r % len(clients)]
                    for client in order:
                        await phase(
                            client,
                            stream=mode == "stream",
                            concurrency=concurrency,
                            seconds=args.seconds,
                            cell=cells[client.name],
                            upstream_pid=upstream_pid,
                        )
                report(mode, concurrency, cells)
    finally:
        for client in clients:
            await client.aclose()
    summarize(table, names)


def report(mode: str, concurrency: int, cells: dict[str, Cell]) -> None:
    print(f"{mode} c={concurrency}:", flush=True)
    for name, cell in cells.items():
        print(
            f"  {name:<9} n={len(cell.latencies):>6}  {cell.rps:7.0f} req/s  "
            f"p50={cell.pct(0.5):6.2f} ms  p99={cell.pct(0.99):6.2f} ms  "
            f"cpu={cell.cpu_us:5.0f} us/req (upstream {cell.upstream_cpu_us:4.0f})  "
            f"errors={cell.errors}",
            flush=True,
        )


def summarize(table: dict[tuple[str, int], dict[str, Cell]], names: list[str]) -> None:
    """Per cell, the best library client and the gateway's hop against the hand-written one."""
    libraries = [n for n in names if n in ("aiohttp", "httpcore", "httpx")]
    if "http1" not in names or not libraries:
        return
    print("against the hand-written http1 client (best library: lowest CPU per request):")
    ratios: list[float] = []
    for (mode, concurrency), cells in table.items():
        best = min(libraries, key=lambda n: cells[n].cpu_us)
        ours = cells["http1"]
        for name in (best, "gateway") if "gateway" in cells else (best,):
            other = cells[name]
            ratio = other.cpu_us / ours.cpu_us if ours.cpu_us else float("nan")
            if name == best:
                ratios.append(ratio)
            p50 = other.pct(0.5) - ours.pct(0.5)
            p99 = other.pct(0.99) - ours.pct(0.99)
            print(
                f"  {mode:<6} c={concurrency:<3} {name:<9} req/s {other.rps / ours.rps:5.2f}x, "
                f"p50 {p50:+6.2f} ms, p99 {p99:+6.2f} ms, "
                f"cpu {other.cpu_us - ours.cpu_us:+5.0f} us/req ({ratio:.2f}x)",
                flush=True,
            )
    print(f"  median CPU ratio (best library / http1): {statistics.median(ratios):.2f}")


# --- the run --------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def upstream_process(port: int, events: int) -> Any:
    proc = subprocess.Popen(
        [sys.executable, __file__, "--serve-upstream", str(port), "--events", str(events)],
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"the upstream exited with {proc.returncode}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
                break
            time.sleep(0.1)
        else:
            raise RuntimeError("the upstream did not start in 30 s")
        yield proc
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 16, 64])
    parser.add_argument("--seconds", type=float, default=2.0, help="per phase")
    parser.add_argument("--rounds", type=int, default=3, help="phases per client and cell")
    parser.add_argument("--events", type=int, default=32, help="events per streamed answer")
    parser.add_argument("--only", nargs="+", help="measure only these clients")
    parser.add_argument(
        "--http1", type=Path, help="measure this copy of gateway/_http1.py as http1"
    )
    parser.add_argument("--quick", action="store_true", help="0.5 s phases, one round")
    parser.add_argument("--serve-upstream", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_upstream:
        serve_upstream(args.serve_upstream, args.events)
        return
    if args.quick:
        args.seconds, args.rounds = 0.5, 1
    import uvloop

    port = free_port()
    print(
        f"cpus={os.cpu_count()} load={os.getloadavg()[0]:.2f} phase={args.seconds}s "
        f"rounds={args.rounds} stream events={args.events} loop=uvloop",
        flush=True,
    )
    with upstream_process(port, args.events) as upstream:
        uvloop.run(run(args, f"http://127.0.0.1:{port}/v1", upstream.pid))


if __name__ == "__main__":
    main()
