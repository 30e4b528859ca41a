"""The raw-path guard: decides, before FastAPI routing, what may reach the gateway's routes.

Routers normalise paths in ways a policy check may not (Starlette decodes ``%2F``; some servers
fold case, merge slashes or drop trailing dots), and every such difference is a way around a
check (LiteLLM #41810, #41295, #41467). So the gateway accepts exactly three request lines,
byte for byte, with no query string:

    POST /v1/chat/completions     POST /v1/embeddings     GET /v1/models

Anything else whose canonical form lands in the gateway's space (``/v1/...`` or a provider
pass-through prefix such as ``/openai/deployments/...``) is refused with an OpenAI-shaped error
and logged as denied; every other path goes on to the rest of the API untouched.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal
from urllib.parse import parse_qsl, unquote_to_bytes

__all__ = ["ROUTES", "Decision", "canonical_path", "classify"]

ROUTES: dict[bytes, bytes] = {
    b"/v1/chat/completions": b"POST",
    b"/v1/embeddings": b"POST",
    b"/v1/models": b"GET",
}

# First path segments that OpenAI-compatible proxies serve model calls under. A request whose
# canonical path starts with one of them is the gateway's to refuse, never the API's to route.
_GATEWAY_SPACE = (
    "v1",
    "v2",
    "openai",
    "azure",
    "watsonx",
    "bedrock",
    "vertex_ai",
    "vertex",
    "anthropic",
    "gemini",
    "chat",
    "completions",
    "embeddings",
    "engines",
    "deployments",
    "models",
    "responses",
    "messages",
)
_CANONICAL = {k.decode(): k for k in ROUTES}


def canonical_path(raw: bytes) -> str:
    """The path as the most lenient server would read it: decoded (repeatedly), lower-case,
    backslashes as slashes, slashes merged, dot segments resolved, trailing dots, slashes,
    spaces and ``;params`` dropped. Used only to classify; requests are never rewritten."""
    text = raw
    for _ in range(4):  # %252F -> %2F -> /
        decoded = unquote_to_bytes(text)
        if decoded == text:
            break
        text = decoded
    path = text.decode("utf-8", "replace").lower().replace("\\", "/")
    segments: list[str] = []
    for segment in path.split("/"):
        segment = segment.split(";", 1)[0].strip()
        if segment == "..":
            if segments:
                segments.pop()
            continue
        segment = segment.rstrip(". \t")
        if segment:
            segments.append(segment)
    return "/" + "/".join(segments)


Verdict = Literal["pass", "gateway", "refuse"]


@dataclass(frozen=True)
class Decision:
    """What the guard does with a request.

    ``pass``: not the gateway's (goes to the rest of the API); ``gateway``: an exact gateway
    request line (goes to the gateway's route); ``refuse``: refused with ``status``.
    """

    verdict: Verdict
    status: int = 0
    code: str = ""
    message: str = ""
    param: str | None = None


_QUERY_MODEL = re.compile(rb"(^|&)[^=&]*model", re.IGNORECASE)


# Lower-case segments of letters, digits, '-' and '_': every router reads such a path as is, so
# its canonical form is itself and its first segment alone decides (most of the API's requests).
_PLAIN = re.compile(rb"(?:/[a-z0-9_-]+)+")


def classify(
    method: bytes, raw_path: bytes, query: bytes, *, routed_path: bytes | None = None
) -> Decision:
    """Classify one request line (``raw_path`` exactly as received, without the query;
    ``routed_path`` the path the router will match on, if it may differ)."""
    if (
        raw_path not in ROUTES
        and (routed_path is None or routed_path == raw_path)
        and _PLAIN.fullmatch(raw_path)
    ):
        if raw_path.split(b"/", 2)[1].decode() in _GATEWAY_SPACE:
            return _unknown(raw_path)
        return _PASS
    return classify_slowly(method, raw_path, query, routed_path=routed_path)


def classify_slowly(
    method: bytes, raw_path: bytes, query: bytes, *, routed_path: bytes | None = None
) -> Decision:
    """:func:`classify` without its shortcut for plain paths (the reference it is tested
    against)."""
    expected = ROUTES.get(raw_path)
    if expected is not None:
        if method != expected:
            return Decision(
                "refuse",
                405,
                "method_not_allowed",
                f"{method.decode('latin-1')} is not allowed on "
                f"{raw_path.decode()}; use {expected.decode()}",
            )
        if query:
            names = [k for k, _ in parse_qsl(query.decode("latin-1"), keep_blank_values=True)]
            if any("model" in n.lower() for n in names) or _QUERY_MODEL.search(query):
                return Decision(
                    "refuse",
                    400,
                    "model_in_query",
                    "the model is taken only from the request body; a 'model' "
                    "query parameter is refused",
                    param="model",
                )
            return Decision(
                "refuse",
                400,
                "unsupported_query",
                "query parameters are not accepted on the gateway's routes",
                param=names[0] if names else None,
            )
        return Decision("gateway")
    canonical = canonical_path(raw_path)
    first = _first_segment(canonical)
    if canonical in _CANONICAL:
        return Decision(
            "refuse",
            400,
            "non_canonical_path",
            f"the path is not in canonical form; use exactly {canonical}",
        )
    routed = canonical_path(routed_path) if routed_path is not None else canonical
    if first in _GATEWAY_SPACE or _first_segment(routed) in _GATEWAY_SPACE:
        return _unknown(raw_path)
    return _PASS


_PASS = Decision("pass")


def _unknown(raw_path: bytes) -> Decision:
    return Decision(
        "refuse",
        404,
        "unknown_url",
        f"unknown gateway route {raw_path.decode('latin-1')!r}; the gateway "
        "serves POST /v1/chat/completions, POST /v1/embeddings, GET /v1/models",
    )


def _first_segment(canonical: str) -> str:
    return canonical.split("/", 2)[1] if canonical != "/" else ""
