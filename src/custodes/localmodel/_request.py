"""What the local model's chat-completions endpoint accepts: the OpenAI request's fields it
uses, each bounded (a model server on loopback is still reached by whatever the gateway relays).
A field that would change what the reply means and that it does not honour (``stream: true``,
``tools``, ``response_format``, ``stop``, ...) is refused, never silently ignored; others that
only describe the caller (``user``, ``metadata``) are ignored, as OpenAI-compatible servers do."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["ChatMessage", "ChatRequest"]

# Fields that change the reply, which this server does not honour.
_UNHONOURED = frozenset(
    {
        "tools",
        "tool_choice",
        "functions",
        "function_call",
        "response_format",
        "stop",
        "logit_bias",
        "frequency_penalty",
        "presence_penalty",
        "top_p",
        "prediction",
        "audio",
        "modalities",
    }
)


class ChatMessage(BaseModel):
    """One message of the conversation."""

    model_config = ConfigDict(extra="ignore", frozen=True)  # e.g. "name", which it does not use

    role: Literal["system", "user", "assistant"]
    content: str = Field(default="", max_length=16_384)


class ChatRequest(BaseModel):
    """A chat completion request (OpenAI's fields this server honours)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    model: str = Field(default="smollm2", max_length=200)
    messages: list[ChatMessage] = Field(min_length=1, max_length=64)
    max_tokens: int = Field(default=16, ge=1, le=256)
    temperature: float = Field(default=0.0, ge=0.0, le=2.0)
    logprobs: bool = False
    top_logprobs: int = Field(default=0, ge=0, le=20)
    n: int = Field(default=1, ge=1, le=16)
    seed: int | None = None
    stream: Literal[False] = False  # replies are whole: one forward pass, or a short decode

    @model_validator(mode="before")
    @classmethod
    def _honoured(cls, data: Any) -> Any:
        if isinstance(data, dict):
            given = sorted(k for k, v in data.items() if k in _UNHONOURED and v is not None)
            if given:
                raise ValueError(
                    f"{', '.join(given)}: not supported by this local model server (it answers "
                    "plain chat completions, with first-token log-probabilities)"
                )
        return data
