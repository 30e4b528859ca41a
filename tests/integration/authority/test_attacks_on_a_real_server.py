"""Issue 13's attacks on the authority and the constitution, against a real server (uvicorn in its
own process) on the demo constitution: each is refused with a 4xx and leaves no log entry that
claims what did not happen."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from custodes.authority import SigningKey
from custodes.authority._client import new_request, sign_request
from custodes.config import Settings
from tests.support.server import ServerProcess, running_server

ROOT = Path(__file__).resolve().parents[3]
KEYS = ROOT / "examples" / "keys"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    data = tmp_path_factory.mktemp("attacks")
    settings = Settings(
        data_dir=data, demo=True, constitution_file=ROOT / "examples" / "constitution.yaml"
    )
    with running_server(settings, log_path=data / "server.log") as s:
        yield s


def signed(kind: str, who: str, **fields: Any) -> dict[str, Any]:
    req = new_request(
        kind,
        constitution_version=1,
        requester=who,
        created=datetime.now(UTC),
        **fields,
    )
    key = SigningKey.from_file(KEYS / f"{who.split('@')[0]}.key")
    return {"request": req, "signature": sign_request(req, key)}


def _size(server: ServerProcess) -> int:
    # Every entry is listed from 0; the last page tells the size.
    start = 0
    while True:
        r = httpx.get(server.url("/log/entries"), params={"start": start, "end": start + 1000})
        if r.status_code == 404:
            return start
        got = r.json()["entries"]
        if len(got) < 1000:
            return start + len(got)
        start += 1000


def types_from(server: ServerProcess, start: int) -> list[str]:
    r = httpx.get(server.url("/log/entries"), params={"start": start, "end": start + 1000})
    if r.status_code == 404:
        return []
    return [e["entry"]["type"] for e in r.json()["entries"]]


def test_a_replayed_break_glass_body_is_a_4xx_and_logs_nothing(server: ServerProcess) -> None:
    body = signed(
        "break-glass",
        "carol@lab",
        capability="weights-export",
        rule="lab-incident-weights",
        purpose="serving cluster compromised",
        duration_seconds=600,
    )
    before = _size(server)
    first = httpx.post(server.url("/authority/break-glass"), json=body)
    assert first.status_code == 201, first.text
    grant_id = first.json()["id"]
    assert types_from(server, before) == ["authority.break_glass/v1", "authority.request/v1"]
    after_first = _size(server)
    for _ in range(3):
        again = httpx.post(server.url("/authority/break-glass"), json=body)
        assert again.status_code == 400, again.text
        error = again.json()["error"]
        assert error["message"] == (
            f"this break-glass request was already made (grant {grant_id}): a replay"
        )
        assert error["where"] == "request.nonce"
    # A fresh body from the same person is refused too (one open grant per person and
    # capability), and also before anything is logged.
    fresh = signed(
        "break-glass",
        "carol@lab",
        capability="weights-export",
        rule="lab-incident-weights",
        purpose="serving cluster compromised again",
        duration_seconds=600,
    )
    refused = httpx.post(server.url("/authority/break-glass"), json=fresh)
    assert refused.status_code == 403, refused.text
    assert refused.json()["error"]["message"] == "carol@lab already has an open break-glass grant"
    time.sleep(0.2)
    assert _size(server) == after_first
    assert types_from(server, after_first) == []


def test_an_alias_bomb_proposal_is_refused_fast_and_logs_nothing(server: ServerProcess) -> None:
    bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [" + ", ".join(["*" + chr(97 + i)] * 10) + "]\n"
        for i in range(20)
    )
    body = signed(
        "amendment",
        "bob@lab",
        purpose="update",
        amendment={"version": 2, "digest": "0" * 64},
        acknowledgements=[],
    )
    before = _size(server)
    r = httpx.post(server.url("/constitution/proposals"), json={**body, "document": bomb})
    assert r.status_code == 422, r.text
    assert r.json()["error"]["problems"] == [
        "line 2: YAML refused: alias *a (aliases are not allowed in a constitution; write the "
        "value out)"
    ]
    assert _size(server) == before


@pytest.mark.parametrize(
    ("document", "status", "message"),
    [
        (
            "version: " + "[" * 40 + "]" * 40 + "\n",
            422,
            "line 1: YAML refused: nested more than 32 levels deep "
            "(expected at most 32 levels of mappings and lists)",
        ),
        (
            "version: 99999999999999999999999\n",
            422,
            "line 1 (version): integer 99999999999999999999999 is out of range (expected a "
            "string, a boolean, a finite number or an integer within +-(2**53 - 1))",
        ),
        (
            "version: 2026-12-07\n",
            422,
            "line 1 (version): a YAML timestamp is not a JSON value (quote it to make it a "
            "string) (expected a string, a boolean, a finite number or an integer within "
            "+-(2**53 - 1))",
        ),
    ],
)
def test_bounded_parsing_of_proposals(
    server: ServerProcess, document: str, status: int, message: str
) -> None:
    body = signed(
        "amendment",
        "bob@lab",
        purpose="update",
        amendment={"version": 2, "digest": "0" * 64},
        acknowledgements=[],
    )
    before = _size(server)
    r = httpx.post(server.url("/constitution/proposals"), json={**body, "document": document})
    assert r.status_code == status, r.text
    assert message in r.json()["error"]["problems"]
    assert _size(server) == before


def test_oversized_deep_and_out_of_range_inputs_are_4xx(server: ServerProcess) -> None:
    body = signed(
        "amendment",
        "bob@lab",
        purpose="update",
        amendment={"version": 2, "digest": "0" * 64},
        acknowledgements=[],
    )
    big = "# " + "x" * (4 << 20) + "\n"
    r = httpx.post(
        server.url("/constitution/proposals"), json={**body, "document": big}, timeout=60
    )
    assert r.status_code == 422, r.text[:300]
    assert r.json()["error"]["where"] == "body.document"
    deep: Any = "x"
    for _ in range(12):
        deep = {"x": deep}
    nested = signed("amendment", "bob@lab", purpose="update", amendment=deep, acknowledgements=[])
    r = httpx.post(
        server.url("/constitution/proposals"), json={**nested, "document": "version: 2\n"}
    )
    assert r.status_code == 400, r.text
    assert r.json()["error"]["message"] == "the request object is nested too deeply"
    huge = signed("grant", "alice@lab", capability="cyber-frontier", purpose="x")
    huge["request"]["duration_seconds"] = 1 << 60  # no client would sign it: RFC 8785 cannot
    r = httpx.post(server.url("/authority/requests"), json=huge)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["where"] == "request.duration_seconds"
    r = httpx.get(server.url("/constitution/versions/99999999999999999999999"))
    assert r.status_code == 422, r.text
