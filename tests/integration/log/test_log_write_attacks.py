"""Forged log writes (issue 13, class 4), from ``data/attacks/log_write.json``, on a real server.

Each variant is refused with its exact status, code and field, and nothing it claims is written:
an anonymous or malformed attempt leaves the log as it was; a known caller's forbidden attempt
(403) leaves exactly one ``log.append_denied/v1`` entry naming them and the denial. The allowed
write is stamped with the key's principal and the server's clock.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from custodes.config import Settings
from custodes.gateway import KeyStore
from custodes.log import NoteSigner, parse_time
from custodes.wiring import open_core
from tests.support.keys import LOG_WRITER
from tests.support.server import ServerProcess, running_server

ATTACKS = json.loads(
    (Path(__file__).resolve().parents[3] / "data" / "attacks" / "log_write.json").read_text()
)


_PRINCIPALS = {"writer": LOG_WRITER, "reader": "alice@lab", "stranger": "mallory@elsewhere"}


def _deep(levels: int) -> Any:
    value: Any = "bottom"
    for _ in range(levels):
        value = [value]
    return value


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[ServerProcess, dict[str, str]]]:
    data = tmp_path_factory.mktemp("attacks")
    (data / "log.key").write_text(NoteSigner.generate("custodes.local/log").to_key())
    settings = Settings(data_dir=data, demo=True, log_checkpoint_interval_ms=100)
    ctx = open_core(settings)
    try:
        store = KeyStore(ctx.engine, ctx.log, ctx.clock)
        keys = {
            "writer": store.create(LOG_WRITER).secret,
            "reader": store.create("alice@lab").secret,
            "stranger": store.create("mallory@elsewhere").secret,
        }
        revoked = store.create(LOG_WRITER)
        store.revoke(revoked.key.key_id, reason="test")
        keys["revoked"] = revoked.secret
    finally:
        ctx.close()
    with running_server(settings, log_path=data / "server.log") as proc:
        yield proc, keys


def _headers(auth: str | None, keys: dict[str, str]) -> list[tuple[str, str]]:
    if auth is None:
        return []
    if auth.startswith("raw:"):
        return [("authorization", auth[4:])]
    if auth == "two":
        return [("authorization", f"Bearer {keys['writer']}"), ("authorization", "Bearer x")]
    return [("authorization", f"Bearer {keys[auth]}")]


def _size(base: str) -> int:
    size: int = httpx.get(f"{base}/healthz").json()["log_size"]
    return size


@pytest.mark.parametrize("attack", ATTACKS["variants"], ids=lambda a: a["name"])
def test_each_forged_write_is_refused_exactly_and_writes_nothing(
    server: tuple[ServerProcess, dict[str, str]], attack: dict[str, Any]
) -> None:
    proc, keys = server
    body = attack["body"]
    if body.get("body", {}).get("data") == "DEEP200":
        body = {**body, "body": {**body["body"], "data": {"d": _deep(200)}}}
    before = _size(proc.base_url)
    r = httpx.post(
        proc.url("/log/entries"),
        content=json.dumps(body),
        headers=[("content-type", "application/json"), *_headers(attack["auth"], keys)],
    )
    assert r.status_code == attack["status"], r.text
    error = r.json()["error"]
    assert (error["code"], error["where"]) == (attack["code"], attack["where"]), error
    assert error["message"]
    time.sleep(0.05)
    after = _size(proc.base_url)
    if attack["status"] != 403:
        assert after == before, "a refused write left something in the log"
        return
    # A known caller's forbidden attempt is itself logged, naming the denial, and nothing else.
    assert after == before + 1, "a forbidden attempt was not logged as exactly one denial"
    denial = httpx.get(proc.url(f"/log/entries/{before}")).json()["entry"]
    assert denial["type"] == "log.append_denied/v1"
    assert denial["principal"] == _PRINCIPALS[attack["auth"]]
    assert (denial["body"]["code"], denial["body"]["where"]) == ("forbidden", attack["where"])
    assert denial["body"]["reason"] == error["message"]
    sent = attack["body"].get("entries", [attack["body"]])
    if attack["where"] != "Authorization":  # the body was read: its types are named
        assert denial["body"]["types"] == sorted({e["type"] for e in sent})


def test_an_allowed_write_names_the_key_holder_and_the_server_clock(
    server: tuple[ServerProcess, dict[str, str]],
) -> None:
    proc, keys = server
    sent = datetime.now(UTC)
    r = httpx.post(
        proc.url("/log/entries"),
        json={"entries": [{"type": "log.annotation/v1", "body": {"text": "a real note"}}]},
        headers={"authorization": f"Bearer {keys['writer']}"},
    )
    assert r.status_code == 201, r.text
    index = r.json()["entries"][0]["index"]
    entry = httpx.get(proc.url(f"/log/entries/{index}")).json()["entry"]
    assert entry["principal"] == LOG_WRITER
    assert entry["body"]["text"] == "a real note"
    assert abs((parse_time(entry["time"]) - sent).total_seconds()) < 5


def test_the_attack_file_covers_every_custodes_only_type_family() -> None:
    # The forged types tried span every package that writes entries of its own actions.
    families = {a["body"]["type"].split(".")[0] for a in ATTACKS["variants"] if "type" in a["body"]}
    assert {"gateway", "authority", "constitution", "custody", "monitors"} <= families
