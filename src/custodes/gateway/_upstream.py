"""Upstreams: where a model call goes once every check has passed.

:class:`Upstream` is the role; :class:`HttpUpstream` speaks to any OpenAI-compatible server over
one shared ``httpx.AsyncClient`` (connection pooling, per-model timeouts and credentials);
:class:`custodes.gateway.ScriptedUpstream` answers from a file of canned replies.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Literal, Protocol

import httpx

from custodes.errors import UpstreamError
from custodes.gateway._models import ModelRoute

__all__ = ["HttpUpstream", "Upstream", "UpstreamReply", "UpstreamTimeout"]

Operation = Literal["chat/completions", "embeddings"]


class UpstreamTimeout(UpstreamError):
    status = 504
    code = "upstream_timeout"


async def _nothing() -> None:
    return None


@dataclass
class UpstreamReply:
    """An upstream's answer: a whole ``body``, or (streams with status 200) ``chunks``."""

    status: int
    content_type: str
    body: bytes = b""
    chunks: AsyncIterator[bytes] | None = None
    close: Callable[[], Awaitable[None]] = field(default=_nothing)


class Upstream(Protocol):
    """Sends one request body (already checked, model already rewritten) to a model server.

    Raises:
        UpstreamError: the upstream cannot be reached, or did not answer in time.
    """

    async def send(self, route: ModelRoute, operation: Operation, body: bytes, *,
                   stream: bool) -> UpstreamReply: ...


class HttpUpstream:
    """Any OpenAI-compatible server (vLLM, llama.cpp server, Ollama, a hosted API).

    Args:
        max_connections: the pool size of the one shared client.
    """

    def __init__(self, *, max_connections: int = 200) -> None:
        self.client = httpx.AsyncClient(
            limits=httpx.Limits(max_connections=max_connections,
                                max_keepalive_connections=max_connections),
            # Credentials and hosts come only from the models file, never from the caller.
            follow_redirects=False,
            trust_env=False,
        )

    async def send(self, route: ModelRoute, operation: Operation, body: bytes, *,
                   stream: bool) -> UpstreamReply:
        assert route.base_url is not None
        headers = {"content-type": "application/json", "accept": "application/json"}
        if stream:
            headers["accept"] = "text/event-stream"
        if route.api_key:
            headers["authorization"] = f"Bearer {route.api_key}"
        request = self.client.build_request(
            "POST", f"{route.base_url}/{operation}", content=body, headers=headers,
            timeout=httpx.Timeout(route.timeout_s, connect=min(route.timeout_s, 10.0)))
        try:
            response = await self.client.send(request, stream=True)
        except httpx.TimeoutException as exc:
            raise UpstreamTimeout(
                f"the upstream of model {route.name!r} did not answer in {route.timeout_s} s"
            ) from exc
        except httpx.HTTPError as exc:
            raise UpstreamError(
                f"the upstream of model {route.name!r} cannot be reached: {type(exc).__name__}"
            ) from exc
        content_type = response.headers.get("content-type", "application/json")
        if stream and response.status_code == 200:
            return UpstreamReply(200, content_type, chunks=_chunks(response, route),
                                 close=response.aclose)
        try:
            data = await response.aread()
        except httpx.HTTPError as exc:
            raise UpstreamError(
                f"the upstream of model {route.name!r} broke off its answer") from exc
        finally:
            await response.aclose()
        return UpstreamReply(response.status_code, content_type, body=data)

    async def aclose(self) -> None:
        await self.client.aclose()


async def _chunks(response: httpx.Response, route: ModelRoute) -> AsyncIterator[bytes]:
    try:
        async for chunk in response.aiter_raw():
            yield chunk
    except httpx.TimeoutException as exc:
        raise UpstreamTimeout(f"the upstream of model {route.name!r} stalled mid-stream") from exc
    except httpx.HTTPError as exc:
        raise UpstreamError(f"the upstream of model {route.name!r} broke off its stream") from exc
