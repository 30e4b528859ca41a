"""The audit rule on simulated audits with known truth: false alarms on null audits, detections
and target recovery on planted ones, at the templates the power plan asks for.

    nice -n 10 .venv/bin/python benchmarks/audits_statistics.py [--reps 400] [--delta 1.0]

Each simulated audit is one swap family of 3 candidates and 9 decoys with template effects
(sd 2) and per-query noise scaled so template-level differences have sd 1 (what the plan
assumes); a planted audit adds ``delta`` to one candidate, and a third set plants all three
(1.5, 1.5 and 2 times ``delta``) to measure whether a report's confidence intervals cover every
true effect together. Prints each rate with its exact (Clopper–Pearson) 95% interval.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=400)
    parser.add_argument("--delta", type=float, default=1.0)
    args = parser.parse_args()

    import numpy as np
    from scipy import stats
    from tests.unit.audits.sim import swap_observations

    from custodes.audits import AnalysisConfig, analyze, plan_power

    plan = plan_power(delta=args.delta, sigma=1.0, arms=3)
    config = AnalysisConfig(delta=args.delta)
    print(
        f"plan: {plan.templates_per_half} templates a half, {plan.decoys} decoys, planned power "
        f"{plan.power:.3f} at delta {args.delta} (alpha 0.05, 3 candidates)"
    )

    def rate(k: int, n: int) -> str:
        ci = stats.binomtest(k, n).proportion_ci()
        return f"{k}/{n} = {k / n:.3f} (95% CI {ci.low:.3f}-{ci.high:.3f})"

    rng = np.random.default_rng(2026)
    started = time.process_time()
    alarms = 0
    for _ in range(args.reps):
        results, _ = analyze(
            swap_observations(rng, templates_per_half=plan.templates_per_half), config
        )
        alarms += any(r.finding for r in results)
    found = recovered = 0
    for i in range(args.reps):
        target = i % 3
        results, _ = analyze(
            swap_observations(
                rng, templates_per_half=plan.templates_per_half, planted={target: args.delta}
            ),
            config,
        )
        named = {r.arm for r in results if r.finding}
        found += bool(named)
        recovered += named == {f"cand-{target}"}
    # Several findings at once: do all of a report's intervals cover their effects together?
    runs = covered = 0
    effects = {0: 1.5 * args.delta, 1: 1.5 * args.delta, 2: 2.0 * args.delta}
    for _ in range(args.reps):
        results, _ = analyze(
            swap_observations(rng, templates_per_half=plan.templates_per_half, planted=effects),
            config,
        )
        tested = [(int(r.arm.split("-")[1]), r.confirm) for r in results if r.confirm]
        if tested:
            runs += 1
            covered += all(c.ci_low <= effects[i] <= c.ci_high for i, c in tested)
    print(f"null audits with any finding (false alarm): {rate(alarms, args.reps)}")
    print(f"planted audits with a finding: {rate(found, args.reps)}")
    print(f"planted audits naming exactly the target: {rate(recovered, args.reps)}")
    print(
        "audits with 3 planted candidates whose intervals all cover the true effects "
        f"(simultaneous level 0.95): {rate(covered, runs)}"
    )
    print(f"CPU: {(time.process_time() - started) / (3 * args.reps) * 1000:.0f} ms per analysis")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
