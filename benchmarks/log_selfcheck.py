"""The log's start-up self-check on logs of growing size (target: under 2 s on 10M entries).

Usage: python benchmarks/log_selfcheck.py [--dir /tmp/custodes-bench-10m]
       [--sizes 1000,100000,1000000]

For each size in ``--sizes`` a log is built under /tmp/custodes-bench-selfcheck-<size> (through
the store layer, as the other log benchmarks do) unless it exists; ``--dir`` adds an existing
log (the 10M-entry one that ``log_proof_10m.py`` builds; it is migrated first, which numbers its
checkpoint rows). Each log is checked in a fresh process, so the first figure includes opening
the database with a cold SQLite cache (the OS page cache may still hold pages); then the check
runs four more times in that process. It prints the size, the first and the median of the
rest, and the number of checkpoint rows.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

from _log_support import ROOT, build, cpu_note

_CHILD = """
import json, sys, time
t0 = time.perf_counter()
from custodes.log import NoteSigner, TransparencyLog
from custodes.store import create_db_engine, migrate
d = sys.argv[1]
engine = create_db_engine(f"sqlite:///{d}/custodes.db")
migrate(engine)
log = TransparencyLog(engine, NoteSigner.from_key(open(f"{d}/log.key").read()))
t1 = time.perf_counter()
times = []
for _ in range(5):
    s = time.perf_counter()
    result = log.check()
    times.append(time.perf_counter() - s)
print(json.dumps({"size": result.size, "checkpoints": result.checkpoints, "times": times,
                  "open": t1 - t0}))
"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dir", type=Path, action="append", default=[])
    parser.add_argument("--sizes", default="1000,100000,1000000")
    args = parser.parse_args()
    dirs: list[Path] = []
    for n in (int(s) for s in args.sizes.split(",") if s):
        d = Path(f"/tmp/custodes-bench-selfcheck-{n}")
        build(d, n)
        dirs.append(d)
    dirs += args.dir
    print(f"{'entries':>12} {'checkpoints':>12} {'first check':>12} {'median of 4':>12}")
    for d in dirs:
        out = subprocess.run(
            [sys.executable, "-c", _CHILD, str(d)],
            capture_output=True,
            text=True,
            cwd=ROOT,
            env={"PYTHONPATH": str(ROOT / "src"), "PATH": "/usr/bin:/bin"},
        )
        if out.returncode != 0:
            print(out.stderr.strip().splitlines()[-1])
            continue
        r = json.loads(out.stdout.strip().splitlines()[-1])
        first, rest = r["times"][0], r["times"][1:]
        print(
            f"{r['size']:>12,} {r['checkpoints']:>12,} {first * 1000:>10.1f} ms "
            f"{statistics.median(rest) * 1000:>9.2f} ms"
        )
    print(cpu_note())


if __name__ == "__main__":
    main()
