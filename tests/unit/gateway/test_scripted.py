"""The scripted upstream: canned replies in OpenAI's format, labelled as not a model."""

from __future__ import annotations

import asyncio
from pathlib import Path

import orjson
import pytest

from custodes.errors import ConfigError
from custodes.gateway import ModelRoute, ScriptedUpstream, read_script

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "scripted-replies.yaml"


def route(path: Path = EXAMPLE) -> ModelRoute:
    return ModelRoute(
        name="demo",
        capability="general",
        upstream_model="demo",
        base_url=None,
        api_key=None,
        timeout_s=5,
        scripted_file=path,
        owned_by="custodes",
    )


def chat(text: str, **extra: object) -> bytes:
    return orjson.dumps({"model": "demo", "messages": [{"role": "user", "content": text}], **extra})


def test_example_replies_file_is_valid() -> None:
    script = read_script(EXAMPLE)
    assert script.replies and "not a model" in script.replies[1].content  # type: ignore[operator]


def test_plain_reply_and_tool_call() -> None:
    upstream = ScriptedUpstream()
    reply = asyncio.run(upstream.send(route(), "chat/completions", chat("Hello"), stream=False))
    data = orjson.loads(reply.body)
    assert data["system_fingerprint"] == "custodes-scripted:not-a-model"
    assert data["model"] == "scripted:demo"
    assert "not a model" in data["choices"][0]["message"]["content"]
    reply = asyncio.run(upstream.send(route(), "chat/completions", chat("weather?"), stream=False))
    call = orjson.loads(reply.body)["choices"][0]["message"]["tool_calls"][0]
    assert call["function"]["name"] == "get_weather"
    assert orjson.loads(call["function"]["arguments"]) == {"city": "Geneva", "unit": "celsius"}


def test_stream_reassembles_to_the_same_reply() -> None:
    async def collect() -> list[bytes]:
        reply = await ScriptedUpstream().send(
            route(),
            "chat/completions",
            chat("weather", stream_options={"include_usage": True}),
            stream=True,
        )
        assert reply.chunks is not None
        return [c async for c in reply.chunks]

    events = asyncio.run(collect())
    assert events[-1] == b"data: [DONE]\n\n"
    chunks = [orjson.loads(e[6:]) for e in events[:-1]]
    arguments = "".join(
        tc["function"].get("arguments", "")
        for c in chunks
        for ch in c["choices"]
        for tc in ch["delta"].get("tool_calls", [])
    )
    assert orjson.loads(arguments) == {"city": "Geneva", "unit": "celsius"}
    assert chunks[-1]["usage"]["total_tokens"] > 0


def test_embeddings_are_deterministic() -> None:
    upstream = ScriptedUpstream()
    body = orjson.dumps({"model": "demo", "input": ["a", "b"]})
    first = orjson.loads(asyncio.run(upstream.send(route(), "embeddings", body, stream=False)).body)
    again = orjson.loads(asyncio.run(upstream.send(route(), "embeddings", body, stream=False)).body)
    assert first == again and len(first["data"][0]["embedding"]) == 16
    assert first["data"][0]["embedding"] != first["data"][1]["embedding"]


def test_malformed_replies_file(tmp_path: Path) -> None:
    bad = tmp_path / "r.yaml"
    bad.write_text("replies:\n  - content: no when\n")
    with pytest.raises(ConfigError, match="invalid scripted replies"):
        read_script(bad)
    with pytest.raises(ConfigError, match="cannot read"):
        read_script(tmp_path / "missing.yaml")
