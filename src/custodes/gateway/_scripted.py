"""The ``scripted`` upstream: replies from a file of canned responses. It is NOT a model.

It lets the demo and the tests run the whole gateway with no model (as inspect_ai ships
``mockllm``). Every reply says what it is: ``system_fingerprint`` is ``"custodes-scripted:
not-a-model"`` and the ``model`` field is prefixed ``scripted:``. The replies file::

    replies:
      - when: weather                # a case-insensitive substring of the last user message
        tool_calls:
          - name: get_weather
            arguments: {city: Paris}
      - when: hello
        content: Hello from the scripted upstream (not a model).
    default: I am custodes' scripted upstream, not a model.

Token counts are whitespace-separated words, not a tokenizer's count.
"""

from __future__ import annotations

import hashlib
import itertools
import struct
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from custodes.errors import ConfigError
from custodes.gateway._models import ModelRoute
from custodes.gateway._upstream import Operation, UpstreamReply

__all__ = ["ScriptedUpstream", "read_script"]

FINGERPRINT = "custodes-scripted:not-a-model"
_ids = itertools.count(1)


class _ToolCall(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str
    arguments: dict[str, Any] = Field(default_factory=dict)


class _Reply(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    when: str = Field(min_length=1)
    content: str | None = None
    tool_calls: list[_ToolCall] = Field(default_factory=list)


class Script(BaseModel):
    """A parsed replies file."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    replies: list[_Reply] = Field(default_factory=list)
    default: str = "I am custodes' scripted upstream, not a model."
    embedding_dimensions: int = Field(default=16, ge=1, le=4096)


def read_script(path: Path) -> Script:
    """Read a replies file.

    Raises:
        ConfigError: it is missing or malformed.
    """
    try:
        return Script.model_validate(yaml.safe_load(path.read_text()))
    except OSError as exc:
        raise ConfigError(f"cannot read the scripted replies file {path}: {exc.strerror}") from exc
    except (yaml.YAMLError, ValidationError) as exc:
        raise ConfigError(f"{path}: invalid scripted replies file: {exc}") from exc


class ScriptedUpstream:
    """Answers chat completions and embeddings from :class:`Script` files, one per model."""

    def __init__(self) -> None:
        self._scripts: dict[Path, Script] = {}

    def _script(self, route: ModelRoute) -> Script:
        """The route's script, read at its first use and kept."""
        assert route.scripted_file is not None
        script = self._scripts.get(route.scripted_file)
        if script is None:
            script = self._scripts[route.scripted_file] = read_script(route.scripted_file)
        return script

    async def aclose(self) -> None:
        """Nothing to close: the scripts are files read once."""

    async def send(
        self, route: ModelRoute, operation: Operation, body: bytes, *, stream: bool
    ) -> UpstreamReply:
        """Answer as an OpenAI-compatible upstream would: an embedding, or the scripted reply
        to the last user message, whole or as server-sent events."""
        script = self._script(route)
        request = orjson.loads(body)
        if operation == "embeddings":
            return UpstreamReply(
                200,
                "application/json",
                body=orjson.dumps(_embeddings(request, route, script.embedding_dimensions)),
            )
        reply = _choose(script, request)
        if stream:
            return UpstreamReply(
                200, "text/event-stream", chunks=_stream(reply, script, route, request)
            )
        return UpstreamReply(
            200, "application/json", body=orjson.dumps(_completion(reply, script, route, request))
        )


def _last_user_text(request: dict[str, Any]) -> str:
    """The text of the last user message (its text parts joined, for a content list)."""
    for message in reversed(request.get("messages") or []):
        if isinstance(message, dict) and message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, str):
                return content
            if isinstance(content, list):
                return " ".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


def _choose(script: Script, request: dict[str, Any]) -> _Reply:
    """The first reply whose ``when`` occurs in the last user message (case folded), else
    the script's default."""
    text = _last_user_text(request).lower()
    for reply in script.replies:
        if reply.when.lower() in text:
            return reply
    return _Reply(when="*", content=script.default)


def _words(text: str) -> int:
    return len(text.split())


def _usage(request: dict[str, Any], reply: _Reply) -> dict[str, int]:
    """OpenAI-style token counts, approximated by words (and by 4 bytes of tool arguments a
    token): a scripted model has no tokenizer, and usage rules need some count."""
    prompt = sum(
        _words(m.get("content") or "")
        for m in request.get("messages") or []
        if isinstance(m, dict) and isinstance(m.get("content"), str)
    )
    completion = _words(reply.content or "") + sum(
        len(orjson.dumps(t.arguments)) // 4 + 1 for t in reply.tool_calls
    )
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


def _tool_calls(reply: _Reply, call_id: int) -> list[dict[str, Any]]:
    """The reply's tool calls in OpenAI's form (arguments as a JSON string)."""
    return [
        {
            "id": f"call_scripted_{call_id}_{i}",
            "type": "function",
            "function": {"name": t.name, "arguments": orjson.dumps(t.arguments).decode()},
        }
        for i, t in enumerate(reply.tool_calls)
    ]


def _completion(
    reply: _Reply, script: Script, route: ModelRoute, request: dict[str, Any]
) -> dict[str, Any]:
    """A whole ``chat.completion`` object of the reply."""
    call_id = next(_ids)
    message: dict[str, Any] = {"role": "assistant", "content": reply.content}
    if reply.tool_calls:
        message["tool_calls"] = _tool_calls(reply, call_id)
    return {
        "id": f"chatcmpl-scripted-{call_id}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": f"scripted:{route.upstream_model}",
        "system_fingerprint": FINGERPRINT,
        "choices": [
            {
                "index": 0,
                "message": message,
                "logprobs": None,
                "finish_reason": "tool_calls" if reply.tool_calls else "stop",
            }
        ],
        "usage": _usage(request, reply),
    }


async def _stream(
    reply: _Reply, script: Script, route: ModelRoute, request: dict[str, Any]
) -> AsyncIterator[bytes]:
    """The reply as OpenAI's stream of ``chat.completion.chunk`` events: the role, a word a
    chunk, each tool call's arguments in 8-character pieces, the finish reason, the usage
    chunk if ``stream_options.include_usage`` asked for it, then ``[DONE]``."""
    call_id = next(_ids)
    base = {
        "id": f"chatcmpl-scripted-{call_id}",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": f"scripted:{route.upstream_model}",
        "system_fingerprint": FINGERPRINT,
    }

    def event(delta: dict[str, Any], finish: str | None = None) -> bytes:
        chunk = {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
        return b"data: " + orjson.dumps(chunk) + b"\n\n"

    yield event({"role": "assistant", "content": ""})
    if reply.content:
        for word in reply.content.split(" "):
            yield event({"content": word + " "})
    for i, call in enumerate(_tool_calls(reply, call_id)):
        yield event(
            {
                "tool_calls": [
                    {
                        "index": i,
                        "id": call["id"],
                        "type": "function",
                        "function": {"name": call["function"]["name"], "arguments": ""},
                    }
                ]
            }
        )
        arguments = call["function"]["arguments"]
        for start in range(0, len(arguments), 8):
            yield event(
                {
                    "tool_calls": [
                        {"index": i, "function": {"arguments": arguments[start : start + 8]}}
                    ]
                }
            )
    yield event({}, "tool_calls" if reply.tool_calls else "stop")
    if (request.get("stream_options") or {}).get("include_usage"):
        yield (
            b"data: "
            + orjson.dumps({**base, "choices": [], "usage": _usage(request, reply)})
            + b"\n\n"
        )
    yield b"data: [DONE]\n\n"


def _embeddings(request: dict[str, Any], route: ModelRoute, dims: int) -> dict[str, Any]:
    """Deterministic embeddings: each input's vector of ``dims`` values in [-1, 1) drawn from
    SHA-256 of the input (the same input always gives the same vector)."""
    inputs = request.get("input")
    items = inputs if isinstance(inputs, list) else [inputs]
    data = []
    for i, item in enumerate(items):
        seed = hashlib.sha256(orjson.dumps(item)).digest()
        raw = b"".join(
            hashlib.sha256(seed + struct.pack(">I", n)).digest()
            for n in range((dims * 4 + 31) // 32)
        )
        vector = [v / 2**31 - 1.0 for v in struct.unpack(f">{dims}I", raw[: dims * 4])]
        data.append({"object": "embedding", "index": i, "embedding": vector})
    tokens = sum(
        _words(x) if isinstance(x, str) else len(x) for x in items if isinstance(x, str | list)
    )
    return {
        "object": "list",
        "data": data,
        "model": f"scripted:{route.upstream_model}",
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }
