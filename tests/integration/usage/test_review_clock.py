"""A restricted tier's review clock on a real server (uvicorn on loopback) with the project's
frozen clock: the overdue review is an alarm in the log and at /usage/alarms, raised by the
server's own watcher; a renewal under the quorum ends it; a short one is refused."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import yaml

from custodes.authority import sign_approval
from custodes.clock import FrozenClock
from custodes.config import Settings
from custodes.log import Entry
from custodes.server import create_app
from custodes.usage import ALARM, ALARM_ENDED, REVIEW, Refused, review_request
from custodes.wiring import Deployment, build_deployment
from tests.integration.gateway.conftest import demo_key
from tests.support.threaded import serve
from tests.support.usage import usage_document

REVIEWS = {
    "reviews": [
        {
            "capability": "cyber-frontier",
            "every": "90d",
            "approvers": {"roles": ["approver"]},
            "quorum": {"approvals": 2, "organisations": 2, "kinds": {"overseer": 1}},
        }
    ]
}


@contextmanager
def review_server(tmp: Path, clock: FrozenClock) -> Iterator[tuple[str, Deployment]]:
    (tmp / "constitution.yaml").write_text(
        yaml.safe_dump(usage_document(**REVIEWS), sort_keys=False)
    )
    settings = Settings(
        data_dir=tmp / "data",
        demo=True,
        constitution_file=tmp / "constitution.yaml",
        usage_alarm_interval_s=0.05,
    )
    deployment = build_deployment(settings, clock=clock)
    server, thread, port = serve(create_app(settings, deployment=deployment))
    try:
        yield f"http://127.0.0.1:{port}", deployment
    finally:
        server.should_exit = True
        thread.join(30)
        deployment.close()


def wait_for(what: str, ready: Callable[[], Any]) -> Any:
    """Poll until ``ready()`` is truthy (the watcher runs in the server's own thread)."""
    deadline = time.monotonic() + 60
    while not (found := ready()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)
    return found


def review_alarms(base: str) -> list[dict[str, Any]]:
    return [a for a in httpx.get(f"{base}/usage/alarms").json() if a["kind"] == "review-overdue"]


def test_an_overdue_review_is_an_alarm_until_the_quorum_renews_it(tmp_path: Path) -> None:
    clock = FrozenClock(datetime(2026, 12, 1, 9, 0, tzinfo=UTC))
    with review_server(tmp_path, clock) as (base, d):
        [state] = httpx.get(f"{base}/usage/reviews").json()
        assert state["due"] == "2027-03-01T09:00:00.000000Z"  # 90 days after the adoption
        assert not state["overdue"] and state["admitted"] == ["bankcert", "cyberdef", "lab"]

        clock.advance(timedelta(days=91))
        # Claimed in the database first, then appended: wait for its entry.
        [alarm] = wait_for(
            "the overdue-review alarm's entry",
            lambda: [a for a in review_alarms(base) if a["log_index"] is not None],
        )
        assert alarm["subject"] == "cyber-frontier"
        assert Entry.from_json(d.log.entry_data(alarm["log_index"])).type == ALARM
        [state] = httpx.get(f"{base}/usage/reviews").json()
        assert state["overdue"]

        refused = [Refused("greyhat", "not vetted: failed the programme's audit")]
        reasons = "partners' use is broad (3 organisations); no safe general release yet"
        request = review_request(
            d.usage.source.constitution,
            "cyber-frontier",
            due=datetime.fromisoformat(state["due"]),
            refused=refused,
            reasons=reasons,
        )
        body = {
            "capability": "cyber-frontier",
            "due": state["due"],
            "constitution": state["constitution"],
            "refused": [{"organisation": "greyhat", "reason": refused[0].reason}],
            "reasons": reasons,
            "approvals": [
                {"approver": "dana@asi", "signature": sign_approval(request, demo_key("dana"))[1]}
            ],
        }
        short = httpx.post(f"{base}/usage/reviews", json=body)
        assert short.status_code == 403, short.text
        assert "needs 1 more approval" in short.text
        assert (
            httpx.post(f"{base}/usage/reviews", json={**body, "approvals": []}).status_code == 422
        )

        body["approvals"].append(
            {"approver": "bob@lab", "signature": sign_approval(request, demo_key("bob"))[1]}
        )
        renewed = httpx.post(f"{base}/usage/reviews", json=body)
        assert renewed.status_code == 201, renewed.text
        review = renewed.json()
        assert review["never_considered"] == ["asi", "auditor", "netvendor", "osvendor", "unilab"]
        entry = Entry.from_json(d.log.entry_data(review["log_index"]))
        assert entry.type == REVIEW and entry.body["request"] == request

        [ended] = wait_for(
            "the alarm's end", lambda: [a for a in review_alarms(base) if a["ended_at"]]
        )
        assert ended["id"] == alarm["id"]
        for _ in range(3):  # more rounds (run here, not timed): nothing raised or ended again
            assert d.usage.raise_alarms() == []
        types = [Entry.from_json(d.log.entry_data(i)).type for i in range(d.log.size())]
        assert types.count(ALARM_ENDED) == 1 and types.count(REVIEW) == 1
        [state] = httpx.get(f"{base}/usage/reviews").json()
        assert not state["overdue"] and state["last"]["log_index"] == review["log_index"]
        # The same signatures cannot renew the next period: it is another request.
        again = httpx.post(f"{base}/usage/reviews", json=body)
        assert again.status_code == 400 and "another period" in again.text
