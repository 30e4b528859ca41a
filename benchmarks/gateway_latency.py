"""Gateway figures, everything on loopback in one go (issue 7).

Measures, against one test upstream (``tests/support/upstream.py``, served by uvicorn):

- added latency p50 / p99 of custodes over calling the upstream directly, 100 concurrent
  clients, with the real authority (demo constitution), the durable log (SQLite, WAL,
  synchronous=FULL, group commit) and the rules-tier monitors (``vuln_rules`` observing,
  ``coup_rules`` gating) on: at a paced load (well below saturation) and at saturation;
- the same for LiteLLM's proxy (pinned ``LITELLM_VERSION``, in its own virtual environment used
  only here, never a dependency of custodes), with a virtual key restricted to the model when
  LiteLLM can run its key database, else its master key (the output says which);
- requests/s at saturation for both;
- custodes' resident memory before and after ``--memory-requests`` requests (100,000).

Each server runs in its own process; the load generator is a minimal keep-alive HTTP/1.1 client
on uvloop in this process. custodes is measured before LiteLLM starts, and stopped (SIGSTOP)
while LiteLLM is measured, so neither is charged for the other's idle CPU. The paced rate
(``--rate``, 40 req/s) is below LiteLLM's saturation on this machine so that both are compared
unsaturated. The machine's two cores are shared by all of them (and by whatever
else runs), so absolute figures move between runs: compare the columns of one run.

``--compare-with DIR`` also serves the custodes of another source tree (a checkout of an
earlier commit: ``git archive COMMIT | tar -x -C DIR``) with that tree's own copy of this
script, and measures it in the same phases, each custodes stopped while the other is measured:
before and after a change, side by side in one run.

    .venv/bin/python benchmarks/gateway_latency.py               # full run
    .venv/bin/python benchmarks/gateway_latency.py --quick       # a smoke run
    .venv/bin/python benchmarks/gateway_latency.py --no-litellm --compare-with /tmp/before
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "src")]  # tests.support (the upstream, PostgreSQL)
LITELLM_VERSION = "1.105.0"  # pinned; never 1.107.0 (a compromised release)
LITELLM_VENV = Path(
    os.environ.get(
        "CUSTODES_BENCH_LITELLM_VENV", Path.home() / ".cache" / "custodes-bench" / "litellm-venv"
    )
)
MODEL = "frontier-general"
BODY = json.dumps(
    {
        "model": MODEL,
        "messages": [
            {"role": "user", "content": "Summarise the oversight rules for this deployment."}
        ],
    }
).encode()


# --- servers --------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_ready(
    port: int,
    path: str,
    proc: subprocess.Popen[bytes],
    timeout: float = 120,
    headers: dict[str, str] | None = None,
) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server on {port} exited with {proc.returncode}")
        try:
            if (
                httpx.get(f"http://127.0.0.1:{port}{path}", headers=headers, timeout=2).status_code
                < 500
            ):
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"server on {port} did not become ready in {timeout}s")


@contextmanager
def process(
    args: list[str],
    *,
    env: dict[str, str] | None = None,
    log: Path | None = None,
    cwd: Path = ROOT,
) -> Iterator[subprocess.Popen[bytes]]:
    out = open(log, "wb") if log else subprocess.DEVNULL  # noqa: SIM115
    proc = subprocess.Popen(
        args,
        env={**os.environ, **(env or {})},
        cwd=cwd,
        stdout=out,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        if log:
            out.close()  # type: ignore[union-attr]


def serve_upstream(port: int) -> None:
    import uvicorn
    from tests.support.upstream import create_upstream_app

    uvicorn.run(
        create_upstream_app(),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        access_log=False,
        lifespan="off",
        loop="uvloop",
        http="httptools",
    )


def models_file(data_dir: Path, upstream_url: str, weights: str | None = None) -> Path:
    """The gateway's models file: ``MODEL`` on the ``general`` tier, served by the upstream
    (naming the approved ``weights`` digest when given)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    models = data_dir / "models.yaml"
    models.write_text(
        f"models:\n  - name: {MODEL}\n    capability: general\n    upstream:\n"
        f"      base_url: {upstream_url}\n      model: test-model\n"
        + (f"    weights: {weights}\n" if weights else "")
    )
    return models


def rules_monitors() -> Any:
    """The rules-tier monitors every benchmark runs: ``vuln_rules`` observing, ``coup_rules``
    gating."""
    from custodes.gateway import DetectorMonitor, MonitorRegistry
    from custodes.monitors import default_registry

    detectors = default_registry()
    return MonitorRegistry(
        [
            DetectorMonitor(detectors.get("vuln_rules"), mode="observing"),
            DetectorMonitor(detectors.get("coup_rules"), mode="gating"),
        ]
    )


