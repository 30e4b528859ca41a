"""`custodes log verify` of a 1-million-entry log (target <= 15 s).

Usage: python benchmarks/log_verify_1m.py [--entries 1000000] [--dir /tmp/custodes-bench-1m]

Builds the log through the store layer unless the folder already holds it (entries, tiles,
state, a checkpoint every 1M/100 entries), then times the real command in a fresh process:
``custodes --database-url ... log verify -q --key <verifier key>``. The time includes the
command's start-up.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import time
from pathlib import Path

from _log_support import ROOT, build, cpu_note

from custodes.log import NoteSigner


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--dir", type=Path, default=Path("/tmp/custodes-bench-1m"))
    args = parser.parse_args()
    build(args.dir, args.entries)
    vkey = NoteSigner.from_key((args.dir / "log.key").read_text()).verifier.to_key()
    exe = Path(sys.executable).parent / "custodes"
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    result = subprocess.run(
        [
            str(exe),
            "--database-url",
            f"sqlite:///{args.dir / 'custodes.db'}",
            "log",
            "verify",
            "-q",
            "--key",
            vkey,
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    elapsed = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    print(result.stdout.strip() or result.stderr.strip())
    print(
        f"custodes log verify of {args.entries:,} entries: {elapsed:.1f} s "
        f"wall, {cpu:.1f} s CPU (exit {result.returncode})"
    )
    print(cpu_note())


if __name__ == "__main__":
    main()
