"""Figure: approval verification and quorum decision with 10 approvals (target <= 2 ms).

Times :func:`custodes.authority.evaluate_quorum`: ten Ed25519 signatures verified over the
request's digest, each approver checked (role, requester, version, expiry), persons and
organisations counted, kinds checked. Run: ``.venv/bin/python benchmarks/authority_quorum.py``.
"""

from __future__ import annotations

import sys
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from authority_fixtures import constitution_text  # noqa: E402

from custodes.authority import (  # noqa: E402
    ApprovalFacts,
    RequestFacts,
    SigningKey,
    evaluate_quorum,
    request_digest,
)
from custodes.authority._client import sign_approval  # noqa: E402
from custodes.clock import SystemClock  # noqa: E402
from custodes.constitution import Quorum, read_constitution  # noqa: E402


def main() -> None:
    text, raw_keys = constitution_text(1_000, 10)
    c = read_constitution(text)
    now = SystemClock().now()
    request = {
        "kind": "grant",
        "requester": "user100@org0",
        "capability": "cap0",
        "nonce": "00" * 16,
        "constitution_version": 1,
    }
    digest = request_digest(request)
    approvers = [f"approver{j}@org{i}" for i in range(1, 11) for j in range(1)][:10]
    approvals = []
    for pid in approvers:
        _, sig = sign_approval(request, SigningKey(raw_keys[pid]))
        approvals.append(ApprovalFacts(approver=pid, signature=sig, at=now, constitution_version=1))
    quorum = Quorum(approvals=10, organisations=5, kinds={"overseer": 2})
    facts = RequestFacts(digest=digest, requester="user100@org0", constitution_version=1)
    times = []
    for _ in range(2_000):
        t = time.perf_counter()
        outcome = evaluate_quorum(
            c,
            approver_roles=frozenset({"approver"}),
            quorum=quorum,
            validity=timedelta(hours=24),
            request=facts,
            approvals=approvals,
            now=now,
        )
        times.append(time.perf_counter() - t)
    assert outcome.satisfied and len(outcome.counted) == 10
    times.sort()
    print(
        f"10 approvals verified and decided: p50 {times[len(times) // 2] * 1e3:.3f} ms, "
        f"p99 {times[int(len(times) * 0.99)] * 1e3:.3f} ms ({len(times)} runs; "
        "target <= 2 ms)"
    )


if __name__ == "__main__":
    main()
