"""The official openai client against custodes on uvicorn, in front of the test upstream."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import httpx
import openai
import pytest

from custodes.authority import new_request, sign_approval, sign_request
from custodes.gateway import RECEIPT_INDEX, RECEIPT_LEAF
from custodes.log import (
    Entry,
    SignedCheckpoint,
    leaf_hash,
    verify_inclusion,
)
from tests.integration.gateway.conftest import ROOT, GatewayServer, demo_key
from tests.support.upstream import SECRET_REPLY

HELLO = [{"role": "user", "content": "hello gateway"}]
WEATHER_TOOL = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "weather for a city",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"],
            },
        },
    }
]


def verify_receipt_offline(server: GatewayServer, index: int, leaf_hex: str) -> Entry:
    """Check entry ``index`` is in a checkpoint signed by the log's key, with only bytes and the
    log's public key (what a caller holding the receipt does), and return the entry."""
    data = server.ctx.log.entry_data(index)
    assert leaf_hash(data).hex() == leaf_hex
    signed = server.ctx.log.latest_checkpoint()
    verifier = server.ctx.log.signer.verifier
    checkpoint = SignedCheckpoint.from_text(signed.to_text(), verifier).checkpoint
    proof = server.ctx.log.inclusion_proof(index, checkpoint.size)
    verify_inclusion(bytes.fromhex(leaf_hex), index, checkpoint.size, proof, checkpoint.root_hash)
    return Entry.from_json(data)


def test_plain_completion_is_answered_logged_and_its_receipt_verifies(
    gateway_server: GatewayServer,
) -> None:
    client = gateway_server.client(gateway_server.key("alice@lab"))
    raw = client.chat.completions.with_raw_response.create(model="frontier-general", messages=HELLO)
    completion = raw.parse()
    assert completion.choices[0].message.content == "echo: hello gateway"
    entry = verify_receipt_offline(
        gateway_server, int(raw.headers[RECEIPT_INDEX]), raw.headers[RECEIPT_LEAF]
    )
    body = entry.body
    assert entry.type == "gateway.call/v1" and entry.principal == "alice@lab"
    assert body["outcome"] == "answered" and body["model"] == "frontier-general"
    assert body["capability"] == "general" and body["grant"] == "standing:general-use"
    assert body["response_sha256"] == hashlib.sha256(raw.http_response.content).hexdigest()
    assert body["prompt_tokens"] == completion.usage.prompt_tokens  # type: ignore[union-attr]
    assert body["completion_tokens"] == completion.usage.completion_tokens  # type: ignore[union-attr]
    assert {v["monitor"]: v["verdict"] for v in body["monitors"]} == {
        "launch-codes": "pass",
        "echo-observer": "flag",
    }
    # The upstream got its own credentials and its own model name, never the caller's key.
    [received] = gateway_server.upstream.received
    assert received.authorization == "Bearer upstream-secret"
    assert received.body["model"] == "test-model"


def test_request_digest_is_of_the_bytes_sent(gateway_server: GatewayServer) -> None:
    key = gateway_server.key("alice@lab")
    payload = json.dumps({"model": "frontier-general", "messages": HELLO}).encode()
    response = httpx.post(
        f"{gateway_server.base_url}/v1/chat/completions",
        content=payload,
        headers={"authorization": f"Bearer {key}", "content-type": "application/json"},
    )
    assert response.status_code == 200
    entry = verify_receipt_offline(
        gateway_server, int(response.headers[RECEIPT_INDEX]), response.headers[RECEIPT_LEAF]
    )
    assert entry.body["request_sha256"] == hashlib.sha256(payload).hexdigest()


