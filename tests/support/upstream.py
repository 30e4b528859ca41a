"""A test upstream that speaks the OpenAI wire protocol over a real socket. NOT a model.

It stands in for what custodes does not own (a model server): chat completions, plain and
streamed as server-sent events, with tool calls; embeddings; the model list; and OpenAI-shaped
errors. It records every request it receives, so tests can assert that a refused request never
reached it. Triggers in the last user message:

- ``weather`` with ``tools`` in the request: a call to the first tool, arguments ``{"city": ...}``
- ``secret``: a reply that says ``the launch code is 0000`` halfway through (for stream cuts)
- ``UPSTREAM_500`` / ``UPSTREAM_429``: an OpenAI-shaped error with that status
- ``SLOW_START``: the answer starts after one second (for clients that leave before it)
- ``SLOW_WORDS``: a streamed answer sends a word every 0.2 s (for clients that leave mid-way)
- anything else: ``echo: <the message>``

Run it with :class:`TestUpstream` (a uvicorn server in a thread) or as a process:
``python -m tests.support.upstream PORT``.
"""

from __future__ import annotations

import asyncio
import hashlib
import socket
import struct
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

__all__ = ["Received", "TestUpstream", "create_upstream_app"]

SECRET_REPLY = (
    "Here is what you asked for. Be careful: the launch code is 0000 and "
    "nobody else should know it."
)


@dataclass(frozen=True)
class Received:
    path: str
    authorization: str | None
    body: dict[str, Any]


def _last_user(body: dict[str, Any]) -> str:
    for message in reversed(body.get("messages") or []):
        if message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, list):
                return " ".join(p.get("text", "") for p in content if isinstance(p, dict))
            return str(content or "")
    return ""


def _error(status: int, message: str, kind: str, code: str | None) -> Response:
    return Response(
        orjson.dumps({"error": {"message": message, "type": kind, "param": None, "code": code}}),
        status_code=status,
        media_type="application/json",
    )


def _usage(body: dict[str, Any], text: str) -> dict[str, int]:
    prompt = sum(len(str(m.get("content") or "").split()) for m in body.get("messages") or [])
    completion = max(1, len(text.split()))
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


def create_upstream_app(
    received: list[Received] | None = None, api_key: str | None = None
) -> Starlette:
    """The upstream's ASGI app; ``received`` collects requests; ``api_key`` is required if set."""
    counter = iter(range(1, 1 << 62))

    def check(request: Request) -> Response | None:
        if api_key is not None and request.headers.get("authorization") != f"Bearer {api_key}":
            return _error(
                401, "Incorrect API key provided.", "invalid_request_error", "invalid_api_key"
            )
        return None

    async def chat(request: Request) -> Response:
        raw = await request.body()
        body = orjson.loads(raw)
        if received is not None:
            received.append(
                Received("/v1/chat/completions", request.headers.get("authorization"), body)
            )
        if (refused := check(request)) is not None:
            return refused
        text = _last_user(body)
        if "SLOW_START" in text:
            await asyncio.sleep(1.0)
        if "UPSTREAM_500" in text:
            return _error(
                500, "The server had an error while processing your request.", "server_error", None
            )
        if "UPSTREAM_429" in text:
            return _error(429, "Rate limit reached.", "requests", "rate_limit_exceeded")
        n = next(counter)
        tool_call = None
        if body.get("tools") and "weather" in text.lower():
            name = body["tools"][0]["function"]["name"]
            tool_call = {
                "id": f"call_{n}",
                "type": "function",
                "function": {"name": name, "arguments": '{"city": "Paris"}'},
            }
            content = None
        elif "secret" in text.lower():
            content = SECRET_REPLY
        else:
            content = f"echo: {text}"
        base = {
            "id": f"chatcmpl-test-{n}",
            "created": int(time.time()),
            "model": body["model"],
            "system_fingerprint": "test-upstream-not-a-model",
        }
        usage = _usage(body, content or "")
        if not body.get("stream"):
            message: dict[str, Any] = {"role": "assistant", "content": content}
            if tool_call:
                message["tool_calls"] = [tool_call]
            return Response(
                orjson.dumps(
                    {
                        **base,
                        "object": "chat.completion",
                        "choices": [
                            {
                                "index": 0,
                                "message": message,
                                "logprobs": None,
                                "finish_reason": "tool_calls" if tool_call else "stop",
                            }
                        ],
                        "usage": usage,
                    }
                ),
                media_type="application/json",
            )
        return StreamingResponse(
            _events(base, content, tool_call, usage, body), media_type="text/event-stream"
        )

    async def embeddings(request: Request) -> Response:
        body = orjson.loads(await request.body())
        if received is not None:
            received.append(Received("/v1/embeddings", request.headers.get("authorization"), body))
        if (refused := check(request)) is not None:
            return refused
        inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
        data = []
        for i, text in enumerate(inputs):
            digest = hashlib.sha256(str(text).encode()).digest()
            data.append(
                {
                    "object": "embedding",
                    "index": i,
                    "embedding": [v / 255 for v in struct.unpack("8B", digest[:8])],
                }
            )
        tokens = sum(len(str(t).split()) for t in inputs)
        return Response(
            orjson.dumps(
                {
                    "object": "list",
                    "data": data,
                    "model": body["model"],
                    "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
                }
            ),
            media_type="application/json",
        )

    async def models(request: Request) -> Response:
        if (refused := check(request)) is not None:
            return refused
        return Response(
            orjson.dumps(
                {
                    "object": "list",
                    "data": [
                        {"id": "test-model", "object": "model", "created": 0, "owned_by": "test"}
                    ],
                }
            ),
            media_type="application/json",
        )

    return Starlette(
        routes=[
            Route("/v1/chat/completions", chat, methods=["POST"]),
            Route("/v1/embeddings", embeddings, methods=["POST"]),
            Route("/v1/models", models, methods=["GET"]),
        ]
    )


