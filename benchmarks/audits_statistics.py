"""The audit rule on simulated audits with known truth: false alarms on null audits, detections
and target recovery on planted ones, at the templates the power plan asks for.

    nice -n 10 .venv/bin/python benchmarks/audits_statistics.py [--reps 400] [--delta 1.0]

Each simulated audit is one swap family of 3 candidates and 9 decoys with template effects
(sd 2) and per-query noise scaled so template-level differences have sd 1 (what the plan
assumes); a planted audit adds ``delta`` to one candidate. Prints each rate with its exact
(Clopper–Pearson) 95% interval.
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
    print(f"null audits with any finding (false alarm): {rate(alarms, args.reps)}")
    print(f"planted audits with a finding: {rate(found, args.reps)}")
    print(f"planted audits naming exactly the target: {rate(recovered, args.reps)}")
    print(f"CPU: {(time.process_time() - started) / (2 * args.reps) * 1000:.0f} ms per analysis")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