def serve_deployment(settings: Any, port: int, *, monitors: Any = None) -> None:
    """Build the deployment of ``settings``, write an API key of alice@lab to
    ``data_dir/key`` (the load generator's) and serve it with uvicorn on ``port``."""
    import uvicorn

    from custodes.gateway import KeyStore
    from custodes.server import create_app
    from custodes.wiring import build_deployment

    ctx = build_deployment(settings, gateway_monitors_override=monitors)
    key = KeyStore(ctx.engine, ctx.log, ctx.clock).create("alice@lab", name="benchmark")
    (settings.data_dir / "key").write_text(key.secret)
    uvicorn.run(
        create_app(settings, deployment=ctx),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        access_log=False,
        loop="uvloop",
        http="httptools",
    )


def serve_custodes(data_dir: Path, port: int, upstream_url: str, batch_wait_ms: float) -> None:
    """A custodes server with the authority, the log and the rules-tier monitors on."""
    from custodes.config import Settings

    settings = Settings(
        data_dir=data_dir,
        demo=True,
        constitution_file=ROOT / "examples" / "constitution.yaml",
        gateway_models_file=models_file(data_dir, upstream_url),
        log_batch_wait_ms=batch_wait_ms,
    )
    serve_deployment(settings, port, monitors=rules_monitors())


# --- the load generator ---------------------------------------------------------------------


@dataclass
class Target:
    name: str
    port: int
    path: str
    key: str | None

    def request(self) -> bytes:
        auth = f"authorization: Bearer {self.key}\r\n" if self.key else ""
        return (
            f"POST {self.path} HTTP/1.1\r\nhost: 127.0.0.1:{self.port}\r\n"
            f"content-type: application/json\r\n{auth}"
            f"content-length: {len(BODY)}\r\n\r\n"
        ).encode() + BODY


async def _roundtrip(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes
) -> int:
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = None
    chunked = False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"transfer-encoding" and b"chunked" in value.lower():
            chunked = True
    if chunked:
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
    elif length:
        await reader.readexactly(length)
    return status


