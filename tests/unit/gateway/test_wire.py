"""Request checks and OpenAI's error shape."""

from __future__ import annotations

import json

import pytest

from custodes.errors import Denial, LogWriteError, NotFoundError, PolicyDenied, UpstreamError
from custodes.gateway import (
    AuthenticationFailed,
    MonitorBlocked,
    Refused,
    openai_error,
    parse_chat,
    parse_embeddings,
)
from custodes.gateway._wire import response_text, stream_delta_text


def chat(**fields: object) -> bytes:
    return json.dumps(
        {"model": "m", "messages": [{"role": "user", "content": "hi"}], **fields}
    ).encode()


def test_parse_chat_reads_model_stream_and_prompt_text() -> None:
    request = parse_chat(
        json.dumps(
            {
                "model": "m",
                "stream": True,
                "messages": [
                    {"role": "system", "content": "be brief"},
                    {
                        "role": "user",
                        "content": [
                            {"type": "text", "text": "part one"},
                            {"type": "image_url", "image_url": {"url": "x"}},
                        ],
                    },
                    {
                        "role": "assistant",
                        "content": None,
                        "tool_calls": [
                            {
                                "id": "1",
                                "type": "function",
                                "function": {"name": "f", "arguments": '{"q": "args"}'},
                            }
                        ],
                    },
                ],
            }
        ).encode()
    )
    assert request.model == "m" and request.stream is True
    assert request.prompt_text() == 'be brief\npart one\n{"q": "args"}'


@pytest.mark.parametrize(
    ("body", "code", "where"),
    [
        (b"not json", "invalid_json", "body"),
        (b"[1]", "invalid_json", "body"),
        (b'{"messages": []}', "missing_model", "model"),
        (chat(model=""), "missing_model", "model"),
        (chat(model=3), "missing_model", "model"),
        (chat(model_id="other"), "unsupported_parameter", "model_id"),
        (chat(engine="other"), "unsupported_parameter", "engine"),
        (chat(messages="hi"), "invalid_messages", "messages"),
        (chat(messages=[{"content": "no role"}]), "invalid_messages", "messages[0]"),
        (chat(stream="yes"), "invalid_request", "stream"),
    ],
)
def test_parse_chat_refusals(body: bytes, code: str, where: str) -> None:
    with pytest.raises(Refused) as refused:
        parse_chat(body)
    assert (refused.value.code, refused.value.where, refused.value.status) == (code, where, 400)


def test_embeddings_refuse_token_ids() -> None:
    assert parse_embeddings(b'{"model": "m", "input": ["a", "b"]}').prompt_text() == "a\nb"
    with pytest.raises(Refused, match="monitors read text"):
        parse_embeddings(b'{"model": "m", "input": [1, 2, 3]}')


@pytest.mark.parametrize(
    ("error", "status", "kind", "code"),
    [
        (AuthenticationFailed("no key"), 401, "invalid_request_error", "invalid_api_key"),
        (
            MonitorBlocked("rules", "prompt"),
            400,
            "invalid_request_error",
            "content_policy_violation",
        ),
        (
            Refused("big", status=413, code="request_too_large"),
            413,
            "invalid_request_error",
            "request_too_large",
        ),
        (
            PolicyDenied("no", reasons=[Denial("rule-a", "2 approvals")]),
            403,
            "permission_error",
            "policy_denied",
        ),
        (NotFoundError("gone", where="x"), 404, "invalid_request_error", "not_found"),
        (UpstreamError("down"), 502, "api_error", "upstream_error"),
        (LogWriteError("full"), 503, "api_error", "log_unavailable"),
    ],
)
def test_openai_error_shape(error: Exception, status: int, kind: str, code: str) -> None:
    got_status, body = openai_error(error)  # type: ignore[arg-type]
    assert got_status == status
    assert set(body) == {"error"} and set(body["error"]) == {"message", "type", "param", "code"}
    assert (body["error"]["type"], body["error"]["code"]) == (kind, code)


def test_policy_denied_message_names_what_is_missing() -> None:
    _, body = openai_error(PolicyDenied("alice may not", reasons=[Denial("r1", "2 approvals")]))
    assert body["error"]["message"] == "alice may not: r1: 2 approvals"


def test_response_and_stream_text_include_tool_arguments() -> None:
    assert (
        response_text(
            {
                "choices": [
                    {
                        "message": {
                            "content": "hi",
                            "tool_calls": [{"function": {"name": "f", "arguments": "{}"}}],
                        }
                    }
                ]
            }
        )
        == "hi\n{}"
    )
    assert (
        stream_delta_text(
            {
                "choices": [
                    {
                        "delta": {
                            "content": "a",
                            "tool_calls": [{"index": 0, "function": {"arguments": '{"x'}}],
                        }
                    }
                ]
            }
        )
        == 'a{"x'
    )
    assert response_text(None) == "" and stream_delta_text([]) == ""
