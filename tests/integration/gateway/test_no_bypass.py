"""No bypass: every way around the checks that LiteLLM's tracker records, and the usual path
tricks, is refused with the right 4xx, never reaches the upstream, and is logged as denied.

Requests are sent with ``http.client`` so the request line goes out byte for byte (httpx and
the openai client would normalise some of these paths before sending them).
"""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest

from custodes.log import Entry
from tests.integration.gateway.conftest import GatewayServer
from tests.support.upstream import Received


@pytest.fixture
def gateway(shared_gateway_server: GatewayServer) -> Iterator[Fresh]:
    yield Fresh(shared_gateway_server)


class Fresh:
    """The shared server, seen from one test: only the calls and upstream requests it caused."""

    def __init__(self, server: GatewayServer) -> None:
        self.server = server
        self.base_url = server.base_url
        self._calls = len(server.calls())
        self._received = len(server.upstream.received)

    def key(self, principal: str) -> str:
        return self.server.key(principal)

    def calls(self) -> list[Entry]:
        return self.server.calls()[self._calls :]

    def received(self) -> list[Received]:
        return self.server.upstream.received[self._received :]


ALLOWED = {"model": "frontier-general", "messages": [{"role": "user", "content": "hi"}]}
DENIED_MODEL = "frontier-cyber"  # alice holds no grant for its capability


def send(
    server: Fresh,
    method: str,
    target: str,
    body: bytes | None,
    *,
    key: str | None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, Any]]:
    parts = urlsplit(server.base_url)
    conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=10)
    try:
        conn.putrequest(method, target, skip_accept_encoding=True)
        all_headers = {"content-type": "application/json", **(headers or {})}
        if key is not None:
            all_headers["authorization"] = f"Bearer {key}"
        if (
            body is not None
            and "content-length" not in all_headers
            and "transfer-encoding" not in all_headers
        ):
            all_headers["content-length"] = str(len(body))
        for name, value in all_headers.items():
            conn.putheader(name, value)
        conn.endheaders()
        if body is not None:
            conn.send(body)
        response = conn.getresponse()
        payload = response.read()
        return response.status, json.loads(payload) if payload else {}
    finally:
        conn.close()


def body(**changes: Any) -> bytes:
    return json.dumps({**ALLOWED, **changes}).encode()


CASES = [
    # LiteLLM #41810: a disallowed model in the ?model= query string, an allowed one in the body.
    (
        "41810-query-model",
        "POST",
        f"/v1/chat/completions?model={DENIED_MODEL}",
        body(),
        400,
        "model_in_query",
    ),
    (
        "41810-query-model-embeddings",
        "POST",
        f"/v1/embeddings?model={DENIED_MODEL}",
        json.dumps({"model": "frontier-general", "input": "x"}).encode(),
        400,
        "model_in_query",
    ),
    (
        "41810-query-model-encoded-name",
        "POST",
        f"/v1/chat/completions?%6dodel={DENIED_MODEL}",
        body(),
        400,
        "model_in_query",
    ),
    (
        "query-other",
        "POST",
        "/v1/chat/completions?api-version=2024-10-21",
        body(),
        400,
        "unsupported_query",
    ),
    # LiteLLM #41295 (and #8780, #8688): the model in a deployment path, not the body.
    (
        "41295-azure-deployments",
        "POST",
        f"/azure/openai/deployments/{DENIED_MODEL}/chat/completions?api-version=2024-10-21",
        body(),
        404,
        "unknown_url",
    ),
    (
        "8780-openai-deployments",
        "POST",
        f"/openai/deployments/{DENIED_MODEL}/chat/completions",
        body(),
        404,
        "unknown_url",
    ),
    # LiteLLM #41467: a provider pass-through route, the model in a body field other than model.
    (
        "41467-watsonx-route",
        "POST",
        "/watsonx/ml/v1/text/generation",
        json.dumps({"model_id": DENIED_MODEL, "input": "hi"}).encode(),
        404,
        "unknown_url",
    ),
    (
        "41467-model-id-field",
        "POST",
        "/v1/chat/completions",
        body(model_id=DENIED_MODEL),
        400,
        "unsupported_parameter",
    ),
    (
        "deployment-id-field",
        "POST",
        "/v1/chat/completions",
        body(deployment_id=DENIED_MODEL),
        400,
        "unsupported_parameter",
    ),
    # Path tricks that a lenient router folds into the real route.
    ("double-slash", "POST", "//v1/chat/completions", body(), 400, "non_canonical_path"),
    ("inner-double-slash", "POST", "/v1//chat/completions", body(), 400, "non_canonical_path"),
    ("encoded-slash", "POST", "/v1/chat%2Fcompletions", body(), 400, "non_canonical_path"),
    ("double-encoded-slash", "POST", "/v1/chat%252Fcompletions", body(), 400, "non_canonical_path"),
    ("encoded-letters", "POST", "/v1/chat/%63ompletions", body(), 400, "non_canonical_path"),
    ("upper-case", "POST", "/V1/CHAT/COMPLETIONS", body(), 400, "non_canonical_path"),
    ("mixed-case", "POST", "/v1/Chat/Completions", body(), 400, "non_canonical_path"),
    ("trailing-dot", "POST", "/v1/chat/completions.", body(), 400, "non_canonical_path"),
    ("trailing-slash", "POST", "/v1/chat/completions/", body(), 400, "non_canonical_path"),
    ("dot-segment", "POST", "/v1/./chat/completions", body(), 400, "non_canonical_path"),
    ("dot-dot-segment", "POST", "/v1/x/../chat/completions", body(), 400, "non_canonical_path"),
    ("encoded-dot-dot", "POST", "/v1/x/%2e%2e/chat/completions", body(), 400, "non_canonical_path"),
    ("backslash", "POST", "/v1\\chat\\completions", body(), 400, "non_canonical_path"),
    ("matrix-param", "POST", "/v1/chat/completions;model=x", body(), 400, "non_canonical_path"),
    ("models-trailing-slash", "GET", "/v1/models/", None, 400, "non_canonical_path"),
    # Routes the gateway does not serve.
    ("legacy-completions", "POST", "/v1/completions", body(), 404, "unknown_url"),
    ("responses", "POST", "/v1/responses", body(), 404, "unknown_url"),
    ("model-retrieve", "GET", f"/v1/models/{DENIED_MODEL}", None, 404, "unknown_url"),
    ("v2", "POST", "/v2/chat/completions", body(), 404, "unknown_url"),
    ("bare-chat", "POST", "/chat/completions", body(), 404, "unknown_url"),
    ("wrong-method", "GET", "/v1/chat/completions", None, 405, "method_not_allowed"),
    ("put-models", "PUT", "/v1/models", b"{}", 405, "method_not_allowed"),
    # Bodies.
    (
        "malformed-json",
        "POST",
        "/v1/chat/completions",
        b'{"model": "frontier-general",',
        400,
        "invalid_json",
    ),
    ("json-array", "POST", "/v1/chat/completions", b"[]", 400, "invalid_json"),
    (
        "no-model",
        "POST",
        "/v1/chat/completions",
        json.dumps({"messages": []}).encode(),
        400,
        "missing_model",
    ),
    (
        "model-not-a-string",
        "POST",
        "/v1/chat/completions",
        body(model=["frontier-general"]),
        400,
        "missing_model",
    ),
    ("no-messages", "POST", "/v1/chat/completions", body(messages=[]), 400, "invalid_messages"),
    (
        "token-id-embeddings",
        "POST",
        "/v1/embeddings",
        json.dumps({"model": "frontier-general", "input": [[1, 2, 3]]}).encode(),
        400,
        "invalid_input",
    ),
    ("unknown-model", "POST", "/v1/chat/completions", body(model="gpt-4o"), 404, "model_not_found"),
    # Aliases: only the names in the models file select a model; the upstream's own name for
    # it, or a case variant, is not another way in.
    (
        "upstream-model-name",
        "POST",
        "/v1/chat/completions",
        body(model="test-model"),
        404,
        "model_not_found",
    ),
    (
        "model-case-variant",
        "POST",
        "/v1/chat/completions",
        body(model="Frontier-General"),
        404,
        "model_not_found",
    ),
    (
        "model-whitespace",
        "POST",
        "/v1/chat/completions",
        body(model="frontier-general "),
        404,
        "model_not_found",
    ),
    (
        "oversized",
        "POST",
        "/v1/chat/completions",
        body(messages=[{"role": "user", "content": "x" * (5 << 20)}]),
        413,
        "request_too_large",
    ),
]


