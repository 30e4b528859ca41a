"""The ASGI middleware that puts the raw-path guard in front of FastAPI's router.

An exact gateway request line goes straight to the gateway's handler: :func:`answer_exact`
answers it before the app's middleware stack even starts (the server calls it first), and the
:class:`GatewayGuard` middleware does for any app that does not. The guard also starts the
gateway's background work once the app's startup has built the services, and stops it at
shutdown (ASGI lifespan), so nothing outlives the server.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from custodes.gateway._guard import ROUTES, classify

__all__ = ["GatewayGuard", "answer_exact"]

_log = logging.getLogger(__name__)


# The handler of each exact request line ``classify`` lets through (the routes in
# ``custodes.server.routes.gateway`` name the same handlers, for the API's description).
_HANDLERS: dict[bytes, str] = {
    b"/v1/chat/completions": "chat_completions",
    b"/v1/embeddings": "embeddings",
    b"/v1/models": "list_models",
}
assert _HANDLERS.keys() == ROUTES.keys()


def _gateway(scope: Scope) -> Any:
    context = getattr(scope["app"].state, "context", None)
    return context.services.get("gateway") if context is not None else None


async def answer_exact(app: Any, scope: Scope, receive: Receive, send: Send) -> bool:
    """Answer an exact gateway request line (a guard's "gateway" verdict) outright.

    For the server's outermost ``__call__``: every model call skips the app's middleware
    layers, each of which would only pass it on (a tenth of a call's time on the event loop).
    Returns False, having done nothing, for every other request; the app then handles it as
    usual (the :class:`GatewayGuard` in its stack refuses the ones the guard refuses). An
    unexpected exception before the response starts becomes the app's one JSON 500, as the
    app's error middleware would make it.
    """
    raw_path = scope.get("raw_path")
    if raw_path not in _HANDLERS or scope["type"] != "http":
        return False
    decision = classify(
        scope["method"].encode("latin-1"),
        raw_path,
        scope.get("query_string", b""),
        routed_path=scope["path"].encode("utf-8", "surrogateescape"),
    )
    context = getattr(app.state, "context", None)
    gateway = context.services.get("gateway") if context is not None else None
    if decision.verdict != "gateway" or gateway is None:
        return False
    scope["app"] = app
    started = False

    async def tracked(message: Message) -> None:
        nonlocal started
        started = True
        await send(message)

    try:
        await _serve(gateway, raw_path, scope, receive, tracked)
    except Exception:
        if started:
            raise  # too late for an error response: the server drops the connection
        _log.exception("unhandled error")
        await _plain(
            send,
            500,
            orjson.dumps(
                {
                    "error": {
                        "code": "internal_error",
                        "message": "internal error; see the server log",
                    }
                }
            ),
        )
    return True


class GatewayGuard:
    """Refuses non-canonical or unknown gateway requests before routing (see ``_guard``)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(scope, receive, send)
            return
        if scope["type"] != "http":
            if (
                scope["type"] == "websocket"
                and classify(
                    b"GET",
                    scope.get("raw_path") or scope["path"].encode(),
                    b"",
                    routed_path=scope["path"].encode(),
                ).verdict
                != "pass"
            ):
                await send({"type": "websocket.close", "code": 1008})
                return
            await self.app(scope, receive, send)
            return
        raw_path = scope.get("raw_path") or scope["path"].encode("utf-8")
        decision = classify(
            scope["method"].encode("latin-1"),
            raw_path,
            scope.get("query_string", b""),
            routed_path=scope["path"].encode("utf-8", "surrogateescape"),
        )
        if decision.verdict == "pass":
            await self.app(scope, receive, send)
            return
        gateway = _gateway(scope)
        if gateway is None:
            await _plain(
                send,
                503,
                b'{"error": {"message": "the gateway is not running", '
                b'"type": "api_error", "param": null, '
                b'"code": "gateway_unavailable"}}',
            )
            return
        if decision.verdict == "gateway":
            # An exact gateway request line (when answer_exact did not take it first): straight
            # to its handler, not through FastAPI's routing, dependency solving and per-route
            # middleware, which would only re-find the route the guard just matched byte for
            # byte. Unexpected exceptions still reach the app's error middleware.
            await _serve(gateway, raw_path, scope, receive, send)
            return
        response = await gateway.refuse_request(
            Request(scope, receive),
            decision.status,
            decision.code,
            decision.message,
            decision.param,
        )
        await response(scope, receive, send)

    async def _lifespan(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def wrapped_receive() -> Message:
            message = await receive()
            if message["type"] == "lifespan.shutdown":
                gateway = _gateway(scope)
                if gateway is not None:
                    await gateway.stop()
            return message

        await self.app(scope, wrapped_receive, send)


async def _serve(gateway: Any, raw_path: bytes, scope: Scope, receive: Receive, send: Send) -> None:
    """Answer an exact gateway request line with its handler."""
    await gateway.ensure_started()
    response = await gateway.serve(_HANDLERS[raw_path], Request(scope, receive))
    await response(scope, receive, send)


async def _plain(send: Send, status: int, body: bytes) -> None:
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
