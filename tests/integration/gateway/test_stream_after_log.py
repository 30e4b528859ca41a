"""Streams after the log (issue 13, class 5) on real uvicorn: no byte of a streamed answer
before its entry is durable, and an outcome entry however the stream ends.

Named cases:

- ``log_down``: the log's table is gone: 503 ``log_unavailable``, no content, nothing upstream.
- ``database_locked``: another process holds SQLite's write lock past the busy timeout: the same.
- ``lock_released_late``: while the lock is held not even the status line is sent; the start
  entry precedes the outcome entry.
- ``client_leaves_before_the_response_starts`` / ``client_leaves_mid_stream``: the outcome
  entry is written anyway, as ``abandoned`` with the reason.
"""

from __future__ import annotations

import socket
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import orjson
import pytest

from custodes.gateway import CALL, CALL_START
from custodes.log import Entry
from tests.integration.gateway.conftest import GatewayServer


def _body(text: str) -> dict[str, Any]:
    return {
        "model": "frontier-general",
        "stream": True,
        "messages": [{"role": "user", "content": text}],
    }


def _entries(server: GatewayServer, *types: str) -> list[Entry]:
    log = server.ctx.log
    entries = [Entry.from_json(log.entry_data(i)) for i in range(log.size())]
    return [e for e in entries if e.type in types]


def _assert_503_and_nothing_else(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["content-type"].startswith("application/json")
    error = response.json()["error"]
    assert (error["code"], error["type"]) == ("log_unavailable", "api_error")
    assert b"data:" not in response.content and b"echo" not in response.content


@contextmanager
def _table_gone(server: GatewayServer) -> Iterator[None]:
    with server.ctx.engine.begin() as conn:
        conn.exec_driver_sql("ALTER TABLE log_entries RENAME TO log_entries_gone")
    try:
        yield
    finally:
        with server.ctx.engine.begin() as conn:
            conn.exec_driver_sql("ALTER TABLE log_entries_gone RENAME TO log_entries")


@contextmanager
def _write_locked(server: GatewayServer) -> Iterator[sqlite3.Connection]:
    """Another process's view: a connection of its own holding the database's write lock."""
    conn = sqlite3.connect(server.data_dir / "custodes.db", isolation_level=None, timeout=1)
    conn.execute("BEGIN EXCLUSIVE")
    try:
        yield conn
    finally:
        conn.execute("ROLLBACK")
        conn.close()


def test_log_down_a_stream_gets_503_and_no_content(gateway_server: GatewayServer) -> None:
    key = gateway_server.key("alice@lab")
    before = len(_entries(gateway_server, CALL, CALL_START))
    with _table_gone(gateway_server):
        response = httpx.post(
            f"{gateway_server.base_url}/v1/chat/completions",
            json=_body("hello"),
            headers={"authorization": f"Bearer {key}"},
            timeout=60,
        )
    _assert_503_and_nothing_else(response)
    assert gateway_server.upstream.received == [], "the call went upstream before it was logged"
    assert len(_entries(gateway_server, CALL, CALL_START)) == before


@pytest.mark.slow
def test_database_locked_a_stream_gets_503_and_no_content(gateway_server: GatewayServer) -> None:
    key = gateway_server.key("alice@lab")
    with _write_locked(gateway_server):
        # The log waits out SQLite's busy timeout (30 s), then gives up: nothing is relayed.
        response = httpx.post(
            f"{gateway_server.base_url}/v1/chat/completions",
            json=_body("hello"),
            headers={"authorization": f"Bearer {key}"},
            timeout=120,
        )
    _assert_503_and_nothing_else(response)
    assert gateway_server.upstream.received == []
    assert not _entries(gateway_server, CALL, CALL_START)


def test_lock_released_late_no_byte_before_the_start_entry(gateway_server: GatewayServer) -> None:
    key = gateway_server.key("alice@lab")
    started = threading.Event()
    result: dict[str, Any] = {}

    def call() -> None:
        with httpx.stream(
            "POST",
            f"{gateway_server.base_url}/v1/chat/completions",
            json=_body("hello"),
            headers={"authorization": f"Bearer {key}"},
            timeout=60,
        ) as response:
            started.set()  # the status line and headers arrived
            result["status"] = response.status_code
            result["raw"] = response.read()

    with _write_locked(gateway_server):
        thread = threading.Thread(target=call)
        thread.start()
        time.sleep(1.5)
        assert not started.is_set(), "the stream started while its entry could not be written"
        assert gateway_server.upstream.received == []
    thread.join(30)
    assert result["status"] == 200 and result["raw"].endswith(b"data: [DONE]\n\n")
    [start] = _entries(gateway_server, CALL_START)
    [outcome] = _entries(gateway_server, CALL)
    assert start.body["request_id"] == outcome.body["request_id"]
    assert (start.body["model"], start.body["capability"]) == ("frontier-general", "general")
    assert start.body["grant"] and start.body["request_sha256"] == outcome.body["request_sha256"]
    assert start.time <= outcome.time and outcome.body["outcome"] == "answered"


def _wait_for_outcome(server: GatewayServer) -> Entry:
    deadline = time.monotonic() + 15
    while not (found := _entries(server, CALL)) and time.monotonic() < deadline:
        time.sleep(0.05)
    [outcome] = found
    return outcome


def test_client_leaves_before_the_response_starts(gateway_server: GatewayServer) -> None:
    key = gateway_server.key("alice@lab")
    body = orjson.dumps(_body("SLOW_START please"))  # the upstream answers after 1 s
    host, port = gateway_server.base_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port))) as sock:
        sock.sendall(
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            + f"Authorization: Bearer {key}\r\nContent-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        time.sleep(0.3)  # before the upstream (so custodes) can start the response
    outcome = _wait_for_outcome(gateway_server)
    assert outcome.body["outcome"] == "abandoned" and outcome.body["stream"] is True
    assert outcome.body["reason"] == "the client went away before the stream started"
    [start] = _entries(gateway_server, CALL_START)
    assert start.body["request_id"] == outcome.body["request_id"]


def test_client_leaves_mid_stream(gateway_server: GatewayServer) -> None:
    key = gateway_server.key("alice@lab")
    with httpx.stream(
        "POST",
        f"{gateway_server.base_url}/v1/chat/completions",
        json=_body("SLOW_WORDS one two three four five six seven eight nine ten"),
        headers={"authorization": f"Bearer {key}"},
    ) as response:
        assert next(response.iter_raw()).startswith(b"data: ")
    outcome = _wait_for_outcome(gateway_server)
    assert outcome.body["outcome"] == "abandoned"
    assert outcome.body["reason"] == "the client went away mid-stream"
    assert outcome.body["response_sha256"] is not None
