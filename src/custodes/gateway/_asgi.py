"""The one way into the gateway: an ASGI wrapper in front of the whole app.

Every HTTP request line is classified by the raw-path guard (``_guard``) before anything
routes it. An exact gateway request line goes straight to the gateway's handler, before the
app's middleware stack even starts: each of its layers would only pass a model call on (a
tenth of a call's time on the event loop). A request line in the gateway's space that is not
exact is refused by the gateway (and logged as denied); everything else goes on to the app
untouched. No FastAPI route serves the gateway, so :data:`OPENAPI_PATHS` describes its three
routes for the API's description.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import orjson
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from custodes.gateway._guard import ROUTES, Decision, classify
from custodes.gateway._service import REQUEST_ID, Gateway

__all__ = ["OPENAPI_PATHS", "GatewayEntrance"]

_log = logging.getLogger(__name__)

# The handler of each exact request line ``classify`` lets through.
_HANDLERS: dict[bytes, str] = {
    b"/v1/chat/completions": "chat_completions",
    b"/v1/embeddings": "embeddings",
    b"/v1/models": "list_models",
}
assert _HANDLERS.keys() == ROUTES.keys()

_UNAVAILABLE = (
    b'{"error": {"message": "the gateway is not running", "type": "api_error", '
    b'"param": null, "code": "gateway_unavailable"}}'
)
_INTERNAL = orjson.dumps(
    {"error": {"code": "internal_error", "message": "internal error; see the server log"}}
)


class GatewayEntrance:
    """Guards the gateway's request space and serves its exact request lines.

    Args:
        app: the rest of the server, for every request that is not the gateway's.
        gateway: the running gateway, or None before the app has started (the gateway's
            requests are then answered 503).
    """

    def __init__(self, app: ASGIApp, gateway: Callable[[], Gateway | None]) -> None:
        self.app = app
        self.gateway = gateway

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Route one connection: a request in the gateway's space (judged on the raw request
        line, never on a router's normalised path) to the gateway, or refused; anything else
        to the app."""
        kind = scope["type"]
        if kind == "http":
            raw_path = scope.get("raw_path") or scope["path"].encode("utf-8")
            decision = classify(
                scope["method"].encode("latin-1"),
                raw_path,
                scope.get("query_string", b""),
                routed_path=scope["path"].encode("utf-8", "surrogateescape"),
            )
            if decision.verdict == "pass":
                await self.app(scope, receive, send)
            else:
                await self._answer(decision, raw_path, scope, receive, send)
            return
        if kind == "websocket":
            path = scope["path"].encode("utf-8", "surrogateescape")
            if classify(b"GET", scope.get("raw_path") or path, b"", routed_path=path).verdict != (
                "pass"
            ):
                # Nothing in the gateway's space speaks websockets: close with a policy
                # violation (RFC 6455 §7.4.1) before any route sees the handshake.
                await send({"type": "websocket.close", "code": 1008})
                return
        await self.app(scope, receive, send)

    async def _answer(
        self, decision: Decision, raw_path: bytes, scope: Scope, receive: Receive, send: Send
    ) -> None:
        """Answer a request in the gateway's space: served by its handler, or refused (and
        logged) as the raw-path guard decided; 503 before the gateway has started."""
        gateway = self.gateway()
        if gateway is None:
            await _plain(send, 503, _UNAVAILABLE)
            return
        started = False

        async def tracked(message: Message) -> None:
            nonlocal started
            started = True
            await send(message)

        try:
            await gateway.ensure_started()
            request = Request(scope, receive)
            if decision.verdict == "gateway":
                response = await gateway.serve(_HANDLERS[raw_path], request)
            else:
                response = await gateway.refuse_request(
                    request, decision.status, decision.code, decision.message, decision.param
                )
            await response(scope, receive, tracked)
        except Exception:
            if started:
                raise  # too late for an error response: the server drops the connection
            # This sits outside the app's error middleware, so it gives the app's one JSON 500.
            _log.exception("unhandled error")
            await _plain(send, 500, _INTERNAL)


async def _plain(send: Send, status: int, body: bytes) -> None:
    """Send a whole JSON response of ``status`` with ``body``."""
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def _operation(summary: str, *, body: bool) -> dict[str, Any]:
    """The OpenAPI description of one gateway route (no FastAPI route serves it, so the
    API's description is written here)."""
    operation: dict[str, Any] = {
        "tags": ["gateway"],
        "summary": summary,
        "description": "OpenAI-compatible; see docs/gateway.md. Authenticate with "
        "`Authorization: Bearer <custodes API key>`. Every answer carries the request id "
        f"(`{REQUEST_ID}`) and the log receipt of the call's `gateway.call/v1` entry.",
        "responses": {
            "200": {
                "description": "The model's answer (streamed as server-sent events "
                "when the request asks for `stream`)."
            },
            "default": {"description": "An error in OpenAI's error shape."},
        },
    }
    if body:
        operation["requestBody"] = {"required": True, "content": {"application/json": {}}}
    return operation


OPENAPI_PATHS: dict[str, dict[str, Any]] = {
    "/v1/chat/completions": {
        "post": _operation(
            "A chat completion, plain or streamed, under a covering grant", body=True
        )
    },
    "/v1/embeddings": {"post": _operation("Embeddings, under a covering grant", body=True)},
    "/v1/models": {
        "get": _operation("The models the caller holds an active grant for", body=False)
    },
}
