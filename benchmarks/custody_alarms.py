"""Figure: recompute every disclosure clock and alarm for 100,000 findings (target <= 2 s).

Builds 100,000 finding snapshots with varied events (notified or not, fixes, attacks, grace,
escrow reads) across every preset policy, plus 20,000 detections, then times one call of the
pure :func:`evaluate_alarms` (which recomputes each finding's clock). Run:
``.venv/bin/python benchmarks/custody_alarms.py [n]``.
"""

from __future__ import annotations

import random
import sys
import time
from datetime import UTC, datetime, timedelta

from custodes.custody import (
    PRESETS,
    AlarmWindows,
    ClockEvents,
    DetectionSnapshot,
    FindingSnapshot,
    evaluate_alarms,
)


def build(n: int, rng: random.Random) -> tuple[list[FindingSnapshot], list[DetectionSnapshot]]:
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    policies = list(PRESETS.values())
    findings = []
    for i in range(n):
        reg = t0 + timedelta(minutes=rng.randrange(0, 300 * 24 * 60))
        notified = reg + timedelta(days=rng.randrange(0, 10)) if rng.random() < 0.9 else None
        day = timedelta(days=1)
        fix = notified + rng.randrange(1, 130) * day if notified and rng.random() < 0.6 else None
        attacks = notified + rng.randrange(0, 60) * day if notified and rng.random() < 0.1 else None
        grace = notified + 80 * day if notified and rng.random() < 0.1 else None
        events = ClockEvents(
            notified_at=notified,
            acknowledged_at=notified,
            fix_at=fix,
            attacks_at=attacks,
            grace_requested_at=grace,
            grace_granted_at=grace,
            disclosed_at=fix + 30 * day if fix and rng.random() < 0.5 else None,
        )
        reads = (reg + 2 * day,) if rng.random() < 0.2 else ()
        actions = tuple(sorted(t for t in (notified, fix, attacks) if t is not None))
        findings.append(
            FindingSnapshot(
                f"CUSTODES-2026-{i:06d}", reg, policies[i % len(policies)], events, reads, actions
            )
        )
    detections = [
        DetectionSnapshot(f"det-{i}", t0 + timedelta(hours=rng.randrange(0, 7000)), None, None)
        for i in range(n // 5)
    ]
    return findings, detections


def main(n: int) -> None:
    findings, detections = build(n, random.Random(7))
    now = datetime(2026, 11, 22, 12, tzinfo=UTC)
    runs = []
    for _ in range(3):
        t0 = time.perf_counter()
        alarms = evaluate_alarms(findings, detections, now, AlarmWindows())
        runs.append(time.perf_counter() - t0)
    print(
        f"recompute every clock and alarm: {n} findings + {len(detections)} detections -> "
        f"{len(alarms)} alarms; best {min(runs):.2f} s, worst {max(runs):.2f} s "
        f"(target <= 2 s)"
    )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 100_000)
