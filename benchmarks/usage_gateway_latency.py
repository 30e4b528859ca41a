"""The gateway's added latency from a gating share rule, end to end (issue 20).

Two custodes servers (uvicorn, real authority, durable SQLite log, the usage tracker wired as in
any deployment) in front of one test upstream (``tests/support/upstream.py``), on loopback:

- ``no rule``: the demo constitution with workloads (tests/support/usage.py) and no usage rule
  on the ``general`` tier the benchmark model serves (each call still resolves its chain of
  direction and records ``on_behalf_of``);
- ``gating rule``: the same with a gating ``max-person-share`` rule on ``general`` (40% of
  tokens in 7 days). The one caller (alice@lab) holds 100% of the tier, so every call takes the
  gate's longest path that still lets it through: her share, then the tier's calls against
  ``min_calls`` (set out of reach so nothing is refused).

The load generator and process handling are benchmarks/gateway_latency.py's. Each server is
measured with the other stopped (SIGSTOP), in alternating order over ``--rounds``; the figures
are p50 / p99 latency and the server's CPU per call (which moves less with the machine's other
load than latency does), and their differences.

    nice -n 10 .venv/bin/python benchmarks/usage_gateway_latency.py
    nice -n 10 .venv/bin/python benchmarks/usage_gateway_latency.py --quick
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "src"), str(ROOT / "benchmarks")]

import gateway_latency as gl  # noqa: E402

GATING = {
    "rules": [
        {
            "id": "general-person-share",
            "kind": "max-person-share",
            "capability": "general",
            "measure": "tokens",
            "share": 0.4,
            "window": "7d",
            "gate": True,
            "min_calls": 1_000_000_000,
        }
    ]
}
# A rule on another tier only, so the "no rule" server has a usage section too.
OTHER_TIER = {
    "rules": [
        {
            "id": "cyber-breadth",
            "kind": "min-organisations",
            "capability": "cyber-frontier",
            "organisations": 1,
            "window": "30d",
        }
    ]
}


def serve(data_dir: Path, port: int, upstream_url: str, gated: bool) -> None:
    """A custodes server whose constitution has (or has not) a gating rule on ``general``."""
    import yaml
    from tests.support.usage import usage_document

    from custodes.config import Settings

    models = gl.models_file(data_dir, upstream_url)
    constitution = data_dir / "constitution.yaml"
    constitution.write_text(
        yaml.safe_dump(usage_document(**(GATING if gated else OTHER_TIER)), sort_keys=False)
    )
    settings = Settings(
        data_dir=data_dir, demo=True, constitution_file=constitution, gateway_models_file=models
    )
    gl.serve_deployment(settings, port)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=15, help="per measured phase")
    parser.add_argument("--rate", type=float, default=40, help="paced load, req/s in total")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="5 s phases, one round")
    parser.add_argument("--serve", nargs=4, help=argparse.SUPPRESS)
    parser.add_argument("--serve-upstream", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_upstream:
        gl.serve_upstream(args.serve_upstream)
        return
    if args.serve:
        data, port, url, gated = args.serve
        serve(Path(data), int(port), url, gated == "1")
        return
    if args.quick:
        args.seconds, args.rounds = 5, 1
    import uvloop

    uvloop.install()
    work = Path(tempfile.mkdtemp(prefix="custodes-usage-bench-"))
    me = [sys.executable, str(Path(__file__).resolve())]
    env = {"PYTHONPATH": f"{ROOT}:{ROOT / 'src'}"}
    up_port = gl.free_port()
    upstream_url = f"http://127.0.0.1:{up_port}/v1"
    names = {"no rule": "0", "gating rule": "1"}
    ports = {name: gl.free_port() for name in names}
    print(
        f"cpus={os.cpu_count()} clients={args.clients} phase={args.seconds}s "
        f"paced={args.rate:.0f} req/s rounds={args.rounds}",
        flush=True,
    )
    with gl.process([*me, "--serve-upstream", str(up_port)], env=env, log=work / "up.log") as up:
        gl.wait_ready(up_port, "/v1/models", up)
        with gl.contextlib_exit() as stack:
            procs = {}
            for name, flag in names.items():
                procs[name] = stack.enter_context(
                    gl.process(
                        [*me, "--serve", str(work / flag), str(ports[name]), upstream_url, flag],
                        env=env,
                        log=work / f"custodes-{flag}.log",
                    )
                )
            for name, proc in procs.items():
                gl.wait_ready(ports[name], "/healthz", proc)
            targets = [
                gl.Target(
                    name,
                    ports[name],
                    "/v1/chat/completions",
                    (work / names[name] / "key").read_text(),
                )
                for name in names
            ]

            pids = {name: proc.pid for name, proc in procs.items()}
            stack.callback(gl.resume, pids)  # so they see their SIGTERM
            for target in targets:  # warm up; the gate is closed until the log has been read
                gl.measure_alone(target, pids, clients=args.clients, seconds=3)
            results: dict[str, gl.Run] = {}
            for round_ in range(args.rounds):
                print(f"round {round_ + 1}:", flush=True)
                for target in targets if round_ % 2 == 0 else targets[::-1]:
                    run = gl.measure_alone(
                        target, pids, clients=args.clients, seconds=args.seconds, rate=args.rate
                    )
                    gl.report(target.name, run)
                    results[target.name] = (
                        results[target.name] + run if target.name in results else run
                    )
            plain, gated = results["no rule"], results["gating rule"]
            cpu = [r.server_cpu / len(r.latencies) * 1e6 for r in (plain, gated)]
            print(
                f"all rounds: p50 {plain.pct(0.5):.2f} -> {gated.pct(0.5):.2f} ms "
                f"(added {gated.pct(0.5) - plain.pct(0.5):+.3f} ms), "
                f"p99 {plain.pct(0.99):.2f} -> {gated.pct(0.99):.2f} ms "
                f"(added {gated.pct(0.99) - plain.pct(0.99):+.3f} ms), "
                f"server CPU {cpu[0]:.0f} -> {cpu[1]:.0f} us/call "
                f"(added {cpu[1] - cpu[0]:+.0f} us; target < 100 us); "
                f"errors {len(plain.errors)} / {len(gated.errors)}",
                flush=True,
            )
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
