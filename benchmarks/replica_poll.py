"""What the replica feed's two lines cost and how fast each brings a change (one throwaway
PostgreSQL; two authorities on it stand for two server processes):

- the poll's cost: one ``Authority.catch_up`` when nothing changed, with ``--grants`` grant rows
  in the table (what every replica pays every ``authority_poll_ms``);
- revocation propagation by NOTIFY alone (no poll) and by the poll alone (no notifications,
  ``--poll-ms``): a grant revoked on A until B's authority refuses it; several rounds;
- amendment propagation by NOTIFY alone: adopted on A until B decides under it.

    nice -n 10 .venv/bin/python benchmarks/replica_poll.py [--grants 10000] [--rounds 10]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "src")]

import sqlalchemy as sa  # noqa: E402
from tests.support.amend import next_version  # noqa: E402
from tests.support.postgres import start_cluster  # noqa: E402

from custodes.authority import (  # noqa: E402
    Authority,
    SigningKey,
    new_request,
    sign_approval,
    sign_request,
)
from custodes.authority._tables import authority_grants  # noqa: E402
from custodes.clock import SystemClock  # noqa: E402
from custodes.coalition import AmendmentEffects  # noqa: E402
from custodes.constitution import read_constitution  # noqa: E402
from custodes.errors import PolicyDenied  # noqa: E402
from custodes.log import NoteSigner, TransparencyLog  # noqa: E402
from custodes.store import create_db_engine, migrate  # noqa: E402
from custodes.wiring._replicas import ReplicaFeed  # noqa: E402

DEMO = ROOT / "examples" / "constitution.yaml"


def _key(name: str) -> SigningKey:
    return SigningKey.from_file(ROOT / "examples" / "keys" / f"{name}.key")


def _signed(a: Authority, kind: str, who: str, **fields: object) -> tuple[dict[str, object], str]:
    req = new_request(
        kind,
        constitution_version=a.constitution.version,
        requester=who,
        created=datetime.now(UTC),
        **fields,
    )
    return req, sign_request(req, _key(who.split("@")[0]))


def _grant(a: Authority) -> str:
    req, sig = _signed(
        a, "grant", "alice@lab", capability="cyber-frontier", purpose="bench", duration_seconds=600
    )
    record = a.submit_request(req, sig)
    for approver in ("bob@lab", "erin@auditor"):
        _, s = sign_approval(record.request, _key(approver.split("@")[0]))
        record = a.approve(record.id, approver, s)
    assert record.grant_id is not None
    return record.grant_id


def _allowed(a: Authority) -> bool:
    try:
        a.authorize("alice@lab", "cyber-frontier")
    except PolicyDenied:
        return False
    return True


def _wait(check: Callable[[], bool]) -> float:
    start = time.perf_counter()
    deadline = time.monotonic() + 60
    while not check():
        if time.monotonic() > deadline:
            raise RuntimeError("the change never arrived")
        time.sleep(0.001)
    return time.perf_counter() - start


def _seed(a: Authority, n: int) -> None:
    """``n`` expired-looking but unexpired grant rows of other principals (stamped by the
    trigger like any other), so the poll runs against a realistic table."""
    now = datetime.now(UTC)
    rows = [
        {
            "id": f"seed-{i}",
            "request_id": None,
            "principal": f"user{i}@lab",
            "capability": "frontier-general",
            "rule": "seed",
            "resource": None,
            "break_glass": False,
            "granted_at": now,
            "expires_at": now + timedelta(days=30),
            "revoked_at": None,
            "revoked_by": None,
            "revoke_reason": None,
            "constitution_version": 1,
            "approvals": json.dumps([]),
            "review_request_id": None,
            "review_deadline": None,
            "review_status": None,
            "log_index": 0,
        }
        for i in range(n)
    ]
    with a.engine.begin() as conn:
        for i in range(0, n, 1000):
            conn.execute(authority_grants.insert(), rows[i : i + 1000])
    with a.engine.begin() as conn:
        # What autovacuum does soon after a bulk change; until then the planner may scan the
        # whole table for the poll's ``generation > n`` instead of using its index.
        conn.execute(sa.text("ANALYZE authority_grants"))


def _ms(times: list[float]) -> str:
    return (
        ", ".join(f"{t * 1000:.0f}" for t in times)
        + f"; median {statistics.median(times) * 1000:.0f} ms, max {max(times) * 1000:.0f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--grants", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--poll-ms", type=float, default=1000.0)
    args = parser.parse_args()
    print(f"cores: {len(os.sched_getaffinity(0))}; load average before: {os.getloadavg()}")
    with start_cluster() as cluster:
        engine = create_db_engine(cluster.create_database())
        migrate(engine)
        clock = SystemClock()
        log = TransparencyLog(engine, NoteSigner.generate("bench.custodes/log"), clock=clock)
        log.start()
        demo = read_constitution(DEMO)
        a, b = (Authority(engine, log, clock=clock, effects=AmendmentEffects()) for _ in "ab")
        a.start(demo, source="demo")
        _seed(a, args.grants)
        b.start(demo, source="demo")
        b.catch_up()
        costs = []
        for _ in range(200):
            t = time.perf_counter()
            assert not b.catch_up().changed
            costs.append(time.perf_counter() - t)
        print(
            f"catch_up with nothing changed, {args.grants} grants stored: median "
            f"{statistics.median(costs) * 1000:.2f} ms, p90 "
            f"{statistics.quantiles(costs, n=10)[-1] * 1000:.2f} ms (200 calls)"
        )
        for line in ("notify", "poll"):
            listen = line == "notify"
            feed = ReplicaFeed(
                engine,
                b,
                lambda: None,
                listen=listen,
                poll=0 if listen else args.poll_ms / 1000,
            )
            feed.start()
            times = []
            try:
                for _ in range(args.rounds):
                    gid = _grant(a)
                    _wait(lambda: _allowed(b))
                    if not listen:
                        # The grant arrived just after a poll: revoke at a random phase of
                        # the poll's period, as a real revocation does.
                        time.sleep(random.uniform(0, args.poll_ms / 1000))  # noqa: S311
                    a.revoke(*_signed(a, "revocation", "dana@asi", grant=gid, reason="bench"))
                    times.append(_wait(lambda: not _allowed(b)))
            finally:
                feed.close()
            how = "NOTIFY alone" if listen else f"the poll alone ({args.poll_ms:.0f} ms)"
            print(f"revocation on A refused by B, {how} (ms): {_ms(times)}")
        feed = ReplicaFeed(engine, b, lambda: None, listen=True, poll=0)
        feed.start()
        times = []
        try:
            for _ in range(min(args.rounds, 5)):
                document = next_version(a.constitution.text)
                new = read_constitution(document)
                req, sig = _signed(
                    a,
                    "amendment",
                    "bob@lab",
                    purpose="bench",
                    amendment={"version": new.version, "digest": new.digest},
                    acknowledgements=[],
                )
                record = a.propose_amendment(document, req, sig)
                for approver in ("bob@lab", "dana@asi"):
                    _, s = sign_approval(record.request, _key(approver.split("@")[0]))
                    record = a.approve(record.id, approver, s)
                assert record.status == "adopted", record
                times.append(_wait(lambda v=new.version: b.constitution.version == v))
        finally:
            feed.close()
        print(f"amendment adopted on A in force on B, NOTIFY alone (ms): {_ms(times)}")
        log.close()
        engine.dispose()
    print(f"load average after: {os.getloadavg()}; at {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")


if __name__ == "__main__":
    main()
