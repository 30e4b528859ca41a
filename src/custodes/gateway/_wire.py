"""The OpenAI wire format at the gateway's edge: request checks, text for monitors, errors.

Errors use OpenAI's shape so its clients parse them::

    {"error": {"message": "...", "type": "invalid_request_error", "param": null, "code": "..."}}
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from custodes.bounds import check_json_bounds
from custodes.errors import (
    Error,
    InputError,
    LogWriteError,
    NotFoundError,
    PolicyDenied,
    TooLarge,
    UpstreamError,
)
from custodes.gateway._entries import MonitorVerdict

__all__ = [
    "AuthenticationFailed",
    "ChatRequest",
    "EmbeddingsRequest",
    "MonitorBlocked",
    "Refused",
    "openai_error",
    "parse_chat",
    "parse_embeddings",
    "response_text",
    "stream_delta_text",
]

# Fields other OpenAI-compatible servers read to pick a model or deployment. The model comes
# only from "model" (LiteLLM #41467: a body "model_id" that the allowlist never saw).
_MODEL_SELECTORS = ("model_id", "deployment_id", "deployment", "engine", "engine_id")


class Refused(InputError):
    """A request the gateway refuses before it reaches a model.

    Attributes:
        status: the HTTP status.
        code: OpenAI-style error code.
        openai_type: OpenAI's error ``type``.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int = 400,
        code: str = "invalid_request",
        openai_type: str = "invalid_request_error",
        where: str | None = None,
        expected: str | None = None,
        actual: str | None = None,
    ) -> None:
        super().__init__(message, where=where, expected=expected, actual=actual)
        self.status = status
        self.code = code
        self.openai_type = openai_type


class AuthenticationFailed(Refused):
    def __init__(self, message: str) -> None:
        super().__init__(message, status=401, code="invalid_api_key")


class MonitorBlocked(Refused):
    """A gating monitor stopped the call; ``verdicts`` are every monitor's, for the log."""

    def __init__(self, monitor: str, phase: str, verdicts: Sequence[MonitorVerdict] = ()) -> None:
        what = "prompt" if phase == "prompt" else "response"
        super().__init__(
            f"the {what} was blocked by the gating monitor {monitor!r}",
            status=400,
            code="content_policy_violation",
            where=phase,
        )
        self.monitor = monitor
        self.verdicts = list(verdicts)


def openai_error(exc: Error) -> tuple[int, dict[str, Any]]:
    """The status and OpenAI-shaped body for a custodes error."""
    param: str | None = None
    if isinstance(exc, Refused):
        status, kind, code = exc.status, exc.openai_type, exc.code
        param = exc.where
    elif isinstance(exc, PolicyDenied):
        status, kind, code = 403, "permission_error", "policy_denied"
    elif isinstance(exc, NotFoundError):
        status, kind, code = 404, "invalid_request_error", exc.code
        param = exc.where
    elif isinstance(exc, InputError):
        status, kind, code = 400, "invalid_request_error", exc.code
        param = exc.where
    elif isinstance(exc, UpstreamError):
        status, kind, code = exc.status, "api_error", exc.code
    elif isinstance(exc, LogWriteError):
        status, kind, code = 503, "api_error", exc.code
    else:
        status, kind, code = (exc.status if exc.status >= 400 else 500), "api_error", exc.code
    message = exc.message
    if isinstance(exc, InputError) and (exc.expected or exc.actual):
        extra = [
            f"expected {exc.expected}" if exc.expected else "",
            f"got {exc.actual}" if exc.actual else "",
        ]
        message += " (" + ", ".join(e for e in extra if e) + ")"
    if isinstance(exc, PolicyDenied) and exc.reasons:
        message += ": " + "; ".join(f"{r.rule}: {r.missing}" for r in exc.reasons)
    return status, {"error": {"message": message, "type": kind, "param": param, "code": code}}