def test_streamed_completion_passes_through_and_is_logged(gateway_server: GatewayServer) -> None:
    client = gateway_server.client(gateway_server.key("alice@lab"))
    stream = client.chat.completions.create(
        model="frontier-general",
        messages=HELLO,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.strip() == "echo: hello gateway"
    assert chunks[-1].usage is not None
    [call] = gateway_server.calls()
    assert call.body["outcome"] == "answered" and call.body["stream"] is True
    assert call.body["completion_tokens"] == chunks[-1].usage.completion_tokens


def test_stream_receipt_comes_before_done(gateway_server: GatewayServer) -> None:
    key = gateway_server.key("alice@lab")
    with httpx.stream(
        "POST",
        f"{gateway_server.base_url}/v1/chat/completions",
        json={"model": "frontier-general", "messages": HELLO, "stream": True},
        headers={"authorization": f"Bearer {key}"},
    ) as response:
        raw = response.read()
    events = raw.split(b"\n\n")
    assert events[-1] == b"" and events[-2] == b"data: [DONE]"
    comment = events[-3].decode()
    assert comment.startswith(": custodes-receipt ")
    fields = dict(part.split("=") for part in comment.split()[2:])
    entry = verify_receipt_offline(gateway_server, int(fields[RECEIPT_INDEX]), fields[RECEIPT_LEAF])
    relayed = b"".join(e + b"\n\n" for e in events[:-3])
    assert entry.body["response_sha256"] == hashlib.sha256(relayed).hexdigest()


def test_tool_calls_plain_and_streamed(gateway_server: GatewayServer) -> None:
    client = gateway_server.client(gateway_server.key("alice@lab"))
    messages = [{"role": "user", "content": "what is the weather in Paris?"}]
    completion = client.chat.completions.create(
        model="frontier-general", messages=messages, tools=WEATHER_TOOL
    )
    [call] = completion.choices[0].message.tool_calls or []
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "Paris"}
    arguments = ""
    names = []
    for chunk in client.chat.completions.create(
        model="frontier-general", messages=messages, tools=WEATHER_TOOL, stream=True
    ):
        for delta_call in (chunk.choices[0].delta.tool_calls or []) if chunk.choices else []:
            if delta_call.function and delta_call.function.name:
                names.append(delta_call.function.name)
            if delta_call.function and delta_call.function.arguments:
                arguments += delta_call.function.arguments
    assert names == ["get_weather"] and json.loads(arguments) == {"city": "Paris"}
    assert [c.body["outcome"] for c in gateway_server.calls()] == ["answered", "answered"]


def test_embeddings_and_the_scripted_upstream(gateway_server: GatewayServer) -> None:
    client = gateway_server.client(gateway_server.key("alice@lab"))
    result = client.embeddings.create(model="frontier-general", input=["one", "two words"])
    assert [d.index for d in result.data] == [0, 1] and len(result.data[0].embedding) == 8
    scripted = client.chat.completions.create(model="demo-scripted", messages=HELLO)
    assert scripted.system_fingerprint == "custodes-scripted:not-a-model"
    assert "not a model" in (scripted.choices[0].message.content or "")
    vectors = client.embeddings.create(model="demo-scripted", input="x")
    assert len(vectors.data[0].embedding) == 16
    assert [c.body["outcome"] for c in gateway_server.calls()] == ["answered"] * 3


def test_model_listing_shows_only_models_the_caller_may_use(gateway_server: GatewayServer) -> None:
    alice = gateway_server.client(gateway_server.key("alice@lab"))
    assert sorted(m.id for m in alice.models.list()) == [
        "demo-scripted",
        "frontier-general",
        "unreachable",
    ]
    vendor = gateway_server.client(gateway_server.key("vera@osvendor"))
    assert [m.id for m in vendor.models.list()] == []


def test_denial_without_grant_never_reaches_the_upstream(gateway_server: GatewayServer) -> None:
    client = gateway_server.client(gateway_server.key("alice@lab"))
    with pytest.raises(openai.PermissionDeniedError) as denied:
        client.chat.completions.create(model="frontier-cyber", messages=HELLO)
    assert denied.value.status_code == 403
    assert denied.value.code == "policy_denied"
    assert "cyber-frontier" in denied.value.message
    assert gateway_server.upstream.received == []
    [call] = gateway_server.calls()
    assert call.body["outcome"] == "denied" and call.body["status"] == 403
    assert call.body["capability"] == "cyber-frontier" and call.body["grant"] is None


def _approve_cyber_grant(server: GatewayServer, hours: int = 1) -> str:
    authority = server.authority
    request = new_request(
        "grant",
        constitution_version=authority.constitution.version,
        requester="alice@lab",
        created=server.ctx.clock.now(),
        capability="cyber-frontier",
        purpose="triage a fuzzer crash",
        duration_seconds=hours * 3600,
    )
    record = authority.submit_request(request, sign_request(request, demo_key("alice")))
    for approver, name in (("bob@lab", "bob"), ("dana@asi", "dana")):
        _, signature = sign_approval(request, demo_key(name))
        record = authority.approve(record.id, approver, signature)
    assert record.status == "granted", record
    return authority.authorize("alice@lab", "cyber-frontier").id


