"""Figure: the demo constitution, all goals, all measures (target <= 100 ms).

Reads ``examples/constitution.yaml``, builds the game, and times :func:`analyze`: for every goal
the minimum coalition and the fewest organisations (CP-SAT, proven optimal, each re-checked by
the reference evaluator), single points of failure, veto players, minimal winning coalitions up
to 3 people, and exact Banzhaf and Shapley–Shubik indices. Prints wall and CPU time over
``runs`` runs (median and best: other processes share the CPU). Run:
``.venv/bin/python benchmarks/coalition_demo.py [runs]``.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

from custodes.coalition import analyze, game_from_constitution
from custodes.constitution import read_constitution

DEMO = Path(__file__).parents[1] / "examples" / "constitution.yaml"


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    constitution = read_constitution(DEMO)
    game = game_from_constitution(constitution)
    analyze(game)  # warm up imports and CP-SAT
    wall, cpu = [], []
    for _ in range(runs):
        w0, c0 = time.perf_counter(), time.process_time()
        analysis = analyze(game)
        wall.append(time.perf_counter() - w0)
        cpu.append(time.process_time() - c0)
    optimal = sum(
        r.cheapest.status == "OPTIMAL" and r.fewest_organisations.status == "OPTIMAL"
        for r in analysis.goals
        if r.reachable
    )
    print(
        f"{game.name}: {len(game.players)} players, {len(game.rules)} rules, "
        f"{len(game.goals)} goals; {optimal} goals proven optimal on both objectives; "
        f"power indices {', '.join(sorted({r.power.method for r in analysis.goals}))}"
    )
    print(
        f"analyze (all goals, all measures), {runs} runs: wall median "
        f"{statistics.median(wall) * 1000:.1f} ms, best {min(wall) * 1000:.1f} ms; CPU median "
        f"{statistics.median(cpu) * 1000:.1f} ms (target <= 100 ms)"
    )
    print(f"load average: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