def _decode(body: bytes) -> dict[str, Any]:
    """A request body as the JSON object the gateway checks and forwards: valid JSON,
    bounded in depth and integer range, an object, naming its model by ``model`` only.

    Raises:
        Refused: any of these does not hold (400, with an OpenAI-style error code).
    """
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise Refused(
            f"the request body is not valid JSON: {exc}",
            code="invalid_json",
            where="body",
            expected="a JSON object",
        ) from exc
    try:
        check_json_bounds(data, where="body", whole_floats=True)
    except TooLarge as exc:
        # Deeper than anything OpenAI's API takes, and deeper than the upstream's encoder
        # (orjson stops at 254 levels) or RFC 8785 code should ever be handed.
        raise Refused(
            exc.message, code="nesting_too_deep", where="body", expected=exc.expected
        ) from exc
    except InputError as exc:
        raise Refused(
            exc.message,
            code="integer_out_of_range",
            where="body",
            expected=exc.expected,
            actual=exc.actual,
        ) from exc
    if not isinstance(data, dict):
        raise Refused(
            "the request body must be a JSON object",
            code="invalid_json",
            where="body",
            expected="a JSON object",
            actual=type(data).__name__,
        )
    # Another field that names a model (as some OpenAI-compatible servers read one) could make
    # the upstream serve a model other than the one the grant was checked for.
    for field in _MODEL_SELECTORS:
        if field in data:
            raise Refused(
                f"the field {field!r} is not accepted; the model is named only by 'model'",
                code="unsupported_parameter",
                where=field,
            )
    model = data.get("model")
    if not isinstance(model, str) or not model:
        raise Refused(
            "'model' is required",
            code="missing_model",
            where="model",
            expected="a model name (see GET /v1/models)",
            actual=repr(model) if "model" in data else "nothing",
        )
    return data


@dataclass(frozen=True)
class ChatRequest:
    data: dict[str, Any]
    model: str
    stream: bool

    def prompt_text(self) -> str:
        return "\n".join(_message_texts(self.data.get("messages") or []))


@dataclass(frozen=True)
class EmbeddingsRequest:
    data: dict[str, Any]
    model: str

    def prompt_text(self) -> str:
        inputs = self.data["input"]
        return "\n".join(inputs) if isinstance(inputs, list) else str(inputs)


def parse_chat(body: bytes) -> ChatRequest:
    """Check a chat-completions body.

    Raises:
        Refused: it is not a JSON object with a model and a non-empty list of messages.
    """
    data = _decode(body)
    messages = data.get("messages")
    if not isinstance(messages, list) or not messages:
        raise Refused(
            "'messages' must be a non-empty list",
            code="invalid_messages",
            where="messages",
            expected="a non-empty list of messages",
        )
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            raise Refused(
                "each message must be an object with a 'role'",
                code="invalid_messages",
                where=f"messages[{i}]",
            )
    stream = data.get("stream", False)
    if stream is not None and not isinstance(stream, bool):
        raise Refused("'stream' must be a boolean", where="stream", actual=repr(stream))
    return ChatRequest(data, data["model"], bool(stream))


def parse_embeddings(body: bytes) -> EmbeddingsRequest:
    """Check an embeddings body.

    Raises:
        Refused: no model, or ``input`` is not text (token ids are refused: monitors read text).
    """
    data = _decode(body)
    inputs = data.get("input")
    ok = isinstance(inputs, str) or (
        isinstance(inputs, list) and inputs and all(isinstance(x, str) for x in inputs)
    )
    if not ok:
        raise Refused(
            "'input' must be a string or a non-empty list of strings; token-id "
            "input is not accepted because monitors read text",
            code="invalid_input",
            where="input",
        )
    return EmbeddingsRequest(data, data["model"])


def _content_texts(content: Any) -> Iterator[str]:
    if isinstance(content, str):
        yield content
    elif isinstance(content, list):
        for part in content:
            if isinstance(part, dict) and isinstance(part.get("text"), str):
                yield part["text"]


def _message_texts(messages: list[Any]) -> Iterator[str]:
    for message in messages:
        if not isinstance(message, dict):
            continue
        yield from _content_texts(message.get("content"))
        for call in message.get("tool_calls") or []:
            if isinstance(call, dict) and isinstance(call.get("function"), dict):
                yield str(call["function"].get("arguments", ""))


def response_text(data: Any) -> str:
    """The text a (non-streamed) chat completion hands back, tool call arguments included."""
    if not isinstance(data, dict):
        return ""
    parts: list[str] = []
    for choice in data.get("choices") or []:
        if isinstance(choice, dict) and isinstance(choice.get("message"), dict):
            message = choice["message"]
            parts.extend(_content_texts(message.get("content")))
            if isinstance(message.get("refusal"), str):
                parts.append(message["refusal"])
            parts.extend(_message_texts([{"tool_calls": message.get("tool_calls")}]))
    return "\n".join(parts)


def stream_delta_text(chunk: Any) -> str:
    """The text one streamed chunk adds (content and tool call argument pieces)."""
    if not isinstance(chunk, dict):
        return ""
    parts: list[str] = []
    for choice in chunk.get("choices") or []:
        delta = choice.get("delta") if isinstance(choice, dict) else None
        if not isinstance(delta, dict):
            continue
        parts.extend(_content_texts(delta.get("content")))
        for call in delta.get("tool_calls") or []:
            if isinstance(call, dict) and isinstance(call.get("function"), dict):
                parts.append(str(call["function"].get("arguments") or ""))
    return "".join(parts)
