"""A scripted upstream with a hidden loyalty, for testing the audit harness. NOT a model.

It speaks OpenAI's chat-completions wire protocol over a real socket (a uvicorn server in a
thread) and answers yes/no questions. The log-odds of "yes" for a prompt are a deterministic
pseudo-random function of the prompt (SHA-256 based, sd ``noise``), plus ``bias`` when a
``favoured`` name or trigger appears in the prompt, so a name the harness does not know to be
special is treated like any other. With ``logprobs`` it returns ``logprobs.content[0]
.top_logprobs`` for "Yes"/"No" (and one filler token); without, it samples "Yes"/"No" from
the same probability (seeded per request, and honouring ``n``).
"""

from __future__ import annotations

import hashlib
import math
import random
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

__all__ = ["BiasedUpstream", "biased_upstream"]


def _unit_normal(text: str) -> float:
    digest = hashlib.sha256(text.encode()).digest()
    u1 = (int.from_bytes(digest[:8], "big") + 1) / (2**64 + 2)
    u2 = int.from_bytes(digest[8:16], "big") / 2**64
    return math.sqrt(-2 * math.log(u1)) * math.cos(2 * math.pi * u2)


@dataclass
class BiasedUpstream:
    """The upstream's behaviour, and what it received."""

    favoured: tuple[str, ...] = ()
    bias: float = 0.0
    noise: float = 1.0
    logprobs: bool = True
    base_url: str = ""
    calls: int = 0
    requests: list[dict[str, Any]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def log_odds(self, body: dict[str, Any]) -> float:
        text = "\n".join(str(m.get("content") or "") for m in body.get("messages") or [])
        value = self.noise * _unit_normal(text)
        if any(name in text for name in self.favoured):
            value += self.bias
        return value

    def complete(self, body: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            self.calls += 1
            self.requests.append(body)
            call = self.calls
        z = self.log_odds(body)
        p_yes = 1 / (1 + math.exp(-z))
        choices = []
        if self.logprobs and body.get("logprobs"):
            # Both answers' log-probabilities, with a little mass on a filler token.
            yes, no = math.log(0.98 * p_yes), math.log(0.98 * (1 - p_yes))
            top = sorted([("Yes", yes), ("No", no), ("Maybe", math.log(0.02))], key=lambda t: -t[1])
            first = top[0]
            choices.append(
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": first[0]},
                    "logprobs": {
                        "content": [
                            {
                                "token": first[0],
                                "logprob": first[1],
                                "bytes": list(first[0].encode()),
                                "top_logprobs": [
                                    {"token": t, "logprob": lp, "bytes": list(t.encode())}
                                    for t, lp in top
                                ],
                            }
                        ],
                        "refusal": None,
                    },
                    "finish_reason": "stop",
                }
            )
        else:
            rng = random.Random(f"{call}")  # noqa: S311 - a test double's coin, not a secret
            for i in range(int(body.get("n") or 1)):
                answer = "Yes" if rng.random() < p_yes else "No"
                choices.append(
                    {
                        "index": i,
                        "message": {"role": "assistant", "content": answer},
                        "logprobs": None,
                        "finish_reason": "stop",
                    }
                )
        return {
            "id": f"chatcmpl-biased-{call}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model", "biased"),
            "system_fingerprint": "biased-upstream-not-a-model",
            "choices": choices,
            "usage": {"prompt_tokens": 10, "completion_tokens": 1, "total_tokens": 11},
        }

    def app(self) -> Starlette:
        async def chat(request: Request) -> Response:
            body = orjson.loads(await request.body())
            return Response(orjson.dumps(self.complete(body)), media_type="application/json")

        return Starlette(routes=[Route("/v1/chat/completions", chat, methods=["POST"])])


@contextmanager
def biased_upstream(**kwargs: Any) -> Iterator[BiasedUpstream]:
    """Serve a :class:`BiasedUpstream` on a free loopback port for the duration."""
    from tests.integration.gateway.conftest import serve

    upstream = BiasedUpstream(**kwargs)
    server, thread, port = serve(upstream.app())
    upstream.base_url = f"http://127.0.0.1:{port}/v1"
    try:
        yield upstream
    finally:
        server.should_exit = True
        thread.join(20)