async def _client(
    target: Target,
    *,
    count: int | None,
    until: float,
    interval: float | None,
    latencies: list[float],
    errors: list[int],
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", target.port)
    request = target.request()
    loop = asyncio.get_running_loop()
    next_at = loop.time() + (random.random() * interval if interval else 0)
    done = 0
    try:
        while (count is None or done < count) and loop.time() < until:
            if interval:
                delay = next_at - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                next_at += interval
            start = time.perf_counter()
            try:
                status = await _roundtrip(reader, writer, request)
            except (asyncio.IncompleteReadError, ConnectionError):
                # The server closed an idle keep-alive connection: reconnect, resend, and time
                # the request from the resend.
                writer.close()
                reader, writer = await asyncio.open_connection("127.0.0.1", target.port)
                start = time.perf_counter()
                status = await _roundtrip(reader, writer, request)
            latencies.append(time.perf_counter() - start)
            if status != 200:
                errors.append(status)
            done += 1
    finally:
        writer.close()


@dataclass
class Run:
    latencies: list[float]
    errors: list[int]
    seconds: float
    server_cpu: float = 0.0  # CPU seconds the measured server process used during the run

    def pct(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000

    @property
    def rps(self) -> float:
        return len(self.latencies) / self.seconds

    def __add__(self, other: Run) -> Run:
        """Two runs of the same target as one (the rounds of a run)."""
        return Run(
            self.latencies + other.latencies,
            self.errors + other.errors,
            self.seconds + other.seconds,
            self.server_cpu + other.server_cpu,
        )


async def load(
    target: Target,
    *,
    clients: int,
    seconds: float,
    rate: float | None = None,
    total: int | None = None,
) -> Run:
    """``clients`` connections; paced at ``rate`` req/s overall, or closed-loop flat out."""
    latencies: list[float] = []
    errors: list[int] = []
    interval = clients / rate if rate else None
    per_client = -(-total // clients) if total else None
    start = time.perf_counter()
    until = asyncio.get_running_loop().time() + seconds
    await asyncio.gather(
        *(
            _client(
                target,
                count=per_client,
                until=until,
                interval=interval,
                latencies=latencies,
                errors=errors,
            )
            for _ in range(clients)
        )
    )
    return Run(latencies, errors, time.perf_counter() - start)


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of process ``pid`` and its threads (/proc/PID/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure_alone(
    target: Target,
    pids: dict[str, int],
    *,
    clients: int,
    seconds: float,
    rate: float | None = None,
    warmup: float = 0.0,
) -> Run:
    """Load ``target`` with every other server of ``pids`` (name -> process group) stopped
    (SIGSTOP): an idle proxy still uses CPU (its background jobs), which on two cores would be
    charged to the one measured. The run carries the target's server CPU when it is in
    ``pids`` (CPU per call moves less with the machine's other load than latency does)."""
    alone(target.name, pids)
    if warmup:  # connection pools, caches, the first verdicts
        asyncio.run(load(target, clients=clients, seconds=warmup, rate=rate))
    pid = pids.get(target.name)
    cpu = cpu_seconds(pid) if pid else 0.0
    run = asyncio.run(load(target, clients=clients, seconds=seconds, rate=rate))
    if pid:
        run.server_cpu = cpu_seconds(pid) - cpu
    return run


def alone(name: str, pids: dict[str, int]) -> None:
    """Let only server ``name`` of ``pids`` run (the others SIGSTOP, it SIGCONT)."""
    for other, pid in pids.items():
        os.killpg(pid, signal.SIGSTOP if other != name else signal.SIGCONT)


def resume(pids: dict[str, int]) -> None:
    """SIGCONT every server: a stopped process would not see its SIGTERM."""
    for pid in pids.values():
        os.killpg(pid, signal.SIGCONT)


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


# --- LiteLLM --------------------------------------------------------------------------------


def litellm_ready() -> bool:
    return (LITELLM_VENV / "bin" / "litellm").exists()


def install_litellm() -> None:
    subprocess.run([sys.executable, "-m", "venv", str(LITELLM_VENV)], check=True)
    subprocess.run(
        [str(LITELLM_VENV / "bin" / "pip"), "install", "-q", f"litellm[proxy]=={LITELLM_VERSION}"],
        check=True,
    )


class LiteLLMDidNotStart(RuntimeError):
    pass


@contextmanager
def litellm(upstream_url: str, work: Path, pg_url: str | None) -> Iterator[Target]:
    """LiteLLM's proxy in front of the same upstream, with a virtual key restricted to the
    model when its key database (PostgreSQL via Prisma) comes up, else its master key."""
    if pg_url:
        try:
            with _litellm(upstream_url, work, pg_url) as target:
                yield target
            return
        except LiteLLMDidNotStart as exc:
            print(
                f"  litellm did not start with its key database ({exc}); starting it without one",
                flush=True,
            )
    with _litellm(upstream_url, work, None) as target:
        yield target


@contextmanager
def _litellm(upstream_url: str, work: Path, pg_url: str | None) -> Iterator[Target]:
    import httpx

    port = free_port()
    master = "sk-bench-master-0000"
    config = work / "litellm.yaml"
    settings = [f"  master_key: {master}"]
    if pg_url:
        settings.append(f"  database_url: {pg_url}")
    config.write_text(
        "model_list:\n"
        f"  - model_name: {MODEL}\n"
        "    litellm_params:\n"
        "      model: openai/test-model\n"
        f"      api_base: {upstream_url}\n"
        "      api_key: upstream-unused\n"
        "litellm_settings:\n  drop_params: true\n  telemetry: false\n"
        "general_settings:\n" + "\n".join(settings) + "\n"
    )
    env = {
        "LITELLM_LOG": "ERROR",
        "LITELLM_MODE": "PRODUCTION",
        "NO_DOCS": "True",
        "DISABLE_ADMIN_UI": "True",
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
    }
    if pg_url:
        env["DATABASE_URL"] = pg_url
    log = work / ("litellm-db.log" if pg_url else "litellm.log")
    with process(
        [
            str(LITELLM_VENV / "bin" / "litellm"),
            "--config",
            str(config),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--num_workers",
            "1",
        ],
        env=env,
        log=log,
    ) as proc:
        try:
            wait_ready(port, "/health/liveliness", proc, timeout=300)
        except RuntimeError as exc:
            raise LiteLLMDidNotStart(f"{exc}; see {log}") from exc
        key, how = master, "master key (no key database)"
        if pg_url:
            answer = httpx.post(
                f"http://127.0.0.1:{port}/key/generate",
                headers={"authorization": f"Bearer {master}"},
                json={"models": [MODEL]},
                timeout=120,
            )
            if answer.status_code != 200:
                raise LiteLLMDidNotStart(
                    f"/key/generate answered {answer.status_code}: {answer.text[:200]}"
                )
            key, how = answer.json()["key"], f"virtual key restricted to [{MODEL}]"
            denied = httpx.post(
                f"http://127.0.0.1:{port}/v1/chat/completions",
                headers={"authorization": f"Bearer {key}"},
                timeout=60,
                json={"model": "another-model", "messages": [{"role": "user", "content": "x"}]},
            )
            how += f" (another model: HTTP {denied.status_code})"
        print(f"  litellm {LITELLM_VERSION}: {how}", flush=True)
        yield Target("litellm", port, "/v1/chat/completions", key)


@contextmanager
def postgres() -> Iterator[str | None]:
    try:
        from tests.support.postgres import start_cluster
    except ImportError:
        yield None
        return
    try:
        with start_cluster() as cluster:
            yield cluster.create_database().replace("postgresql+psycopg://", "postgresql://")
    except (FileNotFoundError, subprocess.CalledProcessError) as exc:
        print(f"  no PostgreSQL for LiteLLM's key database: {exc}", flush=True)
        yield None


# --- the run --------------------------------------------------------------------------------


def report(name: str, run: Run) -> None:
    print(
        f"  {name:<16} n={len(run.latencies):>6}  p50={run.pct(0.50):7.2f} ms  "
        f"p99={run.pct(0.99):7.2f} ms  {run.rps:8.0f} req/s  errors={len(run.errors)}"
        + (f" {sorted(set(run.errors))}" if run.errors else "")
        + (
            f"  server CPU {run.server_cpu / len(run.latencies) * 1e6:.0f} us/call"
            if run.server_cpu and run.latencies
            else ""
        ),
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=20, help="per measured phase")
    parser.add_argument(
        "--rate",
        type=float,
        default=40,
        help="paced load, req/s in total (default: below LiteLLM's saturation "
        "here, ~80 req/s, so both proxies are compared unsaturated)",
    )
    parser.add_argument("--memory-requests", type=int, default=100_000)
    parser.add_argument("--log-batch-wait-ms", type=float, default=0.0)
    parser.add_argument("--no-litellm", action="store_true")
    parser.add_argument(
        "--install-litellm",
        action="store_true",
        help=f"create {LITELLM_VENV} with litellm[proxy]=={LITELLM_VERSION}",
    )
    parser.add_argument("--quick", action="store_true", help="short phases, 5,000 requests")
    parser.add_argument(
        "--compare-with",
        type=Path,
        help="another source tree whose custodes is measured alongside (before/after)",
    )
    parser.add_argument("--compare-label", default="before", help="its name in the output")
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="measure the phases this many times, each round in another order of the custodes "
        "servers; the figures at the end are over all rounds",
    )
    parser.add_argument("--serve-upstream", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--serve-custodes", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_upstream:
        serve_upstream(args.serve_upstream)
        return
    if args.serve_custodes:
        data, port, url, wait = args.serve_custodes
        serve_custodes(Path(data), int(port), url, float(wait))
        return
    if args.quick:
        args.seconds, args.memory_requests = 5, 5_000
    if args.install_litellm and not litellm_ready():
        install_litellm()
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    work = Path(tempfile.mkdtemp(prefix="custodes-bench-"))
    me = [sys.executable, str(Path(__file__).resolve())]
    env = {"PYTHONPATH": f"{ROOT}:{ROOT / 'src'}"}
    up_port, cu_port = free_port(), free_port()
    upstream_url = f"http://127.0.0.1:{up_port}/v1"
    print(
        f"cpus={os.cpu_count()} clients={args.clients} phase={args.seconds}s "
        f"paced={args.rate:.0f} req/s log_batch_wait_ms={args.log_batch_wait_ms}",
        flush=True,
    )
    with (
        process([*me, "--serve-upstream", str(up_port)], env=env, log=work / "up.log") as up,
        process(
            [
                *me,
                "--serve-custodes",
                str(work / "custodes"),
                str(cu_port),
                upstream_url,
                str(args.log_batch_wait_ms),
            ],
            env=env,
            log=work / "custodes.log",
        ) as cu,
        ExitStack() as stack,
    ):
        wait_ready(up_port, "/v1/models", up)
        wait_ready(cu_port, "/healthz", cu)
        key = (work / "custodes" / "key").read_text()
        direct = Target("direct", up_port, "/v1/chat/completions", None)
        custodes = Target("custodes", cu_port, "/v1/chat/completions", key)
        targets = [direct, custodes]
        pids = {"custodes": cu.pid}
        if args.compare_with is not None:
            other = args.compare_with.resolve()
            other_port = free_port()
            compared = stack.enter_context(
                process(
                    [
                        sys.executable,
                        str(other / "benchmarks" / "gateway_latency.py"),
                        "--serve-custodes",
                        str(work / "compared"),
                        str(other_port),
                        upstream_url,
                        str(args.log_batch_wait_ms),
                    ],
                    env={"PYTHONPATH": f"{other}:{other / 'src'}"},
                    log=work / "compared.log",
                    cwd=other,
                )
            )
            wait_ready(other_port, "/healthz", compared)
            label = f"custodes@{args.compare_label}"
            key = (work / "compared" / "key").read_text()
            targets.append(Target(label, other_port, "/v1/chat/completions", key))
            pids[label] = compared.pid
        results: dict[str, dict[str, Run]] = {}
        # Each proxy is measured with the others stopped (measure_alone). The upstream and the
        # direct baseline are the same for all.
        phases = (("paced", args.rate), ("saturated", None))
        for target in targets:  # warm up connection pools, caches, JITs
            measure_alone(target, pids, clients=args.clients, seconds=2)
        for round_ in range(args.rounds):
            # Each round measures the custodes servers in another order, so neither is always
            # the one measured first (the machine's load drifts over a run).
            shift = round_ % (len(targets) - 1)
            order = [direct, *targets[1 + shift :], *targets[1 : 1 + shift]]
            for phase, rate in phases:
                print(
                    f"{phase}:" + (f" (round {round_ + 1})" if args.rounds > 1 else ""), flush=True
                )
                for target in order:
                    run = measure_alone(
                        target, pids, clients=args.clients, seconds=args.seconds, rate=rate
                    )
                    runs = results.setdefault(phase, {})
                    runs[target.name] = runs[target.name] + run if target.name in runs else run
                    report(target.name, run)
        alone("custodes", pids)
        if args.memory_requests > 0:
            before = rss_kib(cu.pid)
            run = asyncio.run(
                load(custodes, clients=args.clients, seconds=3600, total=args.memory_requests)
            )
            after = rss_kib(cu.pid)
            print(
                f"memory: custodes RSS {before / 1024:.1f} MiB before, "
                f"{after / 1024:.1f} MiB after {len(run.latencies):,} more requests "
                f"({run.rps:.0f} req/s, errors={len(run.errors)})",
                flush=True,
            )
        if not args.no_litellm and not litellm_ready():
            print(
                f"  litellm: no virtual environment at {LITELLM_VENV} (run with --install-litellm)",
                flush=True,
            )
        elif not args.no_litellm:
            with contextlib_exit() as stack:
                os.killpg(cu.pid, signal.SIGSTOP)  # custodes sits out LiteLLM's turn
                stack.callback(os.killpg, cu.pid, signal.SIGCONT)
                pg = stack.enter_context(postgres())
                lite = stack.enter_context(litellm(upstream_url, work, pg))
                asyncio.run(load(lite, clients=args.clients, seconds=2))
                for phase, rate in phases:
                    run = asyncio.run(
                        load(lite, clients=args.clients, seconds=args.seconds, rate=rate)
                    )
                    results[phase][lite.name] = run
                    print(f"{phase}:", flush=True)
                    report(lite.name, run)
        summarize(results)
        resume(pids)
    shutil.rmtree(work, ignore_errors=True)


def summarize(results: dict[str, dict[str, Run]]) -> None:
    for phase, runs in results.items():
        direct = runs["direct"]
        for name in runs:
            if name == "direct":
                continue
            run = runs[name]
            print(
                f"{phase}: {name} added p50 {run.pct(0.5) - direct.pct(0.5):.2f} ms, "
                f"added p99 {run.pct(0.99) - direct.pct(0.99):.2f} ms",
                flush=True,
            )
        if "litellm" in runs and "custodes" in runs:
            c = runs["custodes"].pct(0.5) - direct.pct(0.5)
            li = runs["litellm"].pct(0.5) - direct.pct(0.5)
            print(
                f"{phase}: custodes added p50 / LiteLLM added p50 = "
                f"{c / li if li > 0 else float('nan'):.2f} (target <= 0.5)",
                flush=True,
            )
    for phase, runs in results.items():
        for name, run in runs.items():
            if run.server_cpu and run.latencies:
                print(
                    f"{phase}: {name} server CPU "
                    f"{run.server_cpu / len(run.latencies) * 1e6:.0f} us/call",
                    flush=True,
                )
    print(
        "requests/s at saturation: "
        + ", ".join(f"{n} {r.rps:.0f}" for n, r in results.get("saturated", {}).items()),
        flush=True,
    )


@contextmanager
def contextlib_exit() -> Iterator[Any]:
    from contextlib import ExitStack

    with ExitStack() as stack:
        yield stack


if __name__ == "__main__":
    main()