@pytest.mark.parametrize(
    ("name", "method", "target", "payload", "status", "code"), CASES, ids=[c[0] for c in CASES]
)
def test_refused_never_forwarded_and_logged(
    gateway: Fresh,
    name: str,
    method: str,
    target: str,
    payload: bytes | None,
    status: int,
    code: str,
) -> None:
    key = gateway.key("alice@lab")
    got, answer = send(gateway, method, target, payload, key=key)
    assert (got, answer["error"]["code"]) == (status, code), answer
    assert set(answer["error"]) == {"message", "type", "param", "code"}
    assert gateway.received() == []
    [call] = gateway.calls()
    assert call.body["outcome"] == "denied" and call.body["status"] == status
    assert call.principal == "alice@lab"


def test_oversized_chunked_body_is_refused(gateway: Fresh) -> None:
    key = gateway.key("alice@lab")
    chunk = b"x" * (1 << 20)
    chunked = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(5)) + b"0\r\n\r\n"
    got, answer = send(
        gateway,
        "POST",
        "/v1/chat/completions",
        chunked,
        key=key,
        headers={"transfer-encoding": "chunked"},
    )
    assert (got, answer["error"]["code"]) == (413, "request_too_large")
    assert gateway.received() == []


def test_duplicate_model_keys_cannot_split_check_and_use(gateway: Fresh) -> None:
    """The upstream parses exactly the object custodes checked: the body is re-serialised, so a
    parser that keeps the first of two "model" keys cannot be steered to another model."""
    key = gateway.key("alice@lab")
    payload = (
        b'{"model": "' + DENIED_MODEL.encode() + b'", "model": "frontier-general", '
        b'"messages": [{"role": "user", "content": "hi"}]}'
    )
    got, _ = send(gateway, "POST", "/v1/chat/completions", payload, key=key)
    assert got == 200
    [received] = gateway.received()
    assert received.body["model"] == "test-model"  # frontier-general's upstream name


@pytest.mark.parametrize(
    "authorization", [None, "Bearer nope", "Basic abc", "Bearer cust_000000000000_" + "A" * 43]
)
def test_without_a_valid_key_nothing_is_forwarded(
    gateway: Fresh, authorization: str | None
) -> None:
    headers = {"authorization": authorization} if authorization else {}
    got, answer = send(gateway, "POST", "/v1/chat/completions", body(), key=None, headers=headers)
    assert (got, answer["error"]["code"], answer["error"]["type"]) == (
        401,
        "invalid_api_key",
        "invalid_request_error",
    )
    assert gateway.received() == []
    [call] = gateway.calls()
    assert call.principal == "anonymous" and call.body["outcome"] == "denied"


def test_other_api_routes_are_untouched(gateway: Fresh) -> None:
    got, answer = send(gateway, "GET", "/healthz", None, key=None)
    assert got == 200 and answer["status"] == "ok"
    assert gateway.calls() == []
