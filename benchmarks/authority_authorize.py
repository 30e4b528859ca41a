"""Figure: an authorization decision ("may P use C now?") on a constitution of 1,000
principals and 100 rules, p50 (target <= 100 us).

Grants are made the real way (signed requests, signed approvals from two organisations, each
logged durably), then :meth:`Authority.authorize` is timed on granted pairs (the gateway's hot
path), cold (first call per pair, Cedar evaluated) and warm (decision cached per constitution
version), and on denied pairs (which build the explanation).
Run: ``.venv/bin/python benchmarks/authority_authorize.py``.
"""

from __future__ import annotations

import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from authority_fixtures import constitution_text  # noqa: E402

from custodes.authority import Authority, SigningKey  # noqa: E402
from custodes.authority._client import new_request, sign_approval, sign_request  # noqa: E402
from custodes.clock import SystemClock  # noqa: E402
from custodes.constitution import read_constitution  # noqa: E402
from custodes.errors import PolicyDenied  # noqa: E402
from custodes.log import NoteSigner, TransparencyLog  # noqa: E402
from custodes.store import create_db_engine, migrate  # noqa: E402


def pct(values: list[float], q: float) -> float:
    return sorted(values)[int(q * (len(values) - 1))] * 1e6


def main() -> None:
    text, raw_keys = constitution_text(1_000, 100, user_keys=True)
    keys = {pid: SigningKey(k) for pid, k in raw_keys.items()}
    c = read_constitution(text)
    tmp = Path(tempfile.mkdtemp())
    engine = create_db_engine(f"sqlite:///{tmp / 'bench.db'}")
    migrate(engine)
    clock = SystemClock()
    log = TransparencyLog(engine, NoteSigner.generate("bench/log"), clock=clock)
    log.start()
    authority = Authority(engine, log, clock=clock)
    authority.start(c)
    rng = random.Random(7)
    granted: list[tuple[str, str]] = []
    candidates = [
        (p.id, r)
        for r in c.access_rules
        for p in c.principals
        if p.id.startswith("user") and authority.compiled.may_request(p.id, r)
    ]
    rng.shuffle(candidates)
    started = time.perf_counter()
    for pid, rule in candidates[:60]:
        req = new_request(
            "grant",
            constitution_version=1,
            requester=pid,
            created=clock.now(),
            capability=rule.capability,
            purpose="bench",
            duration_seconds=3600,
        )
        record = authority.submit_request(req, sign_request(req, keys[pid]))
        for approver in ("approver0@org1", "approver0@org2", "approver1@org5"):
            if record.status != "pending":
                break
            _, sig = sign_approval(record.request, keys[approver])
            record = authority.approve(record.id, approver, sig)
        assert record.status == "granted", record
        granted.append((pid, rule.capability))
    print(
        f"made {len(granted)} grants through signed requests and approvals in "
        f"{time.perf_counter() - started:.1f} s"
    )

    cold = []
    for pid, cap in granted:
        t = time.perf_counter()
        authority.authorize(pid, cap)
        cold.append(time.perf_counter() - t)
    warm = []
    for _ in range(20_000):
        pid, cap = granted[rng.randrange(len(granted))]
        t = time.perf_counter()
        authority.authorize(pid, cap)
        warm.append(time.perf_counter() - t)
    denied = []
    users = [p.id for p in c.principals if p.id.startswith("user")]
    for _ in range(2_000):
        pid, cap = rng.choice(users), f"cap{rng.randrange(100)}"
        t = time.perf_counter()
        try:
            authority.authorize(pid, cap)
        except PolicyDenied:
            pass
        denied.append(time.perf_counter() - t)
    print(f"constitution: {len(c.principals)} principals, {len(c.access_rules)} rules")
    print(
        f"authorize, granted, warm: p50 {pct(warm, 0.5):.1f} us, p99 {pct(warm, 0.99):.1f} us "
        f"({len(warm)} calls; target p50 <= 100 us)"
    )
    print(
        f"authorize, granted, cold (Cedar evaluated): p50 {pct(cold, 0.5):.1f} us "
        f"({len(cold)} calls)"
    )
    print(
        f"authorize, mixed mostly denied (with explanation): p50 {pct(denied, 0.5):.1f} us "
        f"({len(denied)} calls)"
    )
    print(f"median of all warm calls: {statistics.median(warm) * 1e6:.1f} us")
    log.close()
    engine.dispose()


if __name__ == "__main__":
    main()
