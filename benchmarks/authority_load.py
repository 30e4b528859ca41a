"""Figure: loading and validating a constitution of 10,000 principals (target <= 2 s).

Measures :func:`custodes.constitution.read_constitution` on generated YAML text: YAML parsing
with line marks, JSON Schema, every semantic check, Cedar compilation and membership criteria,
and the feasibility of every quorum. Run: ``.venv/bin/python benchmarks/authority_load.py``.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from authority_fixtures import constitution_text  # noqa: E402

from custodes.constitution import read_constitution  # noqa: E402


def main() -> None:
    text, _ = constitution_text(10_000, 100)
    runs, cpu = [], []
    for _ in range(5):
        start, start_cpu = time.perf_counter(), time.process_time()
        c = read_constitution(text)
        runs.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    print(
        f"constitution: {len(c.principals)} principals, {len(c.access_rules)} rules, "
        f"{len(text) / 1e6:.1f} MB of YAML"
    )
    # CPU time as well: on a shared machine the wall time mostly measures the other processes.
    print(
        f"load+validate: wall median {statistics.median(runs):.2f} s, "
        f"min {min(runs):.2f} s; CPU median {statistics.median(cpu):.2f} s, "
        f"min {min(cpu):.2f} s over {len(runs)} runs (target <= 2 s)"
    )


if __name__ == "__main__":
    main()