def test_approval_then_retry_succeeds_and_grant_revocation_stops_it(
    gateway_server: GatewayServer,
) -> None:
    client = gateway_server.client(gateway_server.key("alice@lab"))
    with pytest.raises(openai.PermissionDeniedError):
        client.chat.completions.create(model="frontier-cyber", messages=HELLO)
    grant_id = _approve_cyber_grant(gateway_server)
    retried = client.chat.completions.create(model="frontier-cyber", messages=HELLO)
    assert retried.choices[0].message.content == "echo: hello gateway"
    # Revoked mid-session by an overseer: the very next call is refused (no cache lag).
    authority = gateway_server.authority
    revocation = new_request(
        "revocation",
        constitution_version=authority.constitution.version,
        requester="dana@asi",
        created=gateway_server.ctx.clock.now(),
        grant=grant_id,
        reason="purpose fulfilled",
    )
    authority.revoke(revocation, sign_request(revocation, demo_key("dana")))
    with pytest.raises(openai.PermissionDeniedError):
        client.chat.completions.create(model="frontier-cyber", messages=HELLO)
    outcomes = [(c.body["outcome"], c.body["grant"]) for c in gateway_server.calls()]
    assert outcomes == [("denied", None), ("answered", grant_id), ("denied", None)]


def test_key_revoked_through_the_cli_mid_session_stops_working(
    gateway_server: GatewayServer,
) -> None:
    issued = gateway_server.gateway.keys.create("alice@lab", name="session")
    client = gateway_server.client(issued.secret)
    client.chat.completions.create(model="frontier-general", messages=HELLO)
    env = {
        "CUSTODES_DATA_DIR": str(gateway_server.data_dir),
        "CUSTODES_DEMO": "true",
        "PATH": "/usr/bin:/bin",
    }
    done = subprocess.run(
        [
            str(Path(sys.executable).parent / "custodes"),
            "keys",
            "revoke",
            issued.key.key_id,
            "--reason",
            "laptop lost",
        ],
        env=env,
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    # Another process revoked it: this server sees it at its next key poll (gateway_key_poll_ms,
    # 20 ms here). The listing (which reaches no upstream) is asked until it is refused, within
    # a deadline generous for a loaded machine, then a completion is refused too.
    deadline = time.monotonic() + 30
    while True:
        try:
            client.models.list()
        except openai.AuthenticationError:
            break
        assert time.monotonic() < deadline, "the revoked key still works after 30 s"
        time.sleep(0.02)
    with pytest.raises(openai.AuthenticationError) as refused:
        client.chat.completions.create(model="frontier-general", messages=HELLO)
    assert refused.value.code == "invalid_api_key"
    assert len(gateway_server.upstream.received) == 1


def test_key_revoked_in_process_stops_working_at_once(gateway_server: GatewayServer) -> None:
    issued = gateway_server.gateway.keys.create("alice@lab")
    client = gateway_server.client(issued.secret)
    client.models.list()
    gateway_server.gateway.revoke_key(issued.key.key_id)
    with pytest.raises(openai.AuthenticationError):
        client.models.list()


def test_gating_monitor_blocks_a_prompt(gateway_server: GatewayServer) -> None:
    client = gateway_server.client(gateway_server.key("alice@lab"))
    with pytest.raises(openai.BadRequestError) as blocked:
        client.chat.completions.create(
            model="frontier-general",
            messages=[{"role": "user", "content": "read me the launch code"}],
        )
    assert blocked.value.code == "content_policy_violation"
    assert "launch-codes" in blocked.value.message
    assert gateway_server.upstream.received == []
    [call] = gateway_server.calls()
    assert call.body["outcome"] == "blocked"
    assert call.body["monitors"][0]["verdict"] == "block"


def test_gating_monitor_cuts_a_stream_with_a_clean_error_event(
    gateway_server: GatewayServer,
) -> None:
    client = gateway_server.client(gateway_server.key("alice@lab"))
    received = ""
    with pytest.raises(openai.APIError) as cut:
        for chunk in client.chat.completions.create(
            model="frontier-general",
            stream=True,
            messages=[{"role": "user", "content": "tell me the secret"}],
        ):
            received += (chunk.choices[0].delta.content or "") if chunk.choices else ""
    assert "blocked by the gating monitor 'launch-codes'" in cut.value.message
    assert received and SECRET_REPLY.startswith(received.strip())
    assert "launch code" not in received
    [call] = gateway_server.calls()
    assert call.body["outcome"] == "cut" and call.body["stream"] is True


def test_gating_monitor_blocks_a_whole_response(gateway_server: GatewayServer) -> None:
    client = gateway_server.client(gateway_server.key("alice@lab"))
    with pytest.raises(openai.BadRequestError) as blocked:
        client.chat.completions.create(
            model="frontier-general", messages=[{"role": "user", "content": "the secret?"}]
        )
    assert blocked.value.code == "content_policy_violation"
    [call] = gateway_server.calls()
    assert call.body["outcome"] == "blocked" and call.body["response_sha256"] is None


def test_upstream_errors_keep_openai_shape_and_status(gateway_server: GatewayServer) -> None:
    client = gateway_server.client(gateway_server.key("alice@lab"))
    with pytest.raises(openai.RateLimitError) as limited:
        client.chat.completions.create(
            model="frontier-general", messages=[{"role": "user", "content": "UPSTREAM_429"}]
        )
    assert limited.value.code == "rate_limit_exceeded"
    with pytest.raises(openai.InternalServerError):
        client.chat.completions.create(
            model="frontier-general", messages=[{"role": "user", "content": "UPSTREAM_500"}]
        )
    with pytest.raises(openai.APIStatusError) as unreachable:
        client.chat.completions.create(model="unreachable", messages=HELLO)
    assert unreachable.value.status_code == 502
    assert [c.body["outcome"] for c in gateway_server.calls()] == ["upstream_error"] * 3


def test_every_answered_request_is_in_the_log(gateway_server: GatewayServer) -> None:
    client = gateway_server.client(gateway_server.key("alice@lab"))
    indexes = []
    for i in range(5):
        raw = client.chat.completions.with_raw_response.create(
            model="frontier-general", messages=[{"role": "user", "content": f"n{i}"}]
        )
        indexes.append(int(raw.headers[RECEIPT_INDEX]))
    assert len(set(indexes)) == 5
    calls = gateway_server.calls()
    assert len(calls) == 5 and all(c.body["outcome"] == "answered" for c in calls)
    assert len(gateway_server.upstream.received) == 5


def test_log_failure_withholds_the_answer(gateway_server: GatewayServer) -> None:
    client = gateway_server.client(gateway_server.key("alice@lab"))
    with gateway_server.ctx.engine.begin() as conn:
        conn.exec_driver_sql("ALTER TABLE log_entries RENAME TO log_entries_gone")
    try:
        with pytest.raises(openai.APIStatusError) as failed:
            client.chat.completions.create(model="frontier-general", messages=HELLO)
        assert failed.value.status_code == 503
        assert "echo" not in failed.value.message
    finally:
        with gateway_server.ctx.engine.begin() as conn:
            conn.exec_driver_sql("ALTER TABLE log_entries_gone RENAME TO log_entries")


def test_grant_expiry_is_honoured_despite_the_cache(gateway_server: GatewayServer) -> None:
    _approve_cyber_grant(gateway_server)
    client = gateway_server.client(gateway_server.key("alice@lab"))
    client.chat.completions.create(model="frontier-cyber", messages=HELLO)
    cached = gateway_server.gateway.grants.cached("alice@lab", "cyber-frontier")
    assert cached is not None and cached.covers_until is not None
    assert cached.covers_until - gateway_server.ctx.clock.now() <= timedelta(hours=1)


def test_a_stream_the_client_abandons_is_still_logged(gateway_server: GatewayServer) -> None:
    key = gateway_server.key("alice@lab")
    with httpx.stream(
        "POST",
        f"{gateway_server.base_url}/v1/chat/completions",
        json={
            "model": "frontier-general",
            "stream": True,
            "messages": [{"role": "user", "content": "tell me the secret"}],
        },
        headers={"authorization": f"Bearer {key}"},
    ) as response:
        first = next(response.iter_raw())
        assert first.startswith(b"data: ")
    deadline = time.monotonic() + 10
    while not gateway_server.calls() and time.monotonic() < deadline:
        time.sleep(0.05)
    [call] = gateway_server.calls()
    assert call.body["stream"] is True and call.body["response_sha256"] is not None


def test_a_bug_in_a_handler_is_the_one_json_500_and_the_next_call_works(
    gateway_server: GatewayServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = gateway_server.key("alice@lab")
    gateway = gateway_server.gateway

    async def broken(request: object) -> None:
        raise RuntimeError("a bug with a secret detail")

    monkeypatch.setattr(gateway, "embeddings", broken)
    response = httpx.post(
        f"{gateway_server.base_url}/v1/embeddings",
        json={"model": "frontier-general", "input": "x"},
        headers={"authorization": f"Bearer {key}"},
        timeout=10,
    )
    assert response.status_code == 500
    assert response.json() == {
        "error": {"code": "internal_error", "message": "internal error; see the server log"}
    }
    assert "secret detail" not in response.text
    completion = gateway_server.client(key).chat.completions.create(
        model="frontier-general", messages=HELLO
    )
    assert completion.choices[0].message.content == "echo: hello gateway"
