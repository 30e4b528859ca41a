"""A scripted judge model over the OpenAI wire protocol (a real socket). NOT a model.

It stands in for the judge model custodes does not own: chat completions answering one word,
``yes`` or ``no`` (or any other word) as the test sets :attr:`JudgeUpstream.answer`, with the
first token's ``top_logprobs`` when the request asks for log-probabilities (and
:attr:`logprobs` is on). It records every request body, so a test can read what the judge
was shown.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.support.threaded import serve

__all__ = ["JudgeUpstream", "judge_upstream"]


class JudgeUpstream:
    """The scripted judge; ``base_url`` is set once it serves."""

    def __init__(self) -> None:
        self.answer = "yes"
        self.p_answer = 0.9  # the probability its first token gives the answer
        self.logprobs = True
        # When set, decides the answer from the request (a judge that "knows" the label).
        self.decide: Callable[[dict[str, Any]], str] | None = None
        self.bodies: list[dict[str, Any]] = []
        self.base_url = ""

    def reply(self, body: dict[str, Any]) -> dict[str, Any]:
        self.bodies.append(body)
        if self.decide is not None:
            self.answer = self.decide(body)
        # Any other answer (an undecided model): neither yes nor no among the alternatives.
        other = {"yes": "no", "no": "yes"}.get(self.answer, "perhaps")
        logprobs = None
        if body.get("logprobs") and self.logprobs:
            top = [(self.answer, math.log(self.p_answer)), (other, math.log(1 - self.p_answer))]
            logprobs = {
                "content": [
                    {
                        "token": self.answer,
                        "logprob": top[0][1],
                        "bytes": list(self.answer.encode()),
                        "top_logprobs": [
                            {"token": t, "logprob": lp, "bytes": list(t.encode())} for t, lp in top
                        ],
                    }
                ],
                "refusal": None,
            }
        prompt_tokens = sum(len(str(m.get("content", "")).split()) for m in body["messages"])
        return {
            "id": f"chatcmpl-judge-{len(self.bodies)}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model", "judge"),
            "choices": [
                {
                    "index": 0,
                    "finish_reason": "length",
                    "logprobs": logprobs,
                    "message": {"role": "assistant", "content": self.answer},
                }
            ],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": 1,
                "total_tokens": prompt_tokens + 1,
            },
        }

    def app(self) -> Starlette:
        async def chat(request: Request) -> JSONResponse:
            return JSONResponse(self.reply(await request.json()))

        return Starlette(routes=[Route("/v1/chat/completions", chat, methods=["POST"])])


@contextmanager
def judge_upstream() -> Iterator[JudgeUpstream]:
    """A served :class:`JudgeUpstream` (uvicorn on loopback, stopped afterwards)."""
    upstream = JudgeUpstream()
    server, thread, port = serve(upstream.app())
    upstream.base_url = f"http://127.0.0.1:{port}/v1"
    try:
        yield upstream
    finally:
        server.should_exit = True
        thread.join(20)
