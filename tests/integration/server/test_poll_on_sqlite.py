"""Two processes on one SQLite file, which has no notifications: a real server and this test's
own authority (as a second server would hold). What this process grants, revokes and adopts,
the server takes in by its poll (``authority_poll_ms``) — its grant cache would keep a decision
for ten minutes, so only the poll can explain a prompt refusal."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from custodes.authority import Authority, SigningKey, new_request, sign_approval, sign_request
from custodes.coalition import AmendmentEffects
from custodes.config import Settings
from custodes.constitution import read_constitution
from custodes.wiring import open_core
from tests.support.amend import next_version
from tests.support.keys import issue_keys
from tests.support.server import ServerProcess, running_server

pytestmark = pytest.mark.slow

KEYS = Path(__file__).resolve().parents[3] / "examples" / "keys"
HELLO = [{"role": "user", "content": "hello from the other process"}]


def _until(check: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"not within {timeout} s: {what}")
        time.sleep(0.05)


def _chat(server: ServerProcess, key: str) -> int:
    r = httpx.post(
        server.url("/v1/chat/completions"),
        json={"model": "frontier-cyber", "messages": HELLO},
        headers={"authorization": f"Bearer {key}"},
        timeout=30,
    )
    return r.status_code


def _signed(a: Authority, kind: str, who: str, **fields: Any) -> tuple[dict[str, Any], str]:
    req = new_request(
        kind,
        constitution_version=a.constitution.version,
        requester=who,
        created=datetime.now(UTC),
        **fields,
    )
    return req, sign_request(req, SigningKey.from_file(KEYS / f"{who.split('@')[0]}.key"))


def _approve(a: Authority, record: Any, approver: str) -> Any:
    key = SigningKey.from_file(KEYS / f"{approver.split('@')[0]}.key")
    _, signature = sign_approval(record.request, key)
    return a.approve(record.id, approver, signature)


def test_the_server_polls_what_another_process_changed(tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path, demo=True, authority_poll_ms=100, gateway_grant_cache_ms=600_000
    )
    keys = issue_keys(settings, "alice@lab")
    with running_server(settings, log_path=tmp_path / "server.log", ready_timeout=180) as server:
        assert _chat(server, keys["alice@lab"]) == 403  # cached for ten minutes from now on
        core = open_core(settings)
        try:
            other = Authority(core.engine, core.log, clock=core.clock, effects=AmendmentEffects())
            assert other.start() is not None  # the server's version 1, from the file
            req, sig = _signed(
                other,
                "grant",
                "alice@lab",
                capability="cyber-frontier",
                purpose="triage",
                duration_seconds=3600,
            )
            record = other.submit_request(req, sig)
            _approve(other, record, "bob@lab")
            grant = _approve(other, record, "erin@auditor").grant_id
            _until(lambda: _chat(server, keys["alice@lab"]) == 200, "the server allows")
            other.revoke(*_signed(other, "revocation", "dana@asi", grant=grant, reason="done"))
            _until(lambda: _chat(server, keys["alice@lab"]) == 403, "the server refuses")

            document = next_version(other.constitution.text)
            new = read_constitution(document)
            req, sig = _signed(
                other,
                "amendment",
                "bob@lab",
                purpose="one more tier",
                amendment={"version": new.version, "digest": new.digest},
                acknowledgements=[],
            )
            record = other.propose_amendment(document, req, sig)
            _approve(other, record, "bob@lab")
            assert _approve(other, record, "dana@asi").status == "adopted"
            _until(
                lambda: httpx.get(server.url("/constitution"), timeout=30).json()["version"] == 2,
                "the server decides under version 2",
            )
            health = httpx.get(server.url("/healthz"), timeout=30).json()
            assert health["constitution_version"] == 2
            assert "change_notifications" not in health  # SQLite: the poll is the only line
        finally:
            core.close()
