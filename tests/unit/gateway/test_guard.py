"""The raw-path guard: exact request lines only; tricks refused; other paths untouched."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from custodes.gateway import ROUTES, canonical_path, classify


@pytest.mark.parametrize(
    ("raw", "canonical"),
    [
        (b"/v1/chat/completions", "/v1/chat/completions"),
        (b"//v1//chat///completions", "/v1/chat/completions"),
        (b"/V1/Chat/Completions", "/v1/chat/completions"),
        (b"/v1/chat%2Fcompletions", "/v1/chat/completions"),
        (b"/v1/chat%252Fcompletions", "/v1/chat/completions"),
        (b"/v1/chat/completions.", "/v1/chat/completions"),
        (b"/v1/chat/completions/", "/v1/chat/completions"),
        (b"/v1/./x/../chat/completions", "/v1/chat/completions"),
        (b"/v1/x/%2e%2e/chat/completions", "/v1/chat/completions"),
        (b"/v1\\chat\\completions", "/v1/chat/completions"),
        (b"/v1/chat/completions;jsessionid=1", "/v1/chat/completions"),
        (b"/v1/chat/completions%20", "/v1/chat/completions"),
        (b"/../../v1/models", "/v1/models"),
    ],
)
def test_canonical_path_folds_what_lenient_servers_fold(raw: bytes, canonical: str) -> None:
    assert canonical_path(raw) == canonical


def test_exact_request_lines_go_to_the_gateway() -> None:
    for path, method in ROUTES.items():
        assert classify(method, path, b"").verdict == "gateway"


@pytest.mark.parametrize(
    ("method", "raw", "query", "status", "code"),
    [
        (b"POST", b"/v1/chat/completions", b"model=x", 400, "model_in_query"),
        (b"POST", b"/v1/chat/completions", b"MODEL=x", 400, "model_in_query"),
        (b"POST", b"/v1/chat/completions", b"%6Dodel=x", 400, "model_in_query"),
        (b"POST", b"/v1/chat/completions", b"a=1&deployment_model=x", 400, "model_in_query"),
        (b"POST", b"/v1/chat/completions", b"stream=true", 400, "unsupported_query"),
        (b"GET", b"/v1/chat/completions", b"", 405, "method_not_allowed"),
        (b"POST", b"/v1/models", b"", 405, "method_not_allowed"),
        (b"POST", b"//v1/chat/completions", b"", 400, "non_canonical_path"),
        (b"POST", b"/v1/chat/completions/", b"", 400, "non_canonical_path"),
        (b"POST", b"/openai/deployments/m/chat/completions", b"", 404, "unknown_url"),
        (b"POST", b"/azure/openai/deployments/m/chat/completions", b"", 404, "unknown_url"),
        (b"POST", b"/watsonx/ml/v1/text/generation", b"", 404, "unknown_url"),
        (b"POST", b"/Bedrock/model/x/invoke", b"", 404, "unknown_url"),
        (b"POST", b"/v1/completions", b"", 404, "unknown_url"),
        (b"GET", b"/v1/models/m", b"", 404, "unknown_url"),
        (b"POST", b"/%76%31/files", b"", 404, "unknown_url"),
    ],
)
def test_refusals(method: bytes, raw: bytes, query: bytes, status: int, code: str) -> None:
    decision = classify(method, raw, query)
    assert (decision.verdict, decision.status, decision.code) == ("refuse", status, code)


@pytest.mark.parametrize(
    "raw",
    [
        b"/healthz",
        b"/log/checkpoint",
        b"/api/v1/grants",
        b"/dashboard/",
        b"/",
        b"/authority/requests",
    ],
)
def test_other_paths_pass(raw: bytes) -> None:
    assert classify(b"GET", raw, b"a=1").verdict == "pass"


def test_a_router_path_in_gateway_space_is_refused_even_if_raw_looks_harmless() -> None:
    # A server that hands the router a different path than the raw one (absolute-form targets)
    assert classify(b"POST", b"/x", b"", routed_path=b"/v1/chat/completions").verdict == "refuse"


_segment = st.sampled_from(
    [
        "v1",
        "V1",
        "chat",
        "Chat",
        "completions",
        "models",
        "embeddings",
        ".",
        "..",
        "",
        "%2F",
        "%2f",
        "%252F",
        "x",
        "chat.",
        ";p",
    ]
)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(_segment, min_size=1, max_size=6),
    st.sampled_from([b"GET", b"POST"]),
    st.sampled_from([b"", b"model=m", b"q=1"]),
)
def test_only_exact_lines_ever_reach_the_gateway(
    segments: list[str], method: bytes, query: bytes
) -> None:
    raw = ("/" + "/".join(segments)).encode()
    decision = classify(method, raw, query)
    if decision.verdict == "gateway":
        assert ROUTES.get(raw) == method and query == b""
    if canonical_path(raw) in {p.decode() for p in ROUTES} and raw not in ROUTES:
        assert decision.verdict == "refuse"


_SEGMENTS = st.one_of(
    st.sampled_from(["v1", "v2", "openai", "models", "log", "entries", "checkpoint", "chat"]),
    st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-_", min_size=1, max_size=12),
)


@given(
    segments=st.lists(_SEGMENTS, min_size=1, max_size=5),
    method=st.sampled_from([b"GET", b"POST", b"PUT"]),
    query=st.sampled_from([b"", b"model=x", b"a=1"]),
)
@settings(max_examples=500)
def test_the_plain_path_shortcut_decides_as_the_full_guard(
    segments: list[str], method: bytes, query: bytes
) -> None:
    from custodes.gateway._guard import classify_slowly

    raw = ("/" + "/".join(segments)).encode()
    assert classify(method, raw, query) == classify_slowly(method, raw, query)
    assert classify(method, raw, query, routed_path=raw) == classify_slowly(
        method, raw, query, routed_path=raw
    )
