"""Figures: minimum coalitions on generated constitutions (fixed seeds).

- realistic, 5,000 principals / 600 rules: minimum coalition proven optimal, target <= 1 s
  per goal;
- adversarial random role membership, 1,000 principals / 350 rules: target <= 3 s per goal, or
  the optimality gap reached in 3 s.

For each of ``goals`` goals (every tier for realistic is too many to print; a fixed sample),
times :func:`minimum_coalition` (model build + CP-SAT + re-check by the reference evaluator).
The fixpoint of everyone together is computed once per game, as :func:`analyze` does, and
timed separately. Run: ``.venv/bin/python benchmarks/coalition_large.py [realistic|adversarial]
[workers] [adversarial time limit, default 3 s]``.
"""

from __future__ import annotations

import os
import random
import statistics
import sys
import time

from coalition_generators import adversarial, realistic

from custodes.coalition import Game, evaluate, minimum_coalition


def run(game: Game, goals: int, time_limit: float, workers: int, target: float) -> None:
    started = time.perf_counter()
    everyone = evaluate(game, game.corruptible)
    shared = time.perf_counter() - started
    reachable = sorted(everyone.reached)
    picked = sorted(random.Random(3).sample(reachable, min(goals, len(reachable))))
    print(
        f"{game.name}: {len(game.players)} principals, {len(game.rules)} rules, "
        f"{len(reachable)}/{len(game.goals)} goals reachable by everyone; "
        f"fixpoint of everyone {shared:.3f} s (once per game)"
    )
    times, cpu, optimal = [], [], 0
    for goal in picked:
        cpu0 = time.process_time()
        sol = minimum_coalition(
            game, goal, time_limit=time_limit, workers=workers, everyone=everyone
        )
        cpu.append(time.process_time() - cpu0)
        times.append(sol.seconds)
        optimal += sol.status == "OPTIMAL"
        gap = "" if sol.status == "OPTIMAL" else f" gap {sol.gap:.1%} (bound {sol.bound:g})"
        print(
            f"  {goal:>8}: {sol.status}{gap} cost {sol.value:g} ({len(sol.coalition)} people)"
            f" classes {sol.classes} rules {sol.rules}  {sol.seconds:.3f} s wall, "
            f"{cpu[-1]:.3f} s CPU"
        )
    print(
        f"  {optimal}/{len(picked)} proven optimal; per goal wall median "
        f"{statistics.median(times):.3f} s, max {max(times):.3f} s; CPU median "
        f"{statistics.median(cpu):.3f} s, max {max(cpu):.3f} s (target <= {target:g} s)"
    )
    print(f"  load average while running: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")


def main() -> None:
    which = sys.argv[1] if len(sys.argv) > 1 else "both"
    workers = int(sys.argv[2]) if len(sys.argv) > 2 else 2
    adversarial_limit = float(sys.argv[3]) if len(sys.argv) > 3 else 3.0
    if which in ("realistic", "both"):
        run(realistic(), goals=20, time_limit=10.0, workers=workers, target=1.0)
    if which in ("adversarial", "both"):
        run(adversarial(), goals=10, time_limit=adversarial_limit, workers=workers, target=3.0)


if __name__ == "__main__":
    main()
