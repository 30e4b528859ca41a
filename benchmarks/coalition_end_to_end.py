"""Figures: the default ``custodes coalition analyze FILE --json`` end to end (read and validate
the constitution, compile its Cedar policies, build the game from the authority's decisions,
prove every optimum) on generated constitutions of three shapes (benchmarks/
coalition_constitutions.py: ``lab``, ``consortium``, ``scattered``) at 1,000 / 3,000 / 5,000
principals with hundreds of rules. Target: 5,000 principals and 625 rules in under 10 s, every
exact figure proven.

Each run is a fresh process (the ``custodes`` command's entry point), timed from outside; the
JSON it prints gives the goals and how many are proven. The machine's load is printed with each
row, since other work shares the CPU, and so is the run's CPU time (user + system), which
depends far less on that load (the solver runs one worker, so on an idle machine the wall time
is close to the CPU time). Run: ``.venv/bin/python benchmarks/coalition_end_to_end.py
[shape ...] [--sizes 1000,3000,5000]``.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from coalition_constitutions import SHAPES

SIZES = {1000: 200, 3000: 400, 5000: 625}
# The installed ``custodes`` console script, run by this interpreter.
_CLI = "import sys; from custodes.cli import main; sys.exit(main(sys.argv[1:]))"


def run(shape: str, principals: int, rules: int, folder: Path) -> None:
    path = folder / f"{shape}-{principals}.json"
    path.write_text(SHAPES[shape](principals, rules))
    load = os.getloadavg()[0]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(  # noqa: S603 - our own CLI on our own file
        [sys.executable, "-c", _CLI, "coalition", "analyze", str(path), "--json"],
        capture_output=True,
        check=False,
        text=True,
    )
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    # CPU seconds (user + system) of the run: what it costs whatever else shares the machine.
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if done.returncode != 0:
        print(f"{shape:>10} {principals:>6} {rules:>5}: failed: {done.stderr.strip()[:300]}")
        return
    doc = json.loads(done.stdout)
    goals = doc["goals"]
    proven = sum(g["proven"] for g in goals)
    open_ = [g["goal"] for g in goals if not g["proven"]]
    print(
        f"{shape:>10} {principals:>6} {rules:>5}: {wall:6.1f} s wall, {cpu:5.1f} s CPU end to end "
        f"(analysis {doc['seconds']:.1f} s), {len(goals)} goals, {proven} proven on all three "
        f"optima{'; not proven: ' + ', '.join(open_[:5]) if open_ else ''}; "
        f"load {load:.1f} on {os.cpu_count()} cores"
    )


def main() -> None:
    args = sys.argv[1:]
    sizes = list(SIZES)
    if "--sizes" in args:
        at = args.index("--sizes")
        sizes = [int(s) for s in args[at + 1].split(",")]
        del args[at : at + 2]
    shapes = args or list(SHAPES)
    with tempfile.TemporaryDirectory() as tmp:
        for shape in shapes:
            for n in sizes:
                run(shape, n, SIZES.get(n, n // 8), Path(tmp))


if __name__ == "__main__":
    main()
