"""The gateway's added latency with the serving check on vs off (issue 17).

Two custodes servers in front of one test upstream (``tests/support/upstream.py``), each in its
own process, built as ``gateway_latency.py`` builds its one (the real authority on the demo
constitution, the durable SQLite log, the rules-tier monitors):

- **off**: the model's route names no weights;
- **on**: the route names the weights of the last of ``--runs`` chained training runs (each
  approved by two organisations, registered and signed as in the tests), so every call is
  admitted by the serving check; ``gateway_serving_check_s`` is ``--interval`` (default 5 s,
  far shorter than the 300 s default) so the measured phases include the re-checks that
  verify the whole lineage against the log in the background.

Both are measured at a paced load (``--rate`` req/s over ``--clients`` keep-alive connections),
in alternating rounds, each server stopped (SIGSTOP) while the other is measured. The figures
are the added latency over calling the upstream directly, per server, and the difference.
The check is a dictionary lookup per call; the re-checks run in the verifier's own process
(``custodes.wiring.VerifierProcess``), not on the server's interpreter.

    .venv/bin/python benchmarks/gateway_serving_check.py
    .venv/bin/python benchmarks/gateway_serving_check.py --quick
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "src"), str(ROOT / "benchmarks")]

from gateway_latency import (  # noqa: E402  (benchmarks/ is put on the path just above)
    BODY,
    Run,
    Target,
    free_port,
    measure_alone,
    models_file,
    process,
    report,
    resume,
    rules_monitors,
    serve_deployment,
    serve_upstream,
    wait_ready,
)


def serve_custodes(
    data_dir: Path, port: int, upstream_url: str, runs: int, interval: float
) -> None:
    """custodes as in gateway_latency.py; with ``runs`` > 0 its model names the weights of
    the last of ``runs`` chained, approved training runs, evaluated and promoted to the
    ``general`` tier (a tier of promoted weights only, in this benchmark's constitution)."""
    from tests.unit.provenance.conftest import Pipeline

    from custodes.authority import SigningKey
    from custodes.clock import SystemClock
    from custodes.config import Settings
    from custodes.wiring import build_deployment

    keys = {p.stem: SigningKey.from_file(p) for p in (ROOT / "examples" / "keys").glob("*.key")}

    constitution = ROOT / "examples" / "constitution.yaml"
    if runs:
        constitution = data_dir / "constitution.yaml"
        data_dir.mkdir(parents=True, exist_ok=True)
        constitution.write_text(
            (ROOT / "examples" / "constitution.yaml").read_text().split("\n  tiers:\n")[0]
            + "\n  tiers:\n    - capability: general\n      evaluations:\n"
            "        - {evaluation: cyber-offence, below: 0.3}\n"
        )

    def settings(weights: str | None) -> Settings:
        return Settings(
            data_dir=data_dir,
            demo=True,
            constitution_file=constitution,
            gateway_models_file=models_file(data_dir, upstream_url, weights),
            gateway_serving_check_s=interval,
        )

    weights = None
    if runs:
        # The lineage is built by a deployment of its own, closed before the served one opens
        # on the same data (the models file must name the digest before the gateway starts).
        # (general serves only promoted weights here: the model names some until then)
        ctx = build_deployment(settings("sha256:" + "0" * 64))
        try:
            pipeline = Pipeline(ctx.provenance, ctx.authority, keys, SystemClock(), data_dir)  # type: ignore[arg-type]
            inputs = pipeline.register_inputs()
            weights = inputs.base.digest
            for n in range(runs):
                plan = inputs.plan(base=weights, generation=n)
                weights = pipeline.train(plan, f"g{n}")
            pipeline.promote(weights, "general", {"cyber-offence": 0.1})
            verdict = ctx.provenance.serving_verdict(weights, "general")
            assert verdict.approved, verdict.reasons
        finally:
            ctx.close()
    serve_deployment(settings(weights), port, monitors=rules_monitors())


def first_answer(target: Target) -> float:
    """Seconds until ``target`` answers one call (at most 600)."""
    import httpx

    headers = {"content-type": "application/json"}
    if target.key:
        headers["authorization"] = f"Bearer {target.key}"
    t = time.perf_counter()
    r = httpx.post(
        f"http://127.0.0.1:{target.port}{target.path}", content=BODY, headers=headers, timeout=600
    )
    r.raise_for_status()
    return time.perf_counter() - t


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--rate", type=float, default=40, help="paced load, req/s in total")
    parser.add_argument("--seconds", type=float, default=15, help="per measured phase")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--runs", type=int, default=50, help="training runs in the lineage")
    parser.add_argument("--interval", type=float, default=5, help="gateway_serving_check_s")
    parser.add_argument("--quick", action="store_true", help="5 s phases, 2 rounds, 5 runs")
    parser.add_argument("--serve-upstream", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--serve-custodes", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_upstream:
        serve_upstream(args.serve_upstream)
        return
    if args.serve_custodes:
        data, port, url, runs, interval = args.serve_custodes
        serve_custodes(Path(data), int(port), url, int(runs), float(interval))
        return
    if args.quick:
        args.seconds, args.rounds, args.runs = 5, 2, 5
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    work = Path(tempfile.mkdtemp(prefix="custodes-bench-serving-"))
    me = [sys.executable, str(Path(__file__).resolve())]
    env = {"PYTHONPATH": f"{ROOT}:{ROOT / 'src'}:{ROOT / 'benchmarks'}"}
    up_port, off_port, on_port = free_port(), free_port(), free_port()
    upstream_url = f"http://127.0.0.1:{up_port}/v1"
    print(
        f"cpus={os.cpu_count()} clients={args.clients} paced={args.rate:.0f} req/s "
        f"phase={args.seconds}s rounds={args.rounds} lineage={args.runs} runs "
        f"re-check every {args.interval}s",
        flush=True,
    )

    def custodes(name: str, port: int, runs: int) -> list[str]:
        return [*me, "--serve-custodes", str(work / name), str(port), upstream_url, str(runs)] + [
            str(args.interval)
        ]

    built = time.perf_counter()
    with (
        process([*me, "--serve-upstream", str(up_port)], env=env, log=work / "up.log") as up,
        process(custodes("off", off_port, 0), env=env, log=work / "off.log") as off,
        process(custodes("on", on_port, args.runs), env=env, log=work / "on.log") as on,
    ):
        wait_ready(up_port, "/v1/models", up)
        wait_ready(off_port, "/healthz", off, timeout=600)
        wait_ready(on_port, "/healthz", on, timeout=600)
        print(f"servers ready in {time.perf_counter() - built:.0f} s", flush=True)
        targets = {
            "direct": (Target("direct", up_port, "/v1/chat/completions", None), None),
            "check off": (
                Target("off", off_port, "/v1/chat/completions", (work / "off" / "key").read_text()),
                off,
            ),
            "check on": (
                Target("on", on_port, "/v1/chat/completions", (work / "on" / "key").read_text()),
                on,
            ),
        }
        results: dict[str, Run] = {}
        # Steady state is what is compared: the "on" server's first call waits for its first
        # serving verdict (the verifier worker spawned, the lineage verified), seconds on a
        # loaded machine, which a 1 s warm-up does not cover. Said apart.
        for name in ("check off", "check on"):
            print(f"first answer of {name}: {first_answer(targets[name][0]):.1f} s", flush=True)

        pids = {t.name: p.pid for t, p in targets.values() if p is not None}

        def measure(name: str) -> None:
            target = targets[name][0]
            # A short warm-up (connections, the first verdict), then the measured phase.
            run = measure_alone(
                target, pids, clients=args.clients, seconds=args.seconds, rate=args.rate, warmup=1
            )
            report(name, run)
            results[name] = results[name] + run if name in results else run

        for r in range(args.rounds):
            print(f"round {r + 1}", flush=True)
            order = ["direct", "check off", "check on"]
            if r % 2:
                order = ["direct", "check on", "check off"]
            for name in order:
                measure(name)
        print("all rounds:")
        for name, run in results.items():
            report(name, run)
        direct = results["direct"]
        added = {
            name: (
                results[name].pct(0.5) - direct.pct(0.5),
                results[name].pct(0.99) - direct.pct(0.99),
            )
            for name in ("check off", "check on")
        }
        for name, (p50, p99) in added.items():
            print(f"  added by custodes, {name}: p50 {p50:+.2f} ms, p99 {p99:+.2f} ms")
        d50 = added["check on"][0] - added["check off"][0]
        d99 = added["check on"][1] - added["check off"][1]
        print(f"  serving check on - off: p50 {d50:+.2f} ms, p99 {d99:+.2f} ms")
        resume(pids)
        errors = {n: len(r.errors) for n, r in results.items() if r.errors}
        if errors:
            print(f"  ERRORS: {errors} (see {work})")


if __name__ == "__main__":
    main()
