"""The gateway's added latency from usage: ``UsageTracker.admit`` per call, with and without a
gating share rule on the tier (the chain of direction is resolved either way).

Uses the demo constitution with workloads and a gating rule (tests/support/usage.py), a real
SQLite log, and 100,000 counted calls in the ledger. Both variants run in one process, side by
side. Run: ``nice -n 10 .venv/bin/python benchmarks/usage_gate.py``.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.usage import usage_constitution  # noqa: E402

from custodes.clock import SystemClock  # noqa: E402
from custodes.constitution import Constitution  # noqa: E402
from custodes.log import NoteSigner, TransparencyLog  # noqa: E402
from custodes.store import create_db_engine, migrate  # noqa: E402
from custodes.usage import Counted, UsageTracker  # noqa: E402


@dataclass
class Fixed:
    constitution: Constitution


def measure(tracker: UsageTracker, capability: str, rounds: int = 200_000) -> float:
    samples = []
    for _ in range(5):
        began = time.perf_counter()
        for i in range(rounds):
            tracker.admit(f"agent-{i % 5}@lab" if i % 2 else "grace@bankcert", capability, None)
        samples.append((time.perf_counter() - began) / rounds)
    return statistics.median(samples)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        engine = create_db_engine(f"sqlite:///{tmp}/u.db")
        migrate(engine)
        clock = SystemClock()
        log = TransparencyLog(engine, NoteSigner.generate("bench/log"), clock=clock)
        log.start()
        tracker = UsageTracker(
            engine=engine, log=log, constitution=Fixed(usage_constitution()), clock=clock
        )
        tracker.catch_up()
        now = clock.now().timestamp()
        # Many persons share cyber-frontier, so nobody is above the 40% share: every call is
        # checked and let through (the common case the latency matters for).
        for i in range(100_000):
            tracker._ledger.add(
                Counted(i, now - i, "cyber-frontier", f"p{i % 50}", f"o{i % 9}", 100)
            )
        gated = measure(tracker, "cyber-frontier")  # one gating rule on this tier
        plain = measure(tracker, "general")  # no rule: the chain only
        log.close()
        engine.dispose()
    print(f"admit, tier without rules (chain only): {plain * 1e6:.2f} us")
    print(f"admit, tier with a gating share rule:   {gated * 1e6:.2f} us")
    print(f"added by the gate: {(gated - plain) * 1e6:.2f} us (target < 100 us)")


if __name__ == "__main__":
    main()
