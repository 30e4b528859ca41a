"""The gateway's call entries (the fast ``Entry.from_model``) encode exactly as the reference."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from types import MappingProxyType

import pytest
import rfc8785

from custodes.gateway._entries import CALL, CallRecord, DetectionRecord, MonitorVerdict, call_entry
from custodes.log import Entry

WHEN = datetime(2026, 11, 22, 12, 0, 0, 123456, tzinfo=UTC)


def _record(reason: str | None, score: float) -> CallRecord:
    return CallRecord(
        request_id="a1" * 12,
        route="/v1/chat/completions",
        method="POST",
        model="m",
        capability="general",
        grant="g-1",
        key_id="k-1",
        outcome="answered",
        status=200,
        reason=reason,
        request_sha256="0" * 64,
        response_sha256="f" * 64,
        prompt_tokens=7,
        completion_tokens=8,
        total_tokens=15,
        monitors=[
            MonitorVerdict(monitor="coup_rules", mode="gating", phase="prompt", verdict="pass"),
            MonitorVerdict(
                monitor="vuln_rules",
                mode="observing",
                phase="response",
                verdict="flag",
                detections=[
                    DetectionRecord(
                        detector="vuln_rules",
                        category="exploit",
                        score=score,
                        reason="matched \u00e9\u2028 rule",
                    )
                ],
            ),
        ],
    )


@pytest.mark.parametrize(
    ("reason", "score"),
    [
        (None, 0.0),
        (None, 1.0),
        ("plain", 0.5),
        ("caf\u00e9 \x01 \U0001f600", 1e-7),
        ("line\nbreak", 0.30000000000000004),
    ],
)
def test_entry_bytes_are_the_reference_canonical_entry(reason: str | None, score: float) -> None:
    record = _record(reason, score)
    entry = Entry(
        type=CALL,
        time=WHEN,
        principal="alice@lab",
        body=MappingProxyType(record.model_dump(mode="json")),
    )
    fast = call_entry(record, "alice@lab", WHEN)
    got = fast.to_json()
    assert got == rfc8785.dumps(entry.to_dict())
    assert Entry.from_dict(json.loads(got)) == entry == fast
    assert fast.leaf_hash() == Entry.from_json(got).leaf_hash()
