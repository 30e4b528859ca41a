"""Concentration figures of every tier over 10M gateway calls, and the cost of one new call.

Fills a :class:`custodes.usage.Ledger` with N calls (5 tiers, 2,000 persons in 40
organisations, Zipf-skewed use, times spread over 120 days, in time order), then measures:

- cold: every tier's figures in every window (day, week, 90 days) with no window built yet
  (the rebuild after a start: one vectorised pass per window);
- one call: ``Ledger.add`` of a new call into every built window (the per-call maintenance);
- warm: every tier's figures again after the new calls (windows kept current).

Run: ``nice -n 10 .venv/bin/python benchmarks/usage_figures.py [N]`` (default 10,000,000).
"""

from __future__ import annotations

import sys
import time

import numpy as np

from custodes.usage import FIGURE_WINDOWS, Counted, Ledger, tier_figures

TIERS = ["general", "cyber-frontier", "exploit-details", "weights-export", "training-write"]


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000_000
    rng = np.random.default_rng(7)
    spans = [w.total_seconds() for w in FIGURE_WINDOWS.values()]
    ledger = Ledger(spans)
    start = 1_780_000_000.0
    t0 = time.perf_counter()
    # Filling goes through the same arrays add() writes, in bulk (a rebuild from the log would
    # read entries; reading 10M entries from the store is the log's benchmark, not this one).
    persons = np.minimum(rng.zipf(1.3, n), 2000) - 1
    tiers = rng.integers(0, len(TIERS), n)
    times = np.sort(rng.uniform(start, start + 120 * 86_400, n))
    tokens = rng.integers(10, 4000, n)
    for k, tier_name in enumerate(TIERS):
        mask = tiers == k
        tier = ledger._tier(tier_name)
        tier.times.frombytes(times[mask].astype(np.float64).tobytes())
        tier.persons.frombytes(persons[mask].astype(np.int64).tobytes())
        tier.orgs.frombytes((persons[mask] % 40).astype(np.int64).tobytes())
        tier.tokens.frombytes(tokens[mask].astype(np.int64).tobytes())
    for p in range(2000):
        ledger._intern(ledger._person_ids, ledger._persons, f"person-{p}")
    for o in range(40):
        ledger._intern(ledger._org_ids, ledger._orgs, f"org-{o}")
    fill = time.perf_counter() - t0
    now = start + 120 * 86_400

    def every_figure(at: float) -> float:
        began = time.perf_counter()
        for tier_name in TIERS:
            for name, w in FIGURE_WINDOWS.items():
                tier_figures(
                    ledger.view(tier_name, w.total_seconds(), at), name, coalition_share=0.5
                )
        return time.perf_counter() - began

    cold = every_figure(now)
    calls = 100_000
    batch = [
        Counted(n + i, now + i * 0.001, TIERS[i % 5], f"person-{i % 2000}", f"org-{i % 40}", 100)
        for i in range(calls)
    ]
    began = time.perf_counter()
    for c in batch:
        ledger.add(c)
    per_call = (time.perf_counter() - began) / calls
    warm = every_figure(now + calls * 0.001)
    print(
        f"calls: {n:,} in {len(TIERS)} tiers, 2,000 persons, 40 organisations "
        f"(filled in {fill:.1f} s)"
    )
    print(f"every tier x every window, cold (rebuilt): {cold:.3f} s  (target < 2 s)")
    print(f"one new call, kept in every window:        {per_call * 1e6:.1f} us")
    print(f"every tier x every window, warm:           {warm * 1000:.1f} ms")


if __name__ == "__main__":
    main()