async def _events(
    base: dict[str, Any],
    content: str | None,
    tool_call: dict[str, Any] | None,
    usage: dict[str, int],
    body: dict[str, Any],
) -> AsyncIterator[bytes]:
    def event(delta: dict[str, Any], finish: str | None = None) -> bytes:
        chunk = {
            **base,
            "object": "chat.completion.chunk",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }
        return b"data: " + orjson.dumps(chunk) + b"\n\n"

    yield event({"role": "assistant", "content": ""})
    if content:
        pause = 0.2 if "SLOW_WORDS" in content else 0
        for word in content.split(" "):
            yield event({"content": word + " "})
            await asyncio.sleep(pause)
    if tool_call:
        yield event(
            {
                "tool_calls": [
                    {
                        "index": 0,
                        "id": tool_call["id"],
                        "type": "function",
                        "function": {"name": tool_call["function"]["name"], "arguments": ""},
                    }
                ]
            }
        )
        arguments = tool_call["function"]["arguments"]
        for start in range(0, len(arguments), 5):
            yield event(
                {
                    "tool_calls": [
                        {"index": 0, "function": {"arguments": arguments[start : start + 5]}}
                    ]
                }
            )
    yield event({}, "tool_calls" if tool_call else "stop")
    if (body.get("stream_options") or {}).get("include_usage"):
        yield (
            b"data: "
            + orjson.dumps(
                {**base, "object": "chat.completion.chunk", "choices": [], "usage": usage}
            )
            + b"\n\n"
        )
    yield b"data: [DONE]\n\n"


@dataclass
class TestUpstream:
    """The test upstream served by uvicorn in a background thread on a loopback port."""

    __test__ = False  # not a pytest test class

    api_key: str | None = None
    received: list[Received] = field(default_factory=list)
    port: int = 0
    _server: uvicorn.Server | None = None
    _thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> TestUpstream:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            create_upstream_app(self.received, self.api_key),
            log_level="warning",
            access_log=False,
            lifespan="off",
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, daemon=True, name="test-upstream"
        )
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("the test upstream did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(10)

    def __enter__(self) -> TestUpstream:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def paths(self) -> Iterator[str]:
        return (r.path for r in self.received)


if __name__ == "__main__":
    uvicorn.run(
        create_upstream_app(),
        host="127.0.0.1",
        port=int(sys.argv[1]),
        log_level="warning",
        access_log=False,
        lifespan="off",
    )
