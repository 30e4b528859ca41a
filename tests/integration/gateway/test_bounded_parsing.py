"""Bounded parsing at the gateway (issue 13, class 8), from ``data/attacks/bounded_parsing.json``.

Each variant gets a 400 in OpenAI's error shape with the exact code, never a 500; the refusal is
logged (a ``gateway.call/v1`` entry, outcome ``denied``, named in the receipt headers) and
nothing reaches the upstream.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from custodes.gateway import CALL, RECEIPT_INDEX
from custodes.log import Entry
from tests.integration.gateway.conftest import GatewayServer
from tests.support.attacks import attack_file, expand

VARIANTS = attack_file("bounded_parsing")["gateway"]


@pytest.fixture(scope="module")
def key(shared_gateway_server: GatewayServer) -> str:
    return shared_gateway_server.key("alice@lab")


@pytest.mark.parametrize("attack", VARIANTS, ids=lambda a: a["name"])
def test_each_oversized_body_is_a_logged_openai_4xx(
    shared_gateway_server: GatewayServer, key: str, attack: dict[str, Any]
) -> None:
    server = shared_gateway_server
    upstream_before = len(server.upstream.received)
    response = httpx.post(
        f"{server.base_url}{attack['path']}",
        content=expand(attack["body"]),
        headers={"authorization": f"Bearer {key}", "content-type": "application/json"},
        timeout=30,
    )
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert (error["type"], error["code"], error["param"]) == (
        "invalid_request_error",
        attack["code"],
        "body",
    )
    entry = Entry.from_json(server.ctx.log.entry_data(int(response.headers[RECEIPT_INDEX])))
    assert entry.type == CALL and entry.principal == "alice@lab"
    assert (entry.body["outcome"], entry.body["status"]) == ("denied", 400)
    assert entry.body["reason"] and error["message"].startswith(entry.body["reason"])
    assert len(server.upstream.received) == upstream_before, "a refused body went upstream"


def test_the_deepest_accepted_body_still_works(
    shared_gateway_server: GatewayServer, key: str
) -> None:
    # 64 levels in all: the body object, metadata, and 62 nested arrays around a value.
    body = expand(
        '{"model":"frontier-general","messages":[{"role":"user","content":"hi"}],'
        '"metadata":{"k":@DEEP62@}}'
    )
    response = httpx.post(
        f"{shared_gateway_server.base_url}/v1/chat/completions",
        content=body,
        headers={"authorization": f"Bearer {key}", "content-type": "application/json"},
        timeout=30,
    )
    assert response.status_code == 200, response.text
